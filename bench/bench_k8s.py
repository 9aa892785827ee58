"""Benchmark: a pod kernel's start through eg (eg-k8s, a real Kubernetes control plane and node)
against two floors: the same kernel pod created directly through the API and connected to.

    python bench/bench_k8s.py [--rounds 5] [--concurrent 10] [--concurrent-rounds 3] [--network host|pod]

The floors, run in the same session as eg and alternated with it:

- ``hostpath``: one pod created through the API, running ipykernel on a connection file the
  benchmark wrote on the node (a hostPath volume);
- ``secret``: fed as eg feeds its pods: a Secret holding the connection file is created first,
  then the pod mounting it (two API calls, the kubelet fetches and mounts the Secret).

Each start is timed from the request (eg: ``POST /api/kernels`` through one open HTTP client; direct: the first
API call, through one open API client) until
a kernel_info_reply (eg: over its websocket; direct: from jupyter_client on the pod's address).
One start: alternated rounds, one warm-up round not counted, medians. Then ``--concurrent`` starts
at once, each way, alternated over ``--concurrent-rounds`` rounds (wall time until every kernel
answered; medians). Targets: eg <= floor + 300 ms for one start; N concurrent starts through eg
<= 1.2 x the hostpath floor and <= 1.1 x the secret floor.

Where the time goes: a watch on the benchmark's namespace notes when each pod (eg's and the
floors') was first seen created, scheduled, with an address and Running; the node's Docker engine
gives each kernel container's start; printed as medians from the request (one start) and as the
time the last of the N pods got there (concurrent). eg's own launch phases come from its log.

``--network``: ``host`` (default) runs eg's pods and the floors' on the node's network, dialled on
loopback; ``pod`` runs both on the pod network, dialled on the pod's IP once the API shows it.
Needs root; runs plugins/eg_k8s/ci/setup.sh (idempotent: it reuses a running cluster and the
cached binaries). Prints the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from eg_core.testing import GatewayProcess  # noqa: E402
from _common import launch_phases, shutdown, start_to_kernel_info  # noqa: E402

SETUP = ROOT / "plugins" / "eg_k8s" / "ci" / "setup.sh"
ONE_TARGET_MS = 300.0
TARGETS = {"hostpath": 1.2, "secret": 1.1}
WAYS = ("eg", "hostpath", "secret")
MILESTONES = ("created", "scheduled", "address", "container", "running", "kernel_info")
KERNEL_PORT = 50000  # on the pod network every pod has its own address: fixed ports


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
        kc.wait_for_ready(timeout=60)
    finally:
        kc.stop_channels()


class Observer:
    """A watch on the namespace's pods (in a thread): when each pod was first seen created,
    scheduled, with an address, Running (wall-clock seconds), keyed by pod name; and the kernel
    id label of eg's pods."""

    def __init__(self, kubeconfig: str, namespace: str, docker_host: str):
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        self.core = client.CoreV1Api(client.ApiClient(configuration))
        self.namespace, self.docker_host = namespace, docker_host
        self.seen: dict[str, dict[str, float]] = {}
        self.kernel_pod: dict[str, str] = {}
        self.addresses: dict[str, asyncio.Future] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        from kubernetes import watch

        while not self.stopping:
            for event in watch.Watch().stream(self.core.list_namespaced_pod, self.namespace, timeout_seconds=60):
                self._note(event["raw_object"], time.time())

    def _note(self, pod: dict, now: float) -> None:
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        name = meta["name"]
        seen = self.seen.setdefault(name, {})
        kernel_id = (meta.get("labels") or {}).get("kernel_id")
        if kernel_id:
            self.kernel_pod[kernel_id] = name
        seen.setdefault("created", now)
        if spec.get("nodeName"):
            seen.setdefault("scheduled", now)
        if status.get("podIP"):
            seen.setdefault("address", now)
            future = self.addresses.get(name)
            if future is not None and self.loop is not None:
                self.loop.call_soon_threadsafe(lambda: future.done() or future.set_result(status["podIP"]))
        if status.get("phase") == "Running":
            seen.setdefault("running", now)

    async def address(self, name: str) -> str:
        self.loop = asyncio.get_running_loop()
        future = self.addresses[name] = self.loop.create_future()
        return await future

    def container_started(self, name: str) -> float | None:
        """The kernel container's start (the node's Docker engine's clock, nanoseconds)."""
        proc = subprocess.run(["docker", "ps", "-a", "--filter", f"name=k8s_kernel_{name}_", "--format", "{{.ID}}"],
                              capture_output=True, text=True, env={**os.environ, "DOCKER_HOST": self.docker_host})
        ids = proc.stdout.split()
        if not ids:
            return None
        started = subprocess.run(["docker", "inspect", "-f", "{{.State.StartedAt}}", ids[0]], capture_output=True, text=True,
                                 env={**os.environ, "DOCKER_HOST": self.docker_host}).stdout.strip()
        return parse_time(started)

    def milestones(self, name: str, t0: float, answered: float) -> dict[str, float]:
        seen = dict(self.seen.get(name, {}))
        started = self.container_started(name)
        if started:
            seen["container"] = started
        seen["kernel_info"] = answered
        return {k: seen[k] - t0 for k in MILESTONES if k in seen}


