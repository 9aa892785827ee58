"""Benchmark: a pod kernel's start through eg (eg-k8s, a real Kubernetes control plane and node)
against the floor: the same kernel pod created directly through the API and connected to.

    python bench/bench_k8s.py [--rounds 5] [--concurrent 10]

One start: POST /api/kernels until a kernel_info_reply over eg's websocket, against creating a
hostNetwork pod of the same image running ipykernel on a connection file the benchmark wrote
(hostPath) until a kernel_info_reply from jupyter_client on 127.0.0.1; alternated, one warm-up
round not counted, medians reported. Then ``--concurrent`` starts at once, both ways (wall time
until every kernel answered). Targets: eg <= floor + 300 ms for one start; N concurrent starts
through eg <= 1.2 x the floor's N concurrent direct creations. Needs root; runs
plugins/eg_k8s/ci/setup.sh (idempotent: it reuses a running cluster and the cached binaries).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from eg_core.testing import GatewayProcess, free_port  # noqa: E402
from _common import launch_phases, shutdown, start_to_kernel_info  # noqa: E402

SETUP = ROOT / "plugins" / "eg_k8s" / "ci" / "setup.sh"
ONE_TARGET_MS = 300.0
CONCURRENT_RATIO = 1.2


def cluster() -> dict[str, str]:
    proc = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"setup.sh failed:\n{proc.stderr[-3000:]}")
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


def kernel_info(conn: dict) -> None:
    """Connect to the kernel (retrying until it listens) and get its kernel_info_reply."""
    from jupyter_client import BlockingKernelClient

    kc = BlockingKernelClient()
    kc.load_connection_info(conn)
    kc.start_channels(hb=False)  # the heartbeat would call a kernel still starting dead
    try:
        kc.wait_for_ready(timeout=120)
    finally:
        kc.stop_channels()


class Direct:
    """Kernel pods created straight through the API: the floor."""

    def __init__(self, kubeconfig: str, namespace: str, image: str, workdir: Path):
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        configuration.connection_pool_maxsize = 32
        self.core = client.CoreV1Api(client.ApiClient(configuration))
        self.namespace, self.image, self.workdir = namespace, image, workdir
        self.threads = ThreadPoolExecutor(max_workers=32)  # as many as the concurrent starts: no queueing

    async def start(self) -> tuple[float, str]:
        name = f"direct-{uuid.uuid4().hex[:10]}"
        conn = {"ip": "127.0.0.1", "transport": "tcp", "signature_scheme": "hmac-sha256", "key": uuid.uuid4().hex,
                "kernel_name": "python3", **{f"{p}_port": free_port() for p in ("shell", "iopub", "stdin", "hb", "control")}}
        path = self.workdir / f"{name}.json"
        path.write_text(json.dumps(conn))
        path.chmod(0o644)
        pod = {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"eg-bench": "direct"}},
            "spec": {"restartPolicy": "Never", "hostNetwork": True, "containers": [{
                "name": "kernel", "image": self.image, "imagePullPolicy": "IfNotPresent",
                "command": ["python", "-m", "ipykernel_launcher", "-f", f"/conn/{name}.json"],
                "volumeMounts": [{"name": "conn", "mountPath": "/conn", "readOnly": True}]}],
                "volumes": [{"name": "conn", "hostPath": {"path": str(self.workdir)}}]},
        }
        t0 = time.perf_counter()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.threads, self.core.create_namespaced_pod, self.namespace, pod)
        await loop.run_in_executor(self.threads, kernel_info, conn)
        return time.perf_counter() - t0, name

    async def stop(self, name: str) -> None:
        from kubernetes import client

        await asyncio.to_thread(self.core.delete_namespaced_pod, name, self.namespace, body=client.V1DeleteOptions(grace_period_seconds=0))


async def measure(gw, direct: Direct, rounds: int, concurrent: int) -> dict:
    one = {"eg": [], "direct": []}
    for round_no in range(rounds + 1):
        order = ("eg", "direct") if round_no % 2 else ("direct", "eg")
        for way in order:
            if way == "eg":
                elapsed, kid = await start_to_kernel_info(gw, "python_kubernetes")
                await shutdown(gw, kid)
            else:
                elapsed, name = await direct.start()
                await direct.stop(name)
            if round_no:
                one[way].append(elapsed)
    many = {}
    for way in ("direct", "eg"):
        t0 = time.perf_counter()
        if way == "eg":
            results = await asyncio.gather(*(start_to_kernel_info(gw, "python_kubernetes") for _ in range(concurrent)))
            many[way] = time.perf_counter() - t0
            await asyncio.gather(*(shutdown(gw, kid) for _, kid in results))
        else:
            results = await asyncio.gather(*(direct.start() for _ in range(concurrent)))
            many[way] = time.perf_counter() - t0
            await asyncio.gather(*(direct.stop(name) for _, name in results))
    return {"one": one, "many": many}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=10)
    args = parser.parse_args()
    values = cluster()
    from kubernetes import client, config

    namespace = f"eg-bench-{uuid.uuid4().hex[:6]}"
    configuration = client.Configuration()
    config.load_kube_config(config_file=values["KUBECONFIG"], client_configuration=configuration)
    core = client.CoreV1Api(client.ApiClient(configuration))
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp).chmod(0o755)
            gw = GatewayProcess(
                Path(tmp), f"--KubernetesSettings.kubeconfig={values['KUBECONFIG']}", f"--KubernetesSettings.namespace={namespace}",
                "--KubernetesSettings.host_network=True", "--KubernetesSettings.kernel_host=127.0.0.1",
                "--KubernetesSettings.kernel_bind_ip=127.0.0.1", "--KubernetesSettings.gateway_id=eg-bench",
                "--Gateway.launch_timeout=120",
            )
            try:
                direct = Direct(values["KUBECONFIG"], namespace, values["EG_K8S_IMAGE"], Path(tmp))
                result = asyncio.run(measure(gw, direct, args.rounds, args.concurrent))
            finally:
                gw.stop()
            log = gw.log_path.read_text(errors="replace")
    finally:
        core.delete_namespace(namespace)
    eg_ms = statistics.median(result["one"]["eg"]) * 1000
    floor_ms = statistics.median(result["one"]["direct"]) * 1000
    print(f"one start, median of {args.rounds}: eg {eg_ms:.0f} ms, direct pod {floor_ms:.0f} ms, "
          f"eg - floor = {eg_ms - floor_ms:+.0f} ms (target <= +{ONE_TARGET_MS:.0f} ms): "
          f"{'MET' if eg_ms - floor_ms <= ONE_TARGET_MS else 'MISSED'}")
    many_eg, many_floor = result["many"]["eg"], result["many"]["direct"]
    print(f"{args.concurrent} concurrent starts: eg {many_eg:.2f} s, direct pods {many_floor:.2f} s, "
          f"ratio {many_eg / many_floor:.2f} (target <= {CONCURRENT_RATIO}): {'MET' if many_eg <= CONCURRENT_RATIO * many_floor else 'MISSED'}")
    print("eg launch phases (median, s):", {k: round(v, 3) for k, v in launch_phases(log, "python_kubernetes").items()})


if __name__ == "__main__":
    main()
