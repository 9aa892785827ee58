"""The test cluster's networks: kernel pods on the pod network (dialled on their pod IP), host
networking as an option, and ClusterIP Services (kube-proxy) reached from the host and from pods,
the in-cluster ``kubernetes`` Service included."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid

import httpx
import pytest
from kubernetes import watch

from eg_core.testing import GatewayProcess

from k8s_helpers import gateway_args, pod_of, run

pytestmark = pytest.mark.timeout(300)

SERVE = """
import http.server, threading
class Reply(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = {body!r}.encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Reply)
threading.Thread(target=server.serve_forever, daemon=True).start()
"""

FETCH = """
import urllib.request
print(urllib.request.urlopen({url!r}, timeout=20).read().decode())
"""

IN_CLUSTER = """
import json, os, ssl, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
request = urllib.request.Request(f"https://{host}:{port}/version", headers={"Authorization": "Bearer " + open(f"{sa}/token").read()})
version = json.load(urllib.request.urlopen(request, context=ssl.create_default_context(cafile=f"{sa}/ca.crt"), timeout=20))
print(host, version["gitVersion"])
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, kernel_spec_dirs, cluster, namespace, gateway_id):
    """The kernel pods of this module's gateway get their service account's token, which eg-k8s
    gives only where a kernel is meant to use the API: the in-cluster test uses it."""
    gw = GatewayProcess(tmp_path_factory.mktemp("gw"), *gateway_args(cluster, namespace, gateway_id, "--KubernetesSettings.service_account_token=mount"),
                        kernel_spec_dirs=kernel_spec_dirs)
    yield gw
    gw.stop()


async def new_kernel(http, gw) -> str:
    r = await http.post("/api/kernels", json={"name": "python_kubernetes"})
    assert r.status_code == 201, f"{r.text}\n{gw.output()[-3000:]}"
    return r.json()["id"]


async def ready_endpoints(core, namespace: str, service: str) -> list[str]:
    """The Service's ready endpoint addresses, once it has one (watched, not polled)."""
    def first_ready() -> list[str]:
        stream = watch.Watch()
        for event in stream.stream(core.list_namespaced_endpoints, namespace, field_selector=f"metadata.name={service}", timeout_seconds=60):
            addresses = [a.ip for s in event["object"].subsets or [] for a in s.addresses or []]
            if addresses:
                stream.stop()
                return addresses
        return []

    return await asyncio.to_thread(first_ready)


async def proxied(namespace: str, service: str, address: str) -> None:
    """Until kube-proxy's rules send ``service`` to ``address``. kube-proxy announces nothing when
    its rules are in (the Endpoints come first), so its rules are read, as a client would retry."""
    comment, target = f'"{namespace}/{service}"', f"--to-destination {address}"
    while True:
        proc = await asyncio.create_subprocess_exec("iptables-save", "-t", "nat", stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.DEVNULL)
        rules, _ = await proc.communicate()
        if any(comment in rule and target in rule for rule in rules.decode().splitlines()):
            return
        await asyncio.sleep(0.1)


async def test_kernel_pods_are_on_the_pod_network_and_dialled_on_their_pod_ip(gateway, http, core, cluster, namespace):
    kid = await new_kernel(http, gateway)
    try:
        pod = await pod_of(core, namespace, kid)
        assert not pod.spec.host_network
        assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(cluster["EG_K8S_POD_CIDR"])
        # reachable only there: its sockets are bound in the pod's own network namespace
        assert (await run(gateway, kid, "import socket; print(socket.gethostbyname(socket.gethostname()))")).strip() == pod.status.pod_ip
    finally:
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204


async def test_host_networking_stays_an_option(tmp_path, cluster, core, namespace, kernel_spec_dirs):
    gw = GatewayProcess(tmp_path, *gateway_args(cluster, namespace, f"eg-hostnet-{uuid.uuid4().hex[:6]}", host_network=True),
                        kernel_spec_dirs=kernel_spec_dirs)
    try:
        async with gw.client() as http:
            kid = await new_kernel(http, gw)
            try:
                pod = await pod_of(core, namespace, kid)
                assert pod.spec.host_network
                assert ipaddress.ip_address(pod.status.pod_ip) not in ipaddress.ip_network(cluster["EG_K8S_POD_CIDR"])
                assert (await run(gw, kid, "print(6 * 7)")) == "42\n"
            finally:
                assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    finally:
        gw.stop()


async def test_cluster_ip_service_in_front_of_a_kernel_pod_answers_the_host_and_other_pods(gateway, http, core, namespace):
    served, client = await new_kernel(http, gateway), await new_kernel(http, gateway)
    service = f"eg-svc-{served[:8]}"
    try:
        await run(gateway, served, SERVE.format(body=f"kernel {served}"))
        svc = await asyncio.to_thread(core.create_namespaced_service, namespace, {
            "metadata": {"name": service},
            "spec": {"type": "ClusterIP", "selector": {"kernel_id": served}, "ports": [{"port": 80, "targetPort": 8080}]},
        })
        cluster_ip = svc.spec.cluster_ip
        pod = await pod_of(core, namespace, served)
        assert await ready_endpoints(core, namespace, service) == [pod.status.pod_ip]
        await asyncio.wait_for(proxied(namespace, service, f"{pod.status.pod_ip}:8080"), 60)
        async with httpx.AsyncClient(timeout=20) as web:  # from the host, through kube-proxy's rules
            r = await web.get(f"http://{cluster_ip}/")
        assert r.status_code == 200 and r.text == f"kernel {served}"
        # from another pod on the bridge, and from the served pod itself (hairpin)
        assert await run(gateway, client, FETCH.format(url=f"http://{cluster_ip}/")) == f"kernel {served}\n"
        assert await run(gateway, served, FETCH.format(url=f"http://{cluster_ip}/")) == f"kernel {served}\n"
    finally:
        await asyncio.to_thread(core.delete_namespaced_service, service, namespace, _preload_content=False)  # 1.20 answers a Status
        for kid in (served, client):
            assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204


async def test_the_kubernetes_service_answers_a_pod_with_its_service_account(gateway, http, core, cluster):
    kubernetes = await asyncio.to_thread(core.read_namespaced_service, "kubernetes", "default")
    assert await ready_endpoints(core, "default", "kubernetes") == [cluster["EG_K8S_HOST_IP"]]
    kid = await new_kernel(http, gateway)
    try:
        # verified against the service account's CA, for the Service's IP: what in-cluster clients do
        assert await run(gateway, kid, IN_CLUSTER) == f"{kubernetes.spec.cluster_ip} v1.20.2\n"
    finally:
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
