"""The ``pools`` builtin plugin: warm pools of started kernels, claimed by new requests.

Real gateway processes, real ipykernel (``python3``) and tiny kernels. A claim binds the
requester's user, ``KERNEL_*`` env and working directory to the waiting kernel; what only a
launch applies, or a kernel neither Python nor R with something to bind, is a miss that starts a kernel.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

import psutil

from eg_core.testing import KernelSocket

EVENT_LINE = re.compile(r"\beg\.events\] (\{.*\})$")
PYTHON_POOL = {"EG_KERNEL_POOLS": json.dumps({"python3": 1})}


def events(gw, event: str) -> list[dict]:
    found = [json.loads(m.group(1)) for line in gw.output().splitlines() if (m := EVENT_LINE.search(line))]
    return [e for e in found if e["event"] == event]


async def metric(http, name: str, kernelspec: str) -> float:
    text = (await http.get("/metrics")).text
    m = re.search(rf'^{name}{{kernelspec="{kernelspec}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def kernel_children(pid: int) -> list[psutil.Process]:
    """The gateway's kernel processes (not the commands its plugins run meanwhile, e.g. a
    scheduler plugin's startup sweep)."""
    return [p for p in psutil.Process(pid).children() if "KERNEL_ID" in p.environ()]


async def wait_pool(http, kernelspec: str, size: int, within: float = 90) -> None:
    deadline = time.monotonic() + within
    while await metric(http, "eg_pool_kernels", kernelspec) != size:
        assert time.monotonic() < deadline, f"the {kernelspec} pool did not reach {size} kernels"
        await asyncio.sleep(0.2)


async def test_claim_binds_user_env_and_working_dir(gateway_factory, tmp_path):
    """A request gets the waiting kernel (said in the response, the log, an event and /metrics)
    with its user, KERNEL_* env and working directory; the binding leaves no trace in the
    notebook (execution count 1); the pool refills and never lists its waiting kernels."""
    gw = gateway_factory(env=PYTHON_POOL)
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    async with gw.client() as http:
        await wait_pool(http, "python3", 1)
        pooled_id = events(gw, "launched")[0]["kernel_id"]
        assert (await http.get("/api/kernels")).json() == []
        env = {"KERNEL_USERNAME": "alice", "KERNEL_PROJECT": "it's \"quoted\"; import os", "KERNEL_WORKING_DIR": str(workdir)}
        r = await http.post("/api/kernels", json={"name": "python3", "env": env})
        assert r.status_code == 201, r.text
        model = r.json()
        assert model["id"] == pooled_id and model["from_pool"] is True
        assert r.headers["X-EG-Kernel-Source"] == "warm-pool"
        ws = await KernelSocket.connect(gw, model["id"])
        out = await ws.execute("import os; print(os.environ['KERNEL_USERNAME'], os.environ['KERNEL_PROJECT'], os.getcwd(), sep='|')")
        await ws.close()
        assert out["stdout"].strip() == f"alice|{env['KERNEL_PROJECT']}|{workdir}"
        assert out["reply"]["execution_count"] == 1
        await wait_pool(http, "python3", 1)  # refilled
        listed = [k["id"] for k in (await http.get("/api/kernels")).json()]
        assert listed == [pooled_id]
        assert await metric(http, "eg_pool_hits_total", "python3") == 1
        assert 'eg_pool_refill_duration_seconds_count{kernelspec="python3"} 2.0' in (await http.get("/metrics")).text
    claimed = events(gw, "pool_claimed")
    assert [e["kernel_id"] for e in claimed] == [pooled_id]
    assert "claimed from the warm pool of python3 by alice" in gw.output()


