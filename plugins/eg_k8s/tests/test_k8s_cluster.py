"""The cluster as the store and the source of truth: adoption after a gateway SIGKILL, two
replicas with no shared filesystem, orphans, RBAC checks, and one watch for all kernels."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import signal
import subprocess
import time
import uuid

import pytest

from eg_core.testing import GatewayProcess

from k8s_helpers import gateway_args, left_behind, pod_of, run

pytestmark = pytest.mark.timeout(300)


def start_gateway(tmp, cluster, namespace, gateway_id, kernel_spec_dirs, *extra, kubeconfig=None):
    return GatewayProcess(tmp, *gateway_args(cluster, namespace, gateway_id, *extra, kubeconfig=kubeconfig), kernel_spec_dirs=kernel_spec_dirs)


async def new_kernel(gw) -> str:
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_kubernetes"})
        assert r.status_code == 201, f"{r.text}\n{gw.output()[-3000:]}"
        return r.json()["id"]


async def test_gateway_sigkill_then_restart_adopts_pod_kernels_from_the_cluster(tmp_path, cluster, core, namespace, kernel_spec_dirs):
    gateway_id = f"eg-adopt-{uuid.uuid4().hex[:6]}"
    store = ["--Gateway.availability_mode=standalone", f"--FileSessionStore.persistence_root={tmp_path / 'sessions'}"]
    first = start_gateway(tmp_path, cluster, namespace, gateway_id, kernel_spec_dirs, *store)
    kids = [await new_kernel(first) for _ in range(2)]
    for n, kid in enumerate(kids):
        await run(first, kid, f"state = {n}")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(30)
    assert not list((tmp_path / "sessions").glob("*.json")), "pod kernels' sessions belong in the cluster"
    pod = await pod_of(core, namespace, kids[0])
    assert "eg.jupyter.org/session" in pod.metadata.annotations
    record = json.loads(pod.metadata.annotations["eg.jupyter.org/session"])
    eg = record["provisioner"]["eg"]
    assert "key" not in record["provisioner"]["connection_info"] and "key" not in eg["connection_info"], "keys belong in the Secret"
    assert "launch_key" not in eg["state"] and "launch_key" not in eg["process_info"]
    second = start_gateway(tmp_path, cluster, namespace, gateway_id, kernel_spec_dirs, *store)
    try:
        async with second.client() as http:
            listed = {k["id"] for k in (await http.get("/api/kernels")).json()}
            assert set(kids) <= listed, second.output()[-3000:]
        for n, kid in enumerate(kids):
            assert await run(second, kid, "print(state)") == f"{n}\n"
        async with second.client() as http:
            for kid in kids:
                assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    finally:
        second.stop()
    for kid in kids:
        assert await left_behind(core, namespace, kid) == {}


async def test_two_replicas_reach_each_others_kernels(tmp_path, cluster, core, namespace, kernel_spec_dirs):
    gateway_id = f"eg-ha-{uuid.uuid4().hex[:6]}"
    replicas = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        replicas.append(start_gateway(tmp_path / name, cluster, namespace, gateway_id, kernel_spec_dirs,
                                      "--Gateway.availability_mode=replication",
                                      f"--FileSessionStore.persistence_root={tmp_path / name / 'sessions'}"))
    a, b = replicas
    try:
        kid = await new_kernel(a)
        await run(a, kid, "shared = 'set through A'")
        assert await run(b, kid, "print(shared)") == "set through A\n"
        async with b.client() as http:
            assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
        assert await left_behind(core, namespace, kid) == {}
        async with a.client() as http:  # A learns from the cluster that B shut it down
            deadline = time.monotonic() + 60
            while (await http.get(f"/api/kernels/{kid}")).status_code != 404:
                assert time.monotonic() < deadline, a.output()[-3000:]
                await asyncio.sleep(0.2)
    finally:
        a.stop()
        b.stop()


async def test_orphan_pods_are_removed_at_startup(tmp_path, cluster, core, namespace, kernel_spec_dirs):
    gateway_id = f"eg-orphan-{uuid.uuid4().hex[:6]}"
    first = start_gateway(tmp_path, cluster, namespace, gateway_id, kernel_spec_dirs)
    kid = await new_kernel(first)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(30)
    assert await pod_of(core, namespace, kid) is not None
    # an orphan is a pod no store knows: the second gateway has an empty file store and no cluster store
    second = start_gateway(tmp_path, cluster, namespace, gateway_id, kernel_spec_dirs, "--KubernetesSettings.orphans_at_startup=remove",
                           "--KubernetesSettings.store_sessions=False", f"--FileSessionStore.persistence_root={tmp_path / 'eg-empty-store'}")
    try:
        deadline = time.monotonic() + 60
        while f"Removed kernel pod {namespace}/" not in second.output():
            assert time.monotonic() < deadline, second.output()[-3000:]
            await asyncio.sleep(0.2)
        assert kid in second.output()
        assert await left_behind(core, namespace, kid) == {}
    finally:
        second.stop()


async def test_missing_rbac_permission_is_named_at_startup_and_at_launch(tmp_path, cluster, core, api, namespace, kernel_spec_dirs):
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(api)
    name = f"limited-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(core.create_namespaced_service_account, namespace, {"metadata": {"name": name}})
    await asyncio.to_thread(rbac.create_namespaced_role, namespace, {
        "metadata": {"name": name},
        "rules": [{"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["create", "get", "list", "watch", "patch"]}],
    })
    await asyncio.to_thread(rbac.create_namespaced_role_binding, namespace, {
        "metadata": {"name": name}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    })
    token = None
    deadline = time.monotonic() + 60
    while token is None:  # the token controller makes the service account's token Secret
        sa = await asyncio.to_thread(core.read_namespaced_service_account, name, namespace)
        if sa.secrets:
            secret = await asyncio.to_thread(core.read_namespaced_secret, sa.secrets[0].name, namespace)
            token = base64.b64decode(secret.data["token"]).decode()
        else:
            assert time.monotonic() < deadline, "no token Secret for the service account"
            await asyncio.sleep(0.2)
    kubeconfig = tmp_path / "limited.kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{cluster['EG_K8S_APISERVER_PORT']}', certificate-authority: '{cluster['EG_K8S_CA']}'}}}}]\n"
        f"users: [{{name: u, user: {{token: '{token}'}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u}}}}]\n"
    )
    gw = start_gateway(tmp_path, cluster, namespace, f"eg-rbac-{uuid.uuid4().hex[:6]}", kernel_spec_dirs,
                       kubeconfig=str(kubeconfig))
    try:
        deadline = time.monotonic() + 30
        while "Kubernetes RBAC" not in gw.output():
            assert time.monotonic() < deadline, gw.output()[-3000:]
            await asyncio.sleep(0.1)
        assert f"may not delete pods in namespace {namespace}" in gw.output()
        assert f"may not get pods/log in namespace {namespace}" in gw.output()
        kid = str(uuid.uuid4())
        async with gw.client() as http:
            r = await http.post("/api/kernels", json={"name": "python_kubernetes", "env": {"KERNEL_ID": kid}})
        assert r.status_code == 403, r.text
        assert f"delete pods in namespace {namespace}" in r.json()["message"], r.json()
        assert "delete secrets" in r.json()["message"]
        assert await left_behind(core, namespace, kid) == {}
    finally:
        gw.stop()


async def test_one_watch_serves_every_kernel(gateway, http, cluster):
    """The API server's count of pod watchers does not grow with the gateway's kernels."""

    def pod_watchers() -> int:
        metrics = subprocess.run(["kubectl", f"--kubeconfig={cluster['KUBECONFIG']}", "get", "--raw", "/metrics"],
                                 capture_output=True, text=True, check=True, timeout=60).stdout
        match = re.search(r'^apiserver_registered_watchers\{group="",kind="Pod",version="v1"\} (\d+)', metrics, re.M)
        assert match, "the API server reports no pod watcher count"
        return int(match.group(1))

    kids = []
    try:
        # the watch starts in the background at startup: it surely runs once a kernel has started
        r = await http.post("/api/kernels", json={"name": "python_kubernetes"})
        assert r.status_code == 201, r.text
        kids.append(r.json()["id"])
        before = await asyncio.to_thread(pod_watchers)
        for _ in range(3):
            r = await http.post("/api/kernels", json={"name": "python_kubernetes"})
            assert r.status_code == 201, r.text
            kids.append(r.json()["id"])
        during = await asyncio.to_thread(pod_watchers)
    finally:
        for kid in kids:
            await http.delete(f"/api/kernels/{kid}")
    assert during <= before, f"pod watchers grew from {before} to {during} with 3 more kernels"
