"""The REST API: Enterprise Gateway's answers for valid requests, clear 4xx for bad ones."""

from __future__ import annotations

import asyncio
import json
import re

import psutil
import yaml

from eg_core.testing import KernelSocket

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def assert_error(response, status: int, *needles: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"reason", "message"}
    for needle in needles:
        assert needle in body["message"], body
    return body


async def test_api_version(http):
    r = await http.get("/api")
    assert r.status_code == 200
    assert {"version", "gateway_version"} <= set(r.json())


async def test_swagger_json_and_yaml(http):
    as_json = (await http.get("/api/swagger.json")).json()
    r = await http.get("/api/swagger.yaml")
    assert r.headers["content-type"].startswith("text/x-yaml")
    assert yaml.safe_load(r.text) == as_json


async def test_kernelspecs_list_and_resources(http):
    body = (await http.get("/api/kernelspecs")).json()
    assert body["default"] == "python3"
    spec = body["kernelspecs"]["python3"]
    assert spec["spec"]["display_name"] == "Python 3 (local)"
    assert spec["resources"]["logo-64x64"] == "/kernelspecs/python3/logo-64x64.png"
    logo = await http.get("/kernelspecs/python3/logo-64x64.png")
    assert logo.status_code == 200 and logo.content[:4] == b"\x89PNG"
    assert logo.headers["content-type"] == "image/png"
    assert "eg_local_proxy" in body["kernelspecs"]  # Enterprise Gateway's process_proxy form
    one = (await http.get("/api/kernelspecs/python3")).json()
    assert one == spec


async def test_kernelspec_user_quirk(http):
    """Jupyter Server asks for GET /api/kernelspecs?user=alice/python3 for one kernelspec."""
    r = await http.get("/api/kernelspecs?user=alice/python3")
    assert r.status_code == 200 and r.json()["name"] == "python3"
    r = await http.get("/api/kernelspecs?user=alice")
    assert "python3" in r.json()["kernelspecs"]


async def test_kernelspec_errors(http):
    assert_error(await http.get("/api/kernelspecs/nope"), 404, "'nope' not found")
    assert_error(await http.get("/kernelspecs/nope/logo-64x64.png"), 404)
    assert_error(await http.get("/kernelspecs/python3/missing.png"), 404, "no resource")
    assert_error(await http.get("/kernelspecs/python3/..%2F..%2F..%2Fetc%2Fpasswd"), 404)
    assert_error(await http.get("/api/contents"), 404, "no such resource")
    assert_error(await http.get("/"), 404)


def ssh_installed() -> bool:
    from importlib.metadata import entry_points

    return any(ep.name == "ssh" for ep in entry_points(group="eg.plugins"))


async def test_unavailable_kernelspecs_are_hidden_and_named(gateway_factory):
    gw = gateway_factory("--Gateway.disabled_plugins=['ssh']")
    async with gw.client() as http:
        specs = (await http.get("/api/kernelspecs")).json()["kernelspecs"]
        assert "needs_ssh" not in specs and "unknown_provisioner" not in specs
        if ssh_installed():  # disabled: its aliases still name it
            body = assert_error(await http.post("/api/kernels", json={"name": "needs_ssh"}), 404, "eg-ssh", "disabled_plugins")
            assert body["reason"] == "Resource Manager Not Installed"
            assert_error(await http.get("/api/kernelspecs/needs_ssh"), 404, "eg-ssh")
        else:  # the core names no plugin: only an installed plugin knows Enterprise Gateway's class name
            assert_error(await http.post("/api/kernels", json={"name": "needs_ssh"}), 404, "DistributedProcessProxy", "no installed")
        body = assert_error(await http.post("/api/kernels", json={"name": "needs_uninstalled"}), 404,
                            "'nomad' resource manager, which is not installed and is not one of eg's plugins")
        assert "./plugins/eg_nomad" not in body["message"]
        assert_error(await http.post("/api/kernels", json={"name": "unknown_provisioner"}), 404, "someone-elses-provisioner")


