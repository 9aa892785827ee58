"""YARN kernels through a real gateway, on the emulated ResourceManager: both submission modes,
Enterprise Gateway's kernelspec, the whole lifecycle, and nothing left in the RM afterwards."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile

import httpx

import pytest

from conftest import async_wait_for, gateway_env
from eg_core.testing import (
    KernelSocket, places_with, processes_of_kernel, store_args, stored_launch_key, wait_until_busy,
)

pytestmark = pytest.mark.timeout(300)


def apps_of(rm, cluster, kernel_id):
    return rm.call(lambda: [a for a in cluster.apps.values() if a.name == kernel_id])


async def start(http, name: str, env: dict | None = None):
    r = await http.post("/api/kernels", json={"name": name, "env": env or {}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def stop(http, rm, cluster, kid):
    r = await http.delete(f"/api/kernels/{kid}")
    assert r.status_code == 204, r.text
    await async_wait_for(lambda: all(a.state in ("FINISHED", "FAILED", "KILLED") for a in apps_of(rm, cluster, kid)), 30,
                         lambda: f"apps still live: {[(a.id, a.state) for a in apps_of(rm, cluster, kid)]}")


async def test_rest_kernel_runs_as_the_application_master(gateway, http, rm, reset):
    cluster = reset
    kid = await start(http, "python_yarn_rest")
    [app] = apps_of(rm, cluster, kid)
    assert app.app_type == "JUPYTER" and app.queue == "default" and app.tags == [kid, "eg_gateway=eg"]
    assert app.state == "ACCEPTED" and app.process.poll() is None  # a launcher never registers as an AM
    ws = await KernelSocket.connect(gateway, kid)
    try:
        out = await ws.execute("import os; print(os.environ['CONTAINER_ID'], os.getcwd())")
        assert out["stdout"].split() == [app.container_id, str(app.container_dir)]
        assert "EG_LAUNCH_KEY" not in (await ws.execute("import os; print(sorted(os.environ))"))["stdout"]
    finally:
        await ws.close()
    await stop(http, rm, cluster, kid)
    assert app.state == "KILLED"


async def test_rest_launch_key_is_in_no_launch_context_or_report(gateway_factory, rm, reset, hadoop_conf, tmp_path):
    """The key reaches the AM as a private local resource (eg-launch.key), never in the launch
    context's environment or command: the application reports, the launch context the RM keeps,
    the AM's processes hold no key, and both copies of the file are gone once the kernel is up."""
    cluster = reset
    gw = gateway_factory(*store_args(tmp_path / "store"), f"--YarnSettings.yarn_endpoint={rm.url}",
                         "--Gateway.launch_timeout=60", env=gateway_env(tmp_path, hadoop_conf))
    async with gw.client() as http:
        kid = await start(http, "python_yarn_rest")
        key = stored_launch_key(tmp_path / "store", kid)
        [app] = apps_of(rm, cluster, kid)
        assert app.environment["EG_LAUNCH_KEY_FILE"] == "eg-launch.key" and "EG_LAUNCH_KEY" not in app.environment
        [resource] = app.launch_context["local-resources"]["entry"]
        assert resource["key"] == "eg-launch.key" and resource["value"]["visibility"] == "APPLICATION"
        async with httpx.AsyncClient(base_url=rm.url) as yarn:
            reports = {path: (await yarn.get(path, params={"user.name": "root"})).text
                       for path in (f"/ws/v1/cluster/apps/{app.id}", "/ws/v1/cluster/apps")}
        pids = [line.split()[0] for line in await processes_of_kernel(kid)]
        shown = {**reports, "launch context": app.launch_context, "command": app.command,
                 "environment": app.environment, "ps": subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout,
                 **{f"environ of {pid}": open(f"/proc/{pid}/environ", "rb").read() for pid in pids}}
        assert pids and places_with(key, **shown) == []
        assert not (app.container_dir / "eg-launch.key").exists(), "the launcher removes the key file"
        assert not [p for p in os.listdir(tempfile.gettempdir()) if p.startswith(f"eg-key-{kid}")], "the gateway's copy is removed"
        await stop(http, rm, cluster, kid)