async def test_an_r_pool_claim_binds_env_and_working_dir_irkernel(gateway_factory, tmp_path, irkernel):
    """An R kernelspec (IRkernel) is pooled like a Python one: the claim binds the request's
    KERNEL_* env (quotes, backslashes and non-ASCII stay values) and working directory with
    ``Sys.setenv``/``setwd``; a directory that does not exist is a miss, then the usual error."""
    gw = gateway_factory(env={"EG_KERNEL_POOLS": json.dumps({"ir": 1})})
    workdir = tmp_path / "r-notebooks"
    workdir.mkdir()
    async with gw.client() as http:
        await wait_pool(http, "ir", 1)
        pooled_id = events(gw, "launched")[0]["kernel_id"]
        project = 'it\'s "quoted" \\ é; system("touch /tmp/pwned")'
        env = {"KERNEL_USERNAME": "alice", "KERNEL_PROJECT": project, "KERNEL_WORKING_DIR": str(workdir)}
        r = await http.post("/api/kernels", json={"name": "ir", "env": env})
        assert r.status_code == 201, r.text
        assert r.json()["id"] == pooled_id and r.json()["from_pool"] is True
        ws = await KernelSocket.connect(gw, pooled_id)
        out = await ws.execute('cat(Sys.getenv("KERNEL_USERNAME"), Sys.getenv("KERNEL_PROJECT"), getwd(), sep = "|")')
        await ws.close()
        assert out["stdout"] == f"alice|{project}|{workdir}"
        assert out["reply"]["execution_count"] == 1
        await wait_pool(http, "ir", 1)
        r = await http.post("/api/kernels", json={"name": "ir", "env": {"KERNEL_WORKING_DIR": "/no/such/dir"}})
        assert r.status_code >= 400 and "/no/such/dir" in r.json()["message"], r.text
        assert await metric(http, "eg_pool_hits_total", "ir") == 1
    assert "binding the request failed" in events(gw, "pool_miss")[0]["details"]["reason"]


async def test_launch_time_values_and_non_python_kernels_miss(gateway_factory):
    """What cannot be applied after start starts a kernel as usual, with the reason in a
    ``pool_miss`` event and the miss counted; a tiny (non-Python) kernel is claimed only when
    there is nothing to bind."""
    gw = gateway_factory(env={"EG_KERNEL_POOLS": json.dumps({"python3": 1, "tiny": 1})})
    async with gw.client() as http:
        await wait_pool(http, "python3", 1)
        await wait_pool(http, "tiny", 1)
        r = await http.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_UID": "1234"}})
        assert r.status_code == 201 and "from_pool" not in r.json(), r.text
        r = await http.post("/api/kernels", json={"name": "tiny", "env": {"KERNEL_PROJECT": "x"}})
        assert r.status_code == 201 and "from_pool" not in r.json(), r.text
        r = await http.post("/api/kernels", json={"name": "tiny"})
        assert r.status_code == 201 and r.json()["from_pool"] is True, r.text
        assert await metric(http, "eg_pool_misses_total", "python3") == 1
        assert await metric(http, "eg_pool_misses_total", "tiny") == 1
        assert await metric(http, "eg_pool_hits_total", "tiny") == 1
    reasons = [e["details"]["reason"] for e in events(gw, "pool_miss")]
    assert reasons[0] == "KERNEL_UID can only be applied when a kernel starts"
    assert "only for Python and R kernels" in reasons[1]


async def test_bad_working_dir_is_a_miss_then_the_usual_error(gateway_factory):
    """A working directory the kernel cannot enter fails the binding: the pooled kernel is
    discarded and the request gets the cold launch's 4xx/5xx answer, not a half-bound kernel."""
    gw = gateway_factory(env=PYTHON_POOL)
    async with gw.client() as http:
        await wait_pool(http, "python3", 1)
        r = await http.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_WORKING_DIR": "/no/such/dir"}})
        assert r.status_code >= 400 and "/no/such/dir" in r.json()["message"], r.text
        assert (await http.get("/api/kernels")).json() == []
        await wait_pool(http, "python3", 1)
    assert "binding the request failed" in events(gw, "pool_miss")[0]["details"]["reason"]


async def test_pools_skip_per_user_limits_and_culling_count_in_total(gateway_factory):
    """Waiting kernels are not culled and not anyone's; a claimed one counts for its user."""
    gw = gateway_factory(
        "--KernelCuller.cull_idle_timeout=1", "--KernelCuller.cull_interval=0.3",
        env={"EG_KERNEL_POOLS": json.dumps({"python3": 2}), "EG_MAX_KERNELS_PER_USER": "1", "EG_MAX_KERNELS": "3"},
    )
    async with gw.client() as http:
        await wait_pool(http, "python3", 2)
        pooled = {e["kernel_id"] for e in events(gw, "launched")}
        r = await http.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_USERNAME": "bob"}})
        assert r.status_code == 201 and r.json()["from_pool"] is True, r.text
        r = await http.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_USERNAME": "bob"}})
        assert r.status_code == 403 and "per user" in r.json()["message"], r.text
        deadline = time.monotonic() + 60
        while not events(gw, "culled"):  # bob's idle kernel is culled; the waiting ones are not
            assert time.monotonic() < deadline, "the claimed kernel was not culled"
            await asyncio.sleep(0.2)
        while (await http.get("/api/kernels")).json():  # the cull's shutdown (after its event) is done
            assert time.monotonic() < deadline, "the culled kernel was not shut down"
            await asyncio.sleep(0.2)
        await wait_pool(http, "python3", 2)
        r = await http.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_USERNAME": "carol"}})
        assert r.status_code == 201, r.text
    culled = {e["kernel_id"] for e in events(gw, "culled")}
    assert len(culled & pooled) == 1  # only the claimed one; the other waited uncull'd
    assert r.json()["id"] in pooled