async def test_kernel_model_and_lifecycle(http):
    r = await http.post("/api/kernels", json={"name": None})
    assert r.status_code == 201
    model = r.json()
    assert set(model) == {"id", "name", "last_activity", "execution_state", "connections"}
    assert model["name"] == "python3" and model["connections"] == 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", model["last_activity"])
    assert r.headers["location"] == f"/api/kernels/{model['id']}"
    assert model["id"] in [k["id"] for k in (await http.get("/api/kernels")).json()]
    assert (await http.get(f"/api/kernels/{model['id']}")).json()["id"] == model["id"]
    assert (await http.post(f"/api/kernels/{model['id']}/interrupt", json={})).status_code == 204
    restarted = await http.post(f"/api/kernels/{model['id']}/restart", json={})
    assert restarted.status_code == 200 and restarted.json()["id"] == model["id"]
    assert (await http.delete(f"/api/kernels/{model['id']}")).status_code == 204
    assert_error(await http.get(f"/api/kernels/{model['id']}"), 404, model["id"])


BAD_STARTS = [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (json.dumps({"name": 5}).encode(), 400, "'name'"),
    (json.dumps({"name": "python3", "env": ["KERNEL_X"]}).encode(), 400, "'env' must be a JSON object"),
    (json.dumps({"name": "python3", "env": {"KERNEL_X": 5}}).encode(), 400, "must be a string"),
    (json.dumps({"name": "python3", "env": {"KERNEL_X": "a$(id)"}}).encode(), 400, "'$'"),
    (json.dumps({"name": "python3", "env": {"KERNEL_X": "a`id`"}}).encode(), 400, "backtick"),
    (json.dumps({"name": "python3", "env": {"KERNEL_X": "a\nb"}}).encode(), 400, "newline"),
    (json.dumps({"name": "python3", "env": {"KERNEL_X": "x" * 5000}}).encode(), 400, "longer than"),
    (json.dumps({"name": "python3", "env": {"BAD NAME": "x"}}).encode(), 400, "not a valid variable name"),
    (json.dumps({"name": "python3", "env": {"KERNEL_ID": "not-a-uuid"}}).encode(), 400, "KERNEL_ID"),
    (json.dumps({"name": "python3", "env": {"KERNEL_LAUNCH_TIMEOUT": "soon"}}).encode(), 400, "KERNEL_LAUNCH_TIMEOUT"),
    (json.dumps({"name": "no_such_spec"}).encode(), 404, "no_such_spec"),
]


async def test_bad_input_is_a_clear_4xx_and_loses_nothing(gateway, kernel, http):
    ks = await KernelSocket.connect(gateway, kernel["id"])
    await ks.execute("kept = 41")
    for body, status, needle in BAD_STARTS:
        r = await http.post("/api/kernels", content=body, headers={"Content-Type": "application/json"})
        assert_error(r, status, needle)
        assert "$(id)" not in r.text and "`id`" not in r.text
    for method, path in [
        ("GET", f"/api/kernels/{UNKNOWN}"),
        ("DELETE", f"/api/kernels/{UNKNOWN}"),
        ("POST", f"/api/kernels/{UNKNOWN}/interrupt"),
        ("POST", f"/api/kernels/{UNKNOWN}/restart"),
        ("GET", "/api/kernels/1-2-3-4-5"),
        ("GET", f"/api/sessions/{UNKNOWN}"),
        ("DELETE", f"/api/sessions/{UNKNOWN}"),
    ]:
        assert_error(await http.request(method, path), 404, "does not exist")
    assert_error(await http.post(f"/api/kernels/{kernel['id']}/restart", content=b"{oops"), 400, "not valid JSON")
    assert (await ks.execute("print(kept + 1)"))["stdout"] == "42\n"
    assert [k["id"] for k in (await http.get("/api/kernels")).json()] == [kernel["id"]]
    await ks.close()