async def test_spark_kernel_interrupt_restart_shutdown(gateway, http, rm, reset):
    cluster = reset
    kid = await start(http, "spark_python_yarn_cluster")
    [app] = apps_of(rm, cluster, kid)
    assert app.app_type == "SPARK" and app.state == "RUNNING" and app.registered and app.tags == [kid, "eg_gateway=eg"]
    assert app.environment["EG_LAUNCH_KEY_FILE"] == "eg-launch.key" and "EG_LAUNCH_KEY" not in app.environment
    assert not [p for p in os.listdir(tempfile.gettempdir()) if p.startswith(f"eg-key-{kid}")], "the key file was not removed"
    ws = await KernelSocket.connect(gateway, kid)
    try:
        assert (await ws.execute("x = 6 * 7; print(x)"))["stdout"] == "42\n"
        running = asyncio.ensure_future(ws.execute("import time; time.sleep(60)", timeout=90))
        await wait_until_busy(http, kid)
        r = await http.post(f"/api/kernels/{kid}/interrupt")
        assert r.status_code == 204
        out = await asyncio.wait_for(running, 60)
        assert out["errors"] == ["KeyboardInterrupt"]
        assert (await ws.execute("print(x)"))["stdout"] == "42\n"
    finally:
        await ws.close()
    r = await http.post(f"/api/kernels/{kid}/restart")
    assert r.status_code == 200, r.text
    first, second = sorted(apps_of(rm, cluster, kid), key=lambda a: a.id)
    assert first.state in ("KILLED", "FINISHED") and second.state == "RUNNING"
    ws = await KernelSocket.connect(gateway, kid)
    try:
        assert (await ws.execute("print('x' in dir())"))["stdout"] == "False\n"
    finally:
        await ws.close()
    await stop(http, rm, cluster, kid)


async def test_spark_kernel_has_a_real_spark_context_cancelled_on_interrupt(gateway, http, rm, reset, spark_runtime):
    """The launcher in the AM container makes ``spark`` on first use with real pyspark (local mode:
    the emulated RM runs no Spark JVM); an interrupt cancels the running job."""
    cluster = reset
    kid = await start(http, "spark_python_yarn_cluster")
    ws = await KernelSocket.connect(gateway, kid)
    try:
        out = await ws.execute('print(type(spark).__name__); print(spark.range(1000).selectExpr("sum(id)").collect()[0][0]); '
                               "print(type(spark).__name__, sc.master); print(sc.uiWebUrl)", timeout=180)
        lines = out["stdout"].splitlines()
        assert lines[:3] == ["LazySpark", "499500", "SparkSession local[*]"], out
        app_id = (await ws.execute("print(sc.applicationId)"))["stdout"].strip()
        jobs = f"{lines[3]}/api/v1/applications/{app_id}/jobs"
        running = asyncio.ensure_future(ws.execute('spark.range(10**13).selectExpr("max(id)").collect()', timeout=120))
        async with httpx.AsyncClient(timeout=60) as ui:
            while not (await ui.get(jobs, params={"status": "running"})).json():
                await asyncio.sleep(0.2)
            assert (await http.post(f"/api/kernels/{kid}/interrupt")).status_code == 204
            assert (await asyncio.wait_for(running, 60))["errors"] == ["KeyboardInterrupt"]
            while (await ui.get(jobs, params={"status": "running"})).json():
                await asyncio.sleep(0.2)
            assert (await ui.get(jobs)).json()[0]["status"] == "FAILED"
    finally:
        await ws.close()
    await stop(http, rm, cluster, kid)


async def test_enterprise_gateway_kernelspec_unchanged(gateway, http, rm, reset):
    cluster = reset
    kid = await start(http, "eg_spark_yarn_cluster")
    [app] = apps_of(rm, cluster, kid)
    assert app.state == "RUNNING"
    ws = await KernelSocket.connect(gateway, kid)
    try:
        assert (await ws.execute("print('hello from YARN')"))["stdout"] == "hello from YARN\n"
    finally:
        await ws.close()
    await stop(http, rm, cluster, kid)


async def test_queue_node_label_and_memory_from_the_request(gateway, http, rm, reset):
    cluster = reset
    env = {"KERNEL_QUEUE": "spark", "KERNEL_NODE_LABEL": "gpu", "KERNEL_DRIVER_MEMORY": "2g", "KERNEL_EXECUTOR_MEMORY": "1g"}
    kid = await start(http, "spark_python_yarn_cluster", env)
    [app] = apps_of(rm, cluster, kid)
    assert (app.queue, app.node_label, app.memory) == ("spark", "gpu", 2048 + 384)
    await stop(http, rm, cluster, kid)
    kid = await start(http, "python_yarn_rest", {"KERNEL_QUEUE": "spark", "KERNEL_DRIVER_MEMORY": "1536m"})
    [app] = apps_of(rm, cluster, kid)
    assert (app.queue, app.memory) == ("spark", 1536)
    await stop(http, rm, cluster, kid)


