"""What a kernel pod may do with the cluster, and readiness: a pod kernel gets no service-account
token (so it cannot read the gateway's Secrets), and ``GET /api/ready`` answers 503 while the
gateway cannot reach its API server, 200 when it can."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from eg_core.testing import GatewayProcess, KernelSocket, free_port

from k8s_helpers import cluster_access_code, gateway_args, left_behind

pytestmark = pytest.mark.timeout(300)
async def test_a_pod_kernel_has_no_token_and_cannot_read_secrets(gateway, cluster, core, namespace):
    async with gateway.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_kubernetes"})
        assert r.status_code == 201, f"{r.text}\n{gateway.output()[-3000:]}"
        kid = r.json()["id"]
        try:
            pods = await asyncio.to_thread(core.list_namespaced_pod, namespace, label_selector=f"kernel_id={kid}")
            assert pods.items[0].spec.automount_service_account_token is False
            ks = await KernelSocket.connect(gateway, kid)
            try:
                out = await ks.execute(cluster_access_code(cluster, namespace))
            finally:
                await ks.close()
            assert out["reply"]["status"] == "ok", out
            answer = yaml.safe_load(out["stdout"])
            assert answer["token"] is False
            assert answer["secrets"] in (401, 403), answer
        finally:
            assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert await left_behind(core, namespace, kid) == {}


async def test_ready_only_while_the_api_server_answers(tmp_path, cluster, namespace, gateway_id, kernel_spec_dirs):
    config = yaml.safe_load(open(cluster["KUBECONFIG"]))
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    closed = tmp_path / "closed-kubeconfig"
    closed.write_text(yaml.safe_dump(config))
    reachable = GatewayProcess(tmp_path, *gateway_args(cluster, namespace, gateway_id), kernel_spec_dirs=kernel_spec_dirs)
    unreachable = GatewayProcess(tmp_path, *gateway_args(cluster, namespace, gateway_id, kubeconfig=str(closed)),
                                 kernel_spec_dirs=kernel_spec_dirs)
    try:
        for gw, status in ((reachable, 200), (unreachable, 503)):
            async with gw.client() as http:
                http.headers.pop("Authorization")  # a probe sends no token
                r = await http.get("/api/ready")
                assert r.status_code == status, f"{r.text}\n{gw.output()[-3000:]}"
                if status == 200:
                    assert r.json() == {"ready": True}
                else:
                    assert r.json()["reason"] == "Not Ready"
                    assert r.json()["message"].startswith("k8s: the Kubernetes API server does not answer: ")
                    assert (await http.get("/api/ready")).status_code == 503
                    assert gw.output().count("Not ready: k8s: the Kubernetes API server does not answer") == 1  # not per probe
    finally:
        reachable.stop()
        unreachable.stop()