async def test_token_auth(gateway):
    import httpx

    async with httpx.AsyncClient(base_url=gateway.url) as anon:
        for path in ("/api", "/api/kernelspecs", "/api/kernels", "/kernelspecs/python3/logo-64x64.png"):
            assert_error(await anon.get(path), 401, "token")
        assert_error(await anon.post("/api/kernels", json={}), 401)
        assert_error(await anon.get("/api", headers={"Authorization": "token wrong"}), 401)
        assert (await anon.get(f"/api?token={gateway.token}")).status_code == 200
        assert (await anon.get("/api", headers={"Authorization": f"Bearer {gateway.token}"})).status_code == 200
        assert (await anon.get("/api", auth=("anyone", gateway.token))).status_code == 200  # HTTP Basic
        assert_error(await anon.get("/api", auth=("anyone", "wrong")), 401)
        assert_error(await anon.get("/api", headers={"Authorization": "Basic !!notbase64"}), 401)
        assert (await anon.options("/api/kernels")).status_code == 204


async def test_no_auth_tolerates_empty_token_header(gateway_factory):
    gw = gateway_factory(token=None)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(b"GET /api HTTP/1.1\r\nHost: x\r\nAuthorization: token \r\nConnection: close\r\n\r\n")
    status_line = await reader.readline()
    writer.close()
    assert b" 200 " in status_line
    assert "Authentication is DISABLED" in gw.output()


async def test_cors_and_origin(gateway_factory):
    gw = gateway_factory("--Gateway.allow_origin=https://lab.example", "--Gateway.allow_methods=GET,POST")
    async with gw.client() as http:
        r = await http.get("/api", headers={"Origin": "https://lab.example"})
        assert r.headers["access-control-allow-origin"] == "https://lab.example"
        assert r.headers["access-control-allow-methods"] == "GET,POST"
        assert_error(await http.get("/api", headers={"Origin": "https://evil.example"}), 403, "cross-origin")


async def test_kernel_env_rules(gateway_factory):
    gw = gateway_factory(
        "--Gateway.client_envs=['ALLOWED_EXTRA']",
        "--Gateway.inherited_envs=['INHERIT_ME','EG_AUTH_TOKEN']",
        env={"INHERIT_ME": "from-gateway", "EG_AUTH_TOKEN": "must-not-leak", "KERNEL_SPEC_DEFAULT": "process"},
    )
    kernel_id = "1b7a6d4e-6f5a-4c47-9a0e-2f8a1c9b3d21"
    env = {
        "KERNEL_USERNAME": "alice",
        "KERNEL_EXTRA": "a; b | c & 'd' \"e\" ünï",
        "ALLOWED_EXTRA": "yes",
        "NOT_KERNEL": "dropped",
        "KERNEL_SPEC_DEFAULT": "request",
        "KERNEL_GATEWAY": "0",
        "KERNEL_ID": kernel_id,
    }
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "eg_local_proxy", "env": env})
        assert r.status_code == 201, r.text
        assert r.json()["id"] == kernel_id
        ks = await KernelSocket.connect(gw, kernel_id)
        out = await ks.execute("import os, json; print(json.dumps(dict(os.environ)))")
        kenv = json.loads(out["stdout"])
        assert kenv["KERNEL_USERNAME"] == "alice"
        assert kenv["KERNEL_EXTRA"] == env["KERNEL_EXTRA"]
        assert kenv["ALLOWED_EXTRA"] == "yes"
        assert "NOT_KERNEL" not in kenv
        assert kenv["KERNEL_SPEC_DEFAULT"] == "request"  # request beats kernelspec env
        assert kenv["FROM_SPEC"] == "spec-value"
        assert kenv["INHERIT_ME"] == "from-gateway"
        assert kenv["KERNEL_GATEWAY"] == "1" and kenv["KERNEL_ID"] == kernel_id
        assert "EG_AUTH_TOKEN" not in kenv and "must-not-leak" not in out["stdout"]
        await ks.close()
        dup = await http.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_ID": kernel_id}})
        assert_error(dup, 409, kernel_id)
        await http.delete(f"/api/kernels/{kernel_id}")
    assert "must-not-leak" not in gw.output()