@pytest.mark.parametrize(
    "env, status, words",
    [
        ({"KERNEL_DRIVER_MEMORY": "lots"}, 400, "KERNEL_DRIVER_MEMORY must be a size"),
        ({"KERNEL_EXECUTOR_MEMORY": "16g"}, 403, "at most 4096 MB"),
        ({"KERNEL_QUEUE": "admin"}, 403, "allowed queues: default, spark"),
        ({"KERNEL_QUEUE": "default", "KERNEL_NODE_LABEL": "gpu"}, 400, "has no node label 'gpu'"),
        ({"KERNEL_NODE_LABEL": "a b"}, 400, "node label name"),
        ({"KERNEL_EXTRA_SPARK_OPTS": "--conf a=b; touch /tmp/pwned"}, 400, "shell metacharacters"),
        ({"KERNEL_USERNAME": "alice"}, None, None),  # impersonation is off: submitted as the gateway's user
    ],
)
async def test_request_values_are_checked_before_submitting(gateway, http, rm, reset, env, status, words):
    cluster = reset
    before = rm.call(lambda: len(cluster.apps))
    r = await http.post("/api/kernels", json={"name": "spark_python_yarn_cluster", "env": env})
    if status is None:
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        [app] = apps_of(rm, cluster, kid)
        assert app.user == "root"
        await stop(http, rm, cluster, kid)
        return
    assert r.status_code == status, r.text
    assert words in r.json()["message"]
    assert rm.call(lambda: len(cluster.apps)) == before, "something was submitted"


async def test_full_queue_is_refused_before_submitting(gateway, http, rm, reset):
    cluster = reset
    rm.call(setattr, cluster, "hold_accepted", {"default"})
    before = rm.call(lambda: len(cluster.apps))
    r = await http.post("/api/kernels", json={"name": "python_yarn_rest"})
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["reason"] == "YARN Queue Has No Room"
    assert "YARN queue 'default'" in body["message"] and "100.0% of its capacity is used" in body["message"]
    assert rm.call(lambda: len(cluster.apps)) == before


@pytest.mark.parametrize("name", ["python_yarn_rest", "spark_python_yarn_cluster"])
async def test_application_failing_at_start_is_named_with_the_diagnostics(gateway, http, rm, reset, name):
    cluster = reset
    rm.call(setattr, cluster, "fail_next_at_start", "Container launch failed: no space left on device")
    r = await http.post("/api/kernels", json={"name": name})
    assert r.status_code == 502, r.text
    message = r.json()["message"]
    assert message.startswith("confirm_startup:")
    assert "ended FAILED" in message and "no space left on device" in message


async def test_spark_submit_failure_carries_its_stderr(gateway, http, rm, reset):
    r = await http.post("/api/kernels", json={"name": "spark_bad_opts"})
    assert r.status_code == 502, r.text
    message = r.json()["message"]
    assert "exited with status 1" in message and "Spark config without '='" in message


async def test_unreachable_resource_manager(gateway, http, rm, reset):
    r = await http.post("/api/kernels", json={"name": "yarn_rest_unreachable"})
    assert r.status_code == 503, r.text
    assert r.json()["reason"] == "YARN ResourceManager Unavailable"
    assert "no active YARN ResourceManager at http://127.0.0.1:" in r.json()["message"]


async def test_launch_timeout_kills_the_waiting_application(gateway, http, rm, reset):
    cluster = reset
    rm.call(setattr, cluster, "stall_accepted", True)
    r = await http.post("/api/kernels", json={"name": "python_yarn_rest", "env": {"KERNEL_LAUNCH_TIMEOUT": "3"}})
    assert r.status_code == 504, r.text
    message = r.json()["message"]
    assert "is ACCEPTED (no AM container yet" in message
    [app] = [a for a in rm.call(lambda: list(cluster.apps.values())) if a.state == "KILLED" and a.process is None][-1:]
    assert app.diagnostics.startswith("Application killed by user")


async def test_kernel_killed_by_yarn_is_reported_dead_with_the_reason(gateway, http, rm, reset):
    cluster = reset
    kid = await start(http, "python_yarn_rest")
    [app] = apps_of(rm, cluster, kid)
    rm.call(cluster.kill_app, app.id, "Container preempted by scheduler")
    await async_wait_for(lambda: "Container preempted by scheduler" in gateway.output(), 30, gateway.output)
    assert f"[kernel {kid}] died" in gateway.output()
    # autorestart: a new application, and the kernel answers again
    await async_wait_for(lambda: f'"event":"restarted","kernel_id":"{kid}"' in gateway.output(), 60, gateway.output)
    assert len(apps_of(rm, cluster, kid)) == 2
    ws = await KernelSocket.connect(gateway, kid)
    try:
        assert (await ws.execute("print(1)"))["stdout"] == "1\n"
    finally:
        await ws.close()
    await stop(http, rm, cluster, kid)


