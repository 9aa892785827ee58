"""ResourceManager HA failover (the first RM stops, the second takes over), adoption of a running
YARN kernel by a new gateway after a SIGKILL, and impersonation."""

from __future__ import annotations

import json

import pytest

from conftest import async_wait_for, gateway_env
from eg_core.testing import GatewayProcess, KernelSocket
from yarn_emulator import Emulator, write_hadoop_conf

pytestmark = pytest.mark.timeout(300)


def apps_of(rm, cluster, kernel_id):
    return rm.call(lambda: [a for a in cluster.apps.values() if a.name == kernel_id])


async def execute(gateway, kid, code):
    ws = await KernelSocket.connect(gateway, kid)
    try:
        return await ws.execute(code)
    finally:
        await ws.close()


@pytest.fixture
def standby(cluster, loop_thread, rm):
    emulator = Emulator(cluster, loop_thread, active=False)
    yield emulator
    emulator.stop()
    if rm.server is None:
        rm.start()
    rm.make_active()
    emulator.active = False


async def test_failover_to_the_alternate_resource_manager(tmp_path, kernel_spec_dirs, rm, standby, reset):
    cluster = reset
    conf = write_hadoop_conf(tmp_path / "conf", [rm.address, standby.address])
    gw = GatewayProcess(
        tmp_path, f"--YarnSettings.yarn_endpoint={rm.url}", f"--YarnSettings.alt_yarn_endpoint={standby.url}",
        "--YarnSettings.watch_interval=1", env=gateway_env(tmp_path, conf), kernel_spec_dirs=kernel_spec_dirs,
    )
    try:
        async with gw.client() as http:
            r = await http.post("/api/kernels", json={"name": "python_yarn_rest"})
            assert r.status_code == 201, r.text
            kid = r.json()["id"]
            [app] = apps_of(rm, cluster, kid)
            assert ("POST", "/ws/v1/cluster/apps", "root") in rm.call(lambda: list(cluster.requests))
            rm.stop()  # the active RM goes away; the standby takes over
            standby.make_active()
            assert (await execute(gw, kid, "print('still here')"))["stdout"] == "still here\n"
            r = await http.post("/api/kernels", json={"name": "spark_python_yarn_cluster"})
            assert r.status_code == 201, r.text
            kid2 = r.json()["id"]
            for k in (kid, kid2):
                assert (await http.delete(f"/api/kernels/{k}")).status_code == 204
            assert app.state == "KILLED"
            assert "looking for the active one" in gw.output()
    finally:
        gw.stop()


async def test_gateway_sigkill_then_adoption_by_application_id(tmp_path, kernel_spec_dirs, rm, hadoop_conf, reset):
    cluster = reset
    store = tmp_path / "sessions"
    args = (f"--YarnSettings.yarn_endpoint={rm.url}", "--Gateway.availability_mode=standalone",
            f"--FileSessionStore.persistence_root={store}")
    first = GatewayProcess(tmp_path, *args, env=gateway_env(tmp_path, hadoop_conf), kernel_spec_dirs=kernel_spec_dirs)
    try:
        async with first.client() as http:
            r = await http.post("/api/kernels", json={"name": "python_yarn_rest"})
            assert r.status_code == 201, r.text
            kid = r.json()["id"]
        assert (await execute(first, kid, "kept = 'across gateways'"))["reply"]["status"] == "ok"
        [app] = apps_of(rm, cluster, kid)
        saved = json.loads(next(store.glob(f"*{kid}*")).read_text())
        assert app.id in json.dumps(saved)
    finally:
        first.proc.kill()  # SIGKILL: no shutdown of anything
        first.proc.wait()
        first.log.close()
    assert app.state == "ACCEPTED" and app.process.poll() is None
    second = GatewayProcess(tmp_path, *args, env=gateway_env(tmp_path, hadoop_conf), kernel_spec_dirs=kernel_spec_dirs)
    try:
        async with second.client() as http:
            await async_wait_for(lambda: kid in second.output() or True, 5)
            r = await http.get(f"/api/kernels/{kid}")
            assert r.status_code == 200, r.text
            assert (await execute(second, kid, "print(kept)"))["stdout"] == "across gateways\n"
            assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
        assert app.state == "KILLED"
    finally:
        second.stop()


async def test_impersonation_submits_as_the_kernel_user(tmp_path, kernel_spec_dirs, rm, hadoop_conf, reset):
    cluster = reset
    gw = GatewayProcess(
        tmp_path, f"--YarnSettings.yarn_endpoint={rm.url}", "--YarnSettings.impersonation_enabled=True",
        env=gateway_env(tmp_path, hadoop_conf), kernel_spec_dirs=kernel_spec_dirs,
    )
    try:
        async with gw.client() as http:
            for name in ("python_yarn_rest", "spark_python_yarn_cluster", "eg_spark_yarn_cluster"):
                r = await http.post("/api/kernels", json={"name": name, "env": {"KERNEL_USERNAME": "alice"}})
                assert r.status_code == 201, r.text
                kid = r.json()["id"]
                [app] = apps_of(rm, cluster, kid)
                assert app.user == "alice", name
                assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
            r = await http.post("/api/kernels", json={"name": "python_yarn_rest", "env": {"KERNEL_USERNAME": "hdfs"}})
            assert r.status_code == 403 and "may not run as user 'hdfs'" in r.json()["message"]
    finally:
        gw.stop()


async def test_orphaned_applications_are_found_then_killed(tmp_path, kernel_spec_dirs, rm, hadoop_conf, reset):
    cluster = reset
    first = GatewayProcess(tmp_path, f"--YarnSettings.yarn_endpoint={rm.url}", "--YarnSettings.gateway_id=orphans-test",
                           env=gateway_env(tmp_path, hadoop_conf), kernel_spec_dirs=kernel_spec_dirs)
    try:
        async with first.client() as http:
            kids = []
            for name in ("python_yarn_rest", "spark_python_yarn_cluster"):
                r = await http.post("/api/kernels", json={"name": name})
                assert r.status_code == 201, r.text
                kids.append(r.json()["id"])
    finally:
        first.proc.kill()
        first.proc.wait()
        first.log.close()
    apps = [a for kid in kids for a in apps_of(rm, cluster, kid)]
    for policy, state in (("log", "live"), ("remove", "KILLED")):
        gw = GatewayProcess(tmp_path, f"--YarnSettings.yarn_endpoint={rm.url}", "--YarnSettings.gateway_id=orphans-test",
                            f"--YarnSettings.orphans_at_startup={policy}",
                            # another session store: the killed gateway's records would be adopted, not found as orphans
                            f"--FileSessionStore.persistence_root={tmp_path / 'other-store'}", env=gateway_env(tmp_path, hadoop_conf),
                            kernel_spec_dirs=kernel_spec_dirs)
        try:
            await async_wait_for(lambda: all(kid in gw.output() for kid in kids), 30, gw.output)
            if state == "live":
                assert all(a.state in ("ACCEPTED", "RUNNING") for a in apps)
            else:
                await async_wait_for(lambda: all(a.state == "KILLED" for a in apps), 30, lambda: [(a.id, a.state) for a in apps])
        finally:
            gw.stop()