def _processes_running(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if marker in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


async def test_kernel_dying_at_start_names_phase_and_leaves_nothing(http):
    r = await http.post("/api/kernels", json={"name": "crash_at_start"})
    body = assert_error(r, 502, "kernel_info", "exited", "boom: this kernel cannot start")
    assert body["reason"] == "Kernel Launch Failed"
    assert not _processes_running("boom: this kernel cannot start")
    assert all(k["name"] != "crash_at_start" for k in (await http.get("/api/kernels")).json())


async def test_launch_timeout_names_phase_and_leaves_nothing(http):
    r = await http.post("/api/kernels", json={"name": "slow_start", "env": {"KERNEL_LAUNCH_TIMEOUT": "2"}})
    body = assert_error(r, 504, "kernel_info", "launch timeout of 2s")
    assert body["reason"] == "Kernel Launch Timed Out"
    await asyncio.sleep(0.5)
    assert not _processes_running("eg-test-slow-start")


async def test_sessions_crud(http):
    bad = await http.post("/api/sessions", json={"type": "notebook"})
    assert_error(bad, 400, "'path'")
    assert_error(await http.post("/api/sessions", json={"path": "a.ipynb", "type": "notebook", "kernel": {"name": "nope"}}), 404, "nope")
    r = await http.post("/api/sessions", json={"path": "a.ipynb", "type": "notebook", "name": "a", "kernel": {"name": "python3"}})
    assert r.status_code == 201
    session = r.json()
    assert session["kernel"]["name"] == "python3" and session["path"] == "a.ipynb"
    same = await http.post("/api/sessions", json={"notebook": {"path": "a.ipynb"}, "kernel": {"name": "python3"}})
    assert same.status_code == 200 and same.json()["id"] == session["id"]
    assert [s["id"] for s in (await http.get("/api/sessions")).json()] == [session["id"]]
    moved = await http.patch(f"/api/sessions/{session['id']}", json={"path": "b.ipynb"})
    assert moved.json()["path"] == "b.ipynb"
    assert (await http.get(f"/api/sessions/{session['id']}")).json()["path"] == "b.ipynb"
    assert (await http.delete(f"/api/sessions/{session['id']}")).status_code == 204
    assert_error(await http.get(f"/api/kernels/{session['kernel']['id']}"), 404)


async def test_list_kernels_can_be_disabled(gateway_factory):
    gw = gateway_factory("--Gateway.list_kernels=False")
    async with gw.client() as http:
        assert_error(await http.get("/api/kernels"), 403, "list_kernels")
        assert_error(await http.get("/api/sessions"), 403, "list_kernels")


def test_an_eg_plugin_not_installed_is_installed_from_this_checkout(monkeypatch):
    import importlib.metadata
    from pathlib import Path

    from eg_core._runtime.catalog import missing_plugin_advice

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [])
    root = Path(__file__).resolve().parent.parent
    advice = missing_plugin_advice("slurm")
    assert f"pip install -c {root / 'constraints.txt'} {root / 'plugins' / 'eg_slurm'}" in advice
    assert "eg_pbs" not in missing_plugin_advice("pbs") and "slurm" in missing_plugin_advice("pbs")


async def test_ready_needs_no_token(gateway_factory):
    """``GET /api/ready`` answers a probe that sends no token; with no plugin naming a problem
    (eg-k8s, which would ask a cluster, is disabled), the gateway is ready."""
    gw = gateway_factory(env={"EG_DISABLED_PLUGINS": "k8s"})
    async with gw.client() as http:
        http.headers.pop("Authorization")
        r = await http.get("/api/ready")
        assert (r.status_code, r.json()) == (200, {"ready": True})
        assert (await http.get("/api/kernels")).status_code == 401