async def test_am_liveness_expiry_of_a_rest_kernel_is_reported(gateway, http, rm, reset):
    """A REST kernel's launcher never heartbeats as an AM: the RM expires it (README's caveat),
    and the kernel is reported dead with the RM's words."""
    cluster = reset
    rm.call(setattr, cluster, "am_expiry", 20.0)
    kid = await start(http, "python_yarn_rest")
    rm.call(setattr, cluster, "am_expiry", None)  # the autorestarted one is left alone
    await async_wait_for(lambda: "timed out" in gateway.output() and f"[kernel {kid}] died" in gateway.output(), 60, gateway.output)
    [first] = [a for a in apps_of(rm, cluster, kid) if a.state in ("FAILED", "KILLED")][:1]
    assert first.state == "FAILED" and "ApplicationMaster for attempt" in first.diagnostics and "timed out" in first.diagnostics
    await async_wait_for(lambda: f'"event":"restarted","kernel_id":"{kid}"' in gateway.output(), 60, gateway.output)
    await stop(http, rm, cluster, kid)


async def test_running_kernels_are_watched_with_one_query_for_all(gateway, http, rm, reset):
    """Three running kernels cost one query of the RM's live applications per watch, not one
    query per kernel; a kill is still seen as soon as the RM says so."""
    cluster = reset
    kids = [await start(http, "python_yarn_rest") for _ in range(3)]
    apps = [app for kid in kids for app in apps_of(rm, cluster, kid)]
    rm.call(cluster.requests.clear)
    listed = lambda: [r for r in rm.call(list, cluster.requests) if r[:2] == ("GET", "/ws/v1/cluster/apps")]  # noqa: E731
    await async_wait_for(lambda: len(listed()) >= 3, 60, lambda: f"requests: {rm.call(list, cluster.requests)}")
    per_app = [r for r in rm.call(list, cluster.requests) if any(r[1].startswith(f"/ws/v1/cluster/apps/{a.id}") for a in apps)]
    assert per_app == [], per_app
    rm.call(cluster.kill_app, apps[0].id, "Killed by an operator")
    await async_wait_for(lambda: f"[kernel {kids[0]}] died" in gateway.output(), 30, gateway.output)
    for kid in kids:
        await stop(http, rm, cluster, kid)


async def test_spark_r_kernelspec_is_refused_by_name_irkernel(gateway, http, rm, reset):
    """Enterprise Gateway's spark_R_yarn_cluster as shipped: SparkR is not in pyspark's package,
    so the launch is refused with a 400 naming the kernelspec and the reason, before anything is
    submitted; an R kernel without Spark (R_yarn_rest) is what works here."""
    cluster = reset
    before = rm.call(lambda: len(cluster.apps))
    r = await http.post("/api/kernels", json={"name": "spark_R_yarn_cluster"})
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert "'spark_r_yarn_cluster' is a Spark R kernel" in message and "SparkR" in message, message
    assert rm.call(lambda: len(cluster.apps)) == before


def _eg_r_launcher_needs() -> str:
    """"TRUE" when the R packages and the system Python modules EG's R launcher uses are here."""
    r = subprocess.run(
        ["Rscript", "-e", "cat(all(sapply(c('argparse', 'stringr', 'base64enc'), requireNamespace, quietly = TRUE)))"],
        capture_output=True, text=True,
    )
    py = subprocess.run(["/usr/bin/python3", "-c", "import Cryptodome, jupyter_client"], capture_output=True, text=True)
    return r.stdout + py.stderr


async def test_enterprise_gateway_r_launcher_irkernel(gateway, http, rm, reset, irkernel):
    """Enterprise Gateway's launch_IRkernel.R with its server_listener.py, as shipped (vendored
    in the kernelspec's scripts/), as a YARN application: its version-1 callback is accepted,
    the kernel runs R, an interrupt and the shutdown go through its comm port."""
    cluster = reset
    needs = await asyncio.to_thread(_eg_r_launcher_needs)
    assert needs == "TRUE", f"EG's R launcher needs r-cran-argparse, r-cran-stringr, r-cran-base64enc, python3-pycryptodome and python3-jupyter-client: {needs}"
    kid = await start(http, "eg_R_yarn_rest")
    ws = await KernelSocket.connect(gateway, kid)
    try:
        assert (await ws.execute('cat(6 * 7, "\\n", sep = "")'))["stdout"] == "42\n"
        msg_id = await ws.request("execute_request", {"code": 'cat("sleeping\\n")\nSys.sleep(120)', "silent": False})
        while not (await ws.recv(60))["content"].get("text", "").startswith("sleeping"):
            pass
        assert (await http.post(f"/api/kernels/{kid}/interrupt", json={})).status_code == 204
        while (reply := await ws.recv(60))["header"]["msg_type"] != "execute_reply" or reply["parent_header"].get("msg_id") != msg_id:
            pass
        assert reply["content"]["status"] == "abort", reply["content"]
    finally:
        await ws.close()
    await stop(http, rm, cluster, kid)