def parse_time(text: str) -> float | None:
    """RFC 3339 with nanoseconds (Docker's) as epoch seconds."""
    from datetime import datetime

    if not text or text.startswith("0001"):
        return None
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float(f"0.{frac or 0}")


class Direct:
    """Kernel pods created straight through the API: the floors."""

    def __init__(self, kubeconfig: str, namespace: str, image: str, workdir: Path, host_network: bool, observer: Observer):
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        configuration.connection_pool_maxsize = 32
        self.core = client.CoreV1Api(client.ApiClient(configuration))
        self.namespace, self.image, self.workdir, self.host_network = namespace, image, workdir, host_network
        self.observer = observer
        self.used: set[int] = set()
        self.http = None  # eg's HTTP client, opened by measure()
        self.threads = ThreadPoolExecutor(max_workers=32)  # as many as the concurrent starts: no queueing

    def port(self) -> int:
        """A free port below the kernel's ephemeral range (an outgoing connection of any process
        may take a port of that range before the floor's kernel binds it) that no other floor pod
        of this run was given."""
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        while True:
            port = random.randrange(max(low - 12000, 1024), low)
            if port in self.used:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            self.used.add(port)
            return port

    async def start(self, way: str) -> tuple[float, str, dict[str, float]]:
        name = f"{way}-{uuid.uuid4().hex[:10]}"
        ports = {f"{p}_port": self.port() if self.host_network else KERNEL_PORT + n
                 for n, p in enumerate(("shell", "iopub", "stdin", "hb", "control"))}
        conn = {"ip": "127.0.0.1" if self.host_network else "0.0.0.0", "transport": "tcp", "signature_scheme": "hmac-sha256",
                "key": uuid.uuid4().hex, "kernel_name": "python3", **ports}
        container = {"name": "kernel", "image": self.image, "imagePullPolicy": "IfNotPresent",
                     "command": ["python", "-m", "ipykernel_launcher", "-f", f"/conn/{name}.json" if way == "hostpath" else "/conn/connection.json"],
                     "volumeMounts": [{"name": "conn", "mountPath": "/conn", "readOnly": True}]}
        if way == "hostpath":
            path = self.workdir / f"{name}.json"
            path.write_text(json.dumps(conn))
            path.chmod(0o644)
            volume = {"name": "conn", "hostPath": {"path": str(self.workdir)}}
        else:
            volume = {"name": "conn", "secret": {"secretName": name}}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"eg-bench": way}},
               "spec": {"restartPolicy": "Never", "hostNetwork": self.host_network, "automountServiceAccountToken": False,
                        "containers": [container], "volumes": [volume]}}
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"connection.json": json.dumps(conn)}}
        loop = asyncio.get_running_loop()
        address = None if self.host_network else asyncio.ensure_future(self.observer.address(name))
        t0 = time.time()
        if way == "secret":
            await loop.run_in_executor(self.threads, lambda: self.core.create_namespaced_secret(self.namespace, secret, _preload_content=False))
        await loop.run_in_executor(self.threads, lambda: self.core.create_namespaced_pod(self.namespace, pod, _preload_content=False))
        if address is not None:
            conn["ip"] = await address
        try:
            await loop.run_in_executor(self.threads, kernel_info, conn)
        except RuntimeError as exc:
            status = await loop.run_in_executor(self.threads, lambda: self.core.read_namespaced_pod(name, self.namespace).status)
            logs = await loop.run_in_executor(self.threads, lambda: self.core.read_namespaced_pod_log(name, self.namespace, tail_lines=20))
            raise RuntimeError(f"{name} ({conn}): {exc}; its status: {status}; its log:\n{logs}") from None
        answered = time.time()
        return answered - t0, name, {"t0": t0, "answered": answered}

    async def stop(self, name: str) -> None:
        from kubernetes import client

        await asyncio.to_thread(self.core.delete_namespaced_pod, name, self.namespace, body=client.V1DeleteOptions(grace_period_seconds=0))
        if name.startswith("secret-"):
            await asyncio.to_thread(self.core.delete_namespaced_secret, name, self.namespace)


