"""A gateway in a Kubernetes pod refuses the local resource manager unless the operator allows
it (``LocalResourceManager.allow_in_pod``): a local kernel would run in the gateway's pod with
its service account. "In a pod" is the service-account token file; here a temporary one
(``EG_LOCAL_SERVICE_ACCOUNT_TOKEN``) stands for it, in real gateway processes."""

from __future__ import annotations

import signal

import pytest

from eg_core.testing import KernelSocket, run_doctor

ONLY_LOCAL = {"EG_DISABLED_PLUGINS": "ssh,docker,slurm,k8s,yarn"}
SECRET = "not-a-real-service-account-token"


@pytest.fixture
def pod_token(tmp_path):
    token = tmp_path / "serviceaccount" / "token"
    token.parent.mkdir()
    token.write_text(SECRET)
    return token


def in_pod(token, **more) -> dict:
    return {"EG_LOCAL_SERVICE_ACCOUNT_TOKEN": str(token), **ONLY_LOCAL, **more}


async def test_in_a_pod_local_kernelspecs_are_refused_saying_why(gateway_factory, pod_token):
    gw = gateway_factory(env=in_pod(pod_token))
    async with gw.client() as http:
        r = await http.get("/api/kernelspecs")
        assert r.status_code == 200, r.text
        assert "python3" not in r.json()["kernelspecs"]
        r = await http.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 403, r.text
        body = r.json()
        assert body["reason"] == "Resource Manager Refused"
        assert "Kubernetes pod" in body["message"] and str(pod_token) in body["message"]
        assert "LocalResourceManager.allow_in_pod=True" in body["message"] and "EG_LOCAL_ALLOW_IN_POD" in body["message"]
        r = await http.get("/api/kernelspecs/python3")
        assert r.status_code == 403 and r.json()["reason"] == "Resource Manager Refused"
        assert (await http.get("/api/kernels")).json() == []
    output = await gw.wait_for_output("serving")
    assert output.count("The 'local' resource manager runs no kernels") == 1
    assert SECRET not in output


async def test_allowed_in_a_pod_a_local_kernel_runs_with_a_warning(gateway_factory, pod_token):
    gw = gateway_factory("--LocalResourceManager.allow_in_pod=True", env=in_pod(pod_token))
    async with gw.client() as http:
        assert "python3" in (await http.get("/api/kernelspecs")).json()["kernelspecs"]
        r = await http.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        ks = await KernelSocket.connect(gw, kid)
        try:
            assert (await ks.execute("print(6 * 7)"))["stdout"] == "42\n"
        finally:
            await ks.close()
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    output = gw.output()
    assert "Local kernels are allowed in this Kubernetes pod" in output and "service account" in output
    assert "runs no kernels" not in output and SECRET not in output


async def test_the_environment_variable_allows_them_too(gateway_factory, pod_token):
    gw = gateway_factory(env=in_pod(pod_token, EG_LOCAL_ALLOW_IN_POD="true"))
    async with gw.client() as http:
        assert "python3" in (await http.get("/api/kernelspecs")).json()["kernelspecs"]


async def test_outside_a_pod_nothing_changes(gateway_factory, tmp_path):
    gw = gateway_factory(env=in_pod(tmp_path / "no-such-token"))
    async with gw.client() as http:
        assert "python3" in (await http.get("/api/kernelspecs")).json()["kernelspecs"]
    assert "Kubernetes pod" not in gw.output()


def test_doctor_has_a_row_for_it(pod_token, tmp_path):
    refused = run_doctor(env=in_pod(pod_token))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    lines = refused.stdout.splitlines()
    assert [line for line in lines if "local kernels in a Kubernetes pod" in line] == [
        f"ok    local: local kernels in a Kubernetes pod: refused: the gateway is in a pod ({pod_token} exists); "
        "LocalResourceManager.allow_in_pod=True (EG_LOCAL_ALLOW_IN_POD=true) allows them"
    ]
    row = next(line for line in lines if "kernelspec python3" in line)
    assert row.startswith("FAIL  kernelspecs: kernelspec python3: ") and "; fix: set LocalResourceManager.allow_in_pod=True (EG_LOCAL_ALLOW_IN_POD=true) to run them anyway" in row
    allowed = run_doctor("--LocalResourceManager.allow_in_pod=True", env=in_pod(pod_token))
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "ok    local: local kernels in a Kubernetes pod: allowed (allow_in_pod)" in allowed.stdout
    outside = run_doctor(env=in_pod(tmp_path / "none"))
    assert "ok    local: local kernels in a Kubernetes pod: not in a pod" in outside.stdout



async def test_a_reload_applies_allow_in_pod(gateway_factory, pod_token, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "eg_gateway_config.py").write_text("c.LocalResourceManager.allow_in_pod = False\n")
    gw = gateway_factory(env=in_pod(pod_token, JUPYTER_CONFIG_DIR=str(config)))
    async with gw.client() as http:
        assert "python3" not in (await http.get("/api/kernelspecs")).json()["kernelspecs"]
        (config / "eg_gateway_config.py").write_text("c.LocalResourceManager.allow_in_pod = True\n")
        gw.proc.send_signal(signal.SIGHUP)
        await gw.wait_for_output("The 'local' resource manager runs kernels again")
        assert "python3" in (await http.get("/api/kernelspecs")).json()["kernelspecs"]