async def test_gateway_stop_drops_waiting_kernels(gateway_factory):
    """Waiting kernels are not kept across a restart: stopping the gateway shuts them down."""
    gw = gateway_factory(env={"EG_KERNEL_POOLS": json.dumps({"tiny": 2})})
    async with gw.client() as http:
        await wait_pool(http, "tiny", 2)
    kernels = kernel_children(gw.proc.pid)
    assert len(kernels) == 2
    gw.stop()
    gone, alive = psutil.wait_procs(kernels, timeout=30)
    assert not alive
    assert "warm pool dropped: the gateway is stopping" in gw.output()


async def test_concurrent_requests_share_no_pooled_kernel(gateway_factory):
    """Three requests at once on a pool of one: one gets the waiting kernel, the others start
    their own; every kernel id is distinct and listed."""
    gw = gateway_factory(env={"EG_KERNEL_POOLS": json.dumps({"tiny": 1}), "EG_POOL_REFILL_DELAY": "30"})
    async with gw.client() as http:
        await wait_pool(http, "tiny", 1)
        rs = await asyncio.gather(*(http.post("/api/kernels", json={"name": "tiny"}) for _ in range(3)))
        assert all(r.status_code == 201 for r in rs), [r.text for r in rs]
        models = [r.json() for r in rs]
        assert sum(bool(m.get("from_pool")) for m in models) == 1
        listed = {k["id"] for k in (await http.get("/api/kernels")).json()}
        assert listed == {m["id"] for m in models}
        assert await metric(http, "eg_pool_kernels", "tiny") == 0  # the refill waits refill_delay


async def test_killed_gateway_leaves_no_waiting_kernels(tmp_path, monkeypatch):
    """A gateway killed with SIGKILL cannot shut its waiting kernels down: the next gateway on
    the same port removes them (through the resource manager's hooks) before it serves."""
    import eg_core.testing
    from eg_core.testing import GatewayProcess

    dirs = [str(__import__("pathlib").Path(__file__).parent / "kernelspecs")]
    first = GatewayProcess(tmp_path, env={"EG_KERNEL_POOLS": json.dumps({"tiny": 2})}, kernel_spec_dirs=dirs)
    try:
        async with first.client() as http:
            await wait_pool(http, "tiny", 2)
        left = kernel_children(first.proc.pid)
        assert len(left) == 2
        first.proc.kill()
        first.proc.wait()
    finally:
        first.stop()
    assert all(k.is_running() for k in left)
    monkeypatch.setattr(eg_core.testing, "free_port", lambda: first.port)
    second = GatewayProcess(tmp_path, kernel_spec_dirs=dirs)
    try:
        gone, alive = psutil.wait_procs(left, timeout=30)
        assert not alive
        assert second.output().count("left waiting by an earlier gateway") == 2
    finally:
        second.stop()


async def test_a_claimed_kernel_is_the_claimers_alone(gateway_factory, tmp_path):
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"alice": "alice-secret", "bob": "bob-secret"}))
    gw = gateway_factory(f"--Gateway.users_file={users}", "--KernelPools.pools={\"python3\": 1}")
    headers = {"alice": {"Authorization": "token alice-secret"}, "bob": {"Authorization": "token bob-secret"}}
    async with gw.client() as http:
        await wait_pool(http, "python3", 1)
        r = await http.post("/api/kernels", json={"name": "python3"}, headers=headers["alice"])
        assert r.status_code == 201 and r.json()["from_pool"], r.text
        kid = r.json()["id"]
        assert (await http.get(f"/api/kernels/{kid}", headers=headers["bob"])).status_code == 404
        assert [k["id"] for k in (await http.get("/api/kernels", headers=headers["alice"])).json()] == [kid]
        assert (await http.delete(f"/api/kernels/{kid}", headers=headers["alice"])).status_code == 204
