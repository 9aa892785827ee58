"""One gateway, two Kubernetes clusters: each kernelspec names its cluster (``kubeconfig`` and
``context`` in its config), and the gateway keeps an API client and one pod watch per cluster,
adopts the kernels of both after a SIGKILL, and sweeps orphans on both.

The second cluster is ci/setup.sh's instance 2 (:func:`conftest.cluster2`: other ports, node,
engine and pod network, no kube-proxy); kernels there run the connection file the gateway wrote
and are dialled on their pod IPs, as on the first.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import uuid

import pytest
from kubernetes import client

from eg_core.testing import GatewayProcess, run_doctor

from k8s_helpers import api_client_of, gateway_args, left_behind, run, scratch_namespace

pytestmark = pytest.mark.timeout(300)

ARGV = ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]


@pytest.fixture(scope="module")
def core2(cluster2) -> client.CoreV1Api:
    return client.CoreV1Api(api_client_of(cluster2["KUBECONFIG"]))


@pytest.fixture(scope="module")
def namespace2(core2) -> str:
    """A namespace of this module's kernels on the second cluster (deleted afterwards)."""
    yield from scratch_namespace(core2, "eg-test2")


@pytest.fixture(scope="module")
def kernel_spec_dirs(tmp_path_factory, cluster, cluster2, namespace2) -> list[str]:
    """``here`` runs on the gateway's cluster; ``there`` names the second one; the last two name
    a kubeconfig that does not exist and a context the second one's kubeconfig lacks."""
    root = tmp_path_factory.mktemp("kernelspecs")
    specs = {
        "here": {},
        "there": {"kubeconfig": cluster2["KUBECONFIG"], "context": "eg2", "namespace": namespace2},
        "no_kubeconfig": {"kubeconfig": str(root / "missing-kubeconfig")},
        "no_context": {"kubeconfig": cluster2["KUBECONFIG"], "context": "nowhere"},
    }
    for name, extra in specs.items():
        (root / name).mkdir()
        spec = {"display_name": f"k8s {name}", "language": "python", "argv": ARGV,
                "metadata": {"kernel_provisioner": {"provisioner_name": "eg-k8s", "config": {"image_name": cluster["EG_K8S_IMAGE"], **extra}}}}
        (root / name / "kernel.json").write_text(json.dumps(spec))
    return [str(root)]


def start_gateway(tmp, cluster, namespace, gateway_id, kernel_spec_dirs, *extra) -> GatewayProcess:
    tmp.mkdir(exist_ok=True)
    return GatewayProcess(tmp, *gateway_args(cluster, namespace, gateway_id, *extra), kernel_spec_dirs=kernel_spec_dirs)


def store_args(tmp) -> list[str]:
    return ["--Gateway.availability_mode=standalone", f"--FileSessionStore.persistence_root={tmp / 'sessions'}"]


async def new_kernel(gw, name: str) -> str:
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": name})
        assert r.status_code == 201, f"{r.text}\n{gw.output()[-3000:]}"
        return r.json()["id"]


async def pods_of(core: client.CoreV1Api, kernel_id: str) -> list:
    """The kernel's pods in any namespace of the cluster ``core`` talks to."""
    listing = await asyncio.to_thread(core.list_pod_for_all_namespaces, label_selector=f"kernel_id={kernel_id}")
    return [p for p in listing.items if not p.metadata.deletion_timestamp]


def pod_watchers(kubeconfig: str) -> int:
    """The API server's count of registered pod watchers (every client's)."""
    metrics = subprocess.run(["kubectl", f"--kubeconfig={kubeconfig}", "get", "--raw", "/metrics"],
                             capture_output=True, text=True, check=True, timeout=60).stdout
    match = re.search(r'^apiserver_registered_watchers\{group="",kind="Pod",version="v1"\} (\d+)', metrics, re.M)
    assert match, "the API server reports no pod watcher count"
    return int(match.group(1))


async def test_kernels_on_two_clusters_at_once_with_one_watch_each(tmp_path, cluster, cluster2, core, core2, namespace, namespace2,
                                                                   kernel_spec_dirs):
    gw = start_gateway(tmp_path / "gw", cluster, namespace, f"eg-two-{uuid.uuid4().hex[:6]}", kernel_spec_dirs)
    kids: list[str] = []
    try:
        kids = [await new_kernel(gw, "there")]  # the gateway's watch of the second cluster starts with it
        first = await asyncio.to_thread(pod_watchers, cluster2["KUBECONFIG"])  # with the kubelet's, the scheduler's...
        names = ["there", "here", "there", "here"]
        kids += list(await asyncio.gather(*(new_kernel(gw, name) for name in names[1:])))
        for name, kid in zip(names, kids):
            own, other = (core, core2) if name == "here" else (core2, core)
            found = await pods_of(own, kid)
            assert [p.metadata.namespace for p in found] == [namespace if name == "here" else namespace2], found
            assert await pods_of(other, kid) == [], f"kernel {kid} ({name}) has a pod on the other cluster"
            assert await run(gw, kid, "import os; print(os.environ['KERNEL_NAMESPACE'])") == f"{found[0].metadata.namespace}\n"
        during = await asyncio.to_thread(pod_watchers, cluster2["KUBECONFIG"])
        assert during == first, f"pod watchers on the second cluster: {first} with the gateway's first kernel there, {during} with two"
        async with gw.client() as http:
            for kid in kids:
                assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    finally:
        gw.stop()
    for name, kid in zip(names, kids):
        assert await left_behind(*((core, namespace) if name == "here" else (core2, namespace2)), kid) == {}