async def start(way: str, gw, direct: Direct) -> tuple[float, str, dict[str, float]]:
    if way != "eg":
        return await direct.start(way)
    t0 = time.time()
    elapsed, kid = await start_to_kernel_info(gw, "python_kubernetes", http=direct.http)
    return elapsed, kid, {"t0": t0, "answered": t0 + elapsed}


async def stop(way: str, gw, direct: Direct, name: str) -> None:
    await (shutdown(gw, name) if way == "eg" else direct.stop(name))


def pod_of(way: str, name: str, observer: Observer) -> str:
    return observer.kernel_pod.get(name, "?") if way == "eg" else name


async def measure(gw, direct: Direct, observer: Observer, rounds: int, concurrent: int, concurrent_rounds: int) -> dict:
    async with gw.client() as http:  # one client, opened once, as the floors' API client is
        direct.http = http
        return await _measure(gw, direct, observer, rounds, concurrent, concurrent_rounds)


async def _measure(gw, direct: Direct, observer: Observer, rounds: int, concurrent: int, concurrent_rounds: int) -> dict:
    one: dict[str, list[float]] = {w: [] for w in WAYS}
    one_steps: dict[str, list[dict[str, float]]] = {w: [] for w in WAYS}
    for round_no in range(rounds + 1):
        order = WAYS[round_no % 3:] + WAYS[:round_no % 3]
        for way in order:
            elapsed, name, times = await start(way, gw, direct)
            if round_no:
                one[way].append(elapsed)
                one_steps[way].append(observer.milestones(pod_of(way, name, observer), times["t0"], times["answered"]))
            await stop(way, gw, direct, name)
    many: dict[str, list[float]] = {w: [] for w in WAYS}
    many_steps: dict[str, list[dict[str, float]]] = {w: [] for w in WAYS}
    for round_no in range(concurrent_rounds):
        order = WAYS[round_no % 3:] + WAYS[:round_no % 3]
        for way in order:
            t0 = time.time()
            results = await asyncio.gather(*(start(way, gw, direct) for _ in range(concurrent)))
            many[way].append(time.time() - t0)
            per_pod = [observer.milestones(pod_of(way, name, observer), t0, times["answered"]) for _, name, times in results]
            many_steps[way].append({k: max(p[k] for p in per_pod if k in p) for k in MILESTONES if any(k in p for p in per_pod)})
            await asyncio.gather(*(stop(way, gw, direct, name) for _, name, _ in results))
    return {"one": one, "one_steps": one_steps, "many": many, "many_steps": many_steps}