async def test_gateway_sigkill_then_restart_adopts_the_kernels_of_both_clusters(tmp_path, cluster, core, core2, namespace, namespace2,
                                                                                kernel_spec_dirs):
    gateway_id = f"eg-adopt2-{uuid.uuid4().hex[:6]}"
    first = start_gateway(tmp_path / "first", cluster, namespace, gateway_id, kernel_spec_dirs, *store_args(tmp_path))
    here, there = await new_kernel(first, "here"), await new_kernel(first, "there")
    for kid in (here, there):
        await run(first, kid, "x = 42")
    uid = (await pods_of(core2, there))[0].metadata.uid
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(30)
    second = start_gateway(tmp_path / "second", cluster, namespace, gateway_id, kernel_spec_dirs, *store_args(tmp_path))
    try:
        async with second.client() as http:
            listed = {k["id"] for k in (await http.get("/api/kernels")).json()}
        assert {here, there} <= listed, second.output()[-3000:]
        for kid in (here, there):
            assert await run(second, kid, "print(x == 42)") == "True\n"
        assert [p.metadata.uid for p in await pods_of(core2, there)] == [uid], "the same pod, adopted"
        async with second.client() as http:
            for kid in (here, there):
                assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    finally:
        second.stop()
    assert await left_behind(core, namespace, here) == {}
    assert await left_behind(core2, namespace2, there) == {}


async def test_an_orphan_on_the_second_cluster_is_swept(tmp_path, cluster, cluster2, core2, namespace, namespace2, kernel_spec_dirs):
    gateway_id = f"eg-orphan2-{uuid.uuid4().hex[:6]}"
    first = start_gateway(tmp_path / "first", cluster, namespace, gateway_id, kernel_spec_dirs)
    kid = await new_kernel(first, "there")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(30)
    assert await pods_of(core2, kid) != []
    # no store knows it: the second gateway has an empty file store and keeps no session in the cluster
    second = start_gateway(tmp_path / "second", cluster, namespace, gateway_id, kernel_spec_dirs,
                           "--KubernetesSettings.orphans_at_startup=remove", "--KubernetesSettings.store_sessions=False",
                           f"--FileSessionStore.persistence_root={tmp_path / 'empty-store'}")
    try:
        output = await second.wait_for_output(f"Removed kernel pod {namespace2}/")
        assert kid in output and f"in {cluster2['KUBECONFIG']} (context eg2)" in output, output[-3000:]
        assert await left_behind(core2, namespace2, kid) == {}
    finally:
        second.stop()


@pytest.mark.parametrize("name, named", [("no_kubeconfig", "missing-kubeconfig"), ("no_context", "'nowhere'")])
async def test_a_kernelspecs_unusable_cluster_fails_its_launch_naming_it(tmp_path, cluster, namespace, kernel_spec_dirs, name, named):
    gw = start_gateway(tmp_path / "gw", cluster, namespace, f"eg-bad-{uuid.uuid4().hex[:6]}", kernel_spec_dirs)
    try:
        async with gw.client() as http:
            r = await http.post("/api/kernels", json={"name": name})
            assert r.status_code == 400, r.text
            assert r.json()["reason"] == "Kubernetes Configuration Invalid" and named in r.json()["message"], r.json()
            r = await http.post("/api/kernels", json={"name": "here"})  # the gateway's own cluster still serves
            assert r.status_code == 201, r.text
            assert (await http.delete(f"/api/kernels/{r.json()['id']}")).status_code == 204
    finally:
        gw.stop()


def test_doctor_checks_each_cluster(cluster, cluster2, namespace, kernel_spec_dirs):
    result = run_doctor(f"--KubernetesSettings.kubeconfig={cluster['KUBECONFIG']}", f"--KubernetesSettings.namespace={namespace}",
                        kernel_spec_dirs=kernel_spec_dirs)
    lines = result.stdout.splitlines()
    servers = [line for line in lines if ": API server of " in line]
    for where in (cluster["KUBECONFIG"], f"{cluster2['KUBECONFIG']} (context eg2)"):
        assert any(line.startswith("ok") and f"API server of {where}: Kubernetes v1.20" in line for line in servers), result.stdout
    failed = [line for line in servers if line.startswith("FAIL")]
    assert len(failed) == 2 and any("missing-kubeconfig" in line for line in failed) and any("'nowhere'" in line for line in failed), result.stdout
    assert any(line.startswith("ok") and "kernelspec there: " in line and f"of {cluster2['KUBECONFIG']}" in line for line in lines), result.stdout
    assert result.returncode == 1  # the two kernelspecs whose cluster cannot be configured