def medians(steps: list[dict[str, float]]) -> str:
    keys = [k for k in MILESTONES if any(k in s for s in steps)]
    return ", ".join(f"{k} {statistics.median(s[k] for s in steps if k in s):.2f}" for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--concurrent-rounds", type=int, default=3)
    parser.add_argument("--network", choices=("host", "pod"), default="host")
    parser.add_argument("--gateway-arg", action="append", default=[], help="one more eg-gateway argument (repeatable)")
    args = parser.parse_args()
    host_network = args.network == "host"
    values = cluster()
    from kubernetes import client, config

    print(f"load average before: {os.getloadavg()}; network: {args.network}")
    namespace = f"eg-bench-{uuid.uuid4().hex[:6]}"
    configuration = client.Configuration()
    config.load_kube_config(config_file=values["KUBECONFIG"], client_configuration=configuration)
    core = client.CoreV1Api(client.ApiClient(configuration))
    core.create_namespace({"metadata": {"name": namespace}})
    if host_network:
        network = ["--KubernetesSettings.host_network=True", "--KubernetesSettings.kernel_host=127.0.0.1",
                   "--KubernetesSettings.kernel_bind_ip=127.0.0.1"]
    else:
        network = [f"--ResponseListener.response_address={values['EG_K8S_HOST_IP']}:0"]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp).chmod(0o755)
            gw = GatewayProcess(
                Path(tmp), f"--KubernetesSettings.kubeconfig={values['KUBECONFIG']}", f"--KubernetesSettings.namespace={namespace}",
                *network, "--KubernetesSettings.gateway_id=eg-bench", "--KubernetesSettings.image_pull_policy=IfNotPresent",
                "--Gateway.launch_timeout=120", *args.gateway_arg,
            )
            try:
                observer = Observer(values["KUBECONFIG"], namespace, values["DOCKER_HOST"])
                direct = Direct(values["KUBECONFIG"], namespace, values["EG_K8S_IMAGE"], Path(tmp), host_network, observer)
                result = asyncio.run(measure(gw, direct, observer, args.rounds, args.concurrent, args.concurrent_rounds))
                observer.stopping = True
            finally:
                gw.stop()
            log = gw.log_path.read_text(errors="replace")
    finally:
        core.delete_namespace(namespace)
    print(f"load average after: {os.getloadavg()}")
    one = {w: statistics.median(result["one"][w]) * 1000 for w in WAYS}
    print(f"one start, median of {args.rounds}: eg {one['eg']:.0f} ms, hostpath pod {one['hostpath']:.0f} ms, "
          f"secret pod {one['secret']:.0f} ms; eg - hostpath = {one['eg'] - one['hostpath']:+.0f} ms "
          f"(target <= +{ONE_TARGET_MS:.0f} ms): {'MET' if one['eg'] - one['hostpath'] <= ONE_TARGET_MS else 'MISSED'}")
    for way in WAYS:
        print(f"  {way:8} milestones (median s from the request): {medians(result['one_steps'][way])}")
    many = {w: statistics.median(result["many"][w]) for w in WAYS}
    print(f"{args.concurrent} concurrent starts, median of {args.concurrent_rounds}: eg {many['eg']:.2f} s "
          f"({', '.join(f'{t:.2f}' for t in result['many']['eg'])}), hostpath {many['hostpath']:.2f} s "
          f"({', '.join(f'{t:.2f}' for t in result['many']['hostpath'])}), secret {many['secret']:.2f} s "
          f"({', '.join(f'{t:.2f}' for t in result['many']['secret'])})")
    for floor, target in TARGETS.items():
        ratio = many["eg"] / many[floor]
        print(f"  eg / {floor} = {ratio:.2f} (target <= {target}): {'MET' if ratio <= target else 'MISSED'}")
    for way in WAYS:
        print(f"  {way:8} milestones (median s until the last of {args.concurrent}): {medians(result['many_steps'][way])}")
    print("eg launch phases (median, s):", {k: round(v, 3) for k, v in launch_phases(log, "python_kubernetes").items()})


if __name__ == "__main__":
    main()
