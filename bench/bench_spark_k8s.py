"""Cleanup run: Spark kernels on Kubernetes (``spark_python_kubernetes``), many lifecycles, then
count the pods left behind (issue 21, point 5).

    python bench/bench_spark_k8s.py [--lifecycles 20]

Each lifecycle starts a Spark kernel through eg on the cluster plugins/eg_k8s/ci/setup.sh runs
(the kernel pod is the driver; one executor pod), runs a Spark job on its executor, and then,
by turn: nothing more, an interrupt during a running job (then another job), a restart (then a
job on the new driver's executor). The middle lifecycle SIGKILLs the gateway while its kernel
runs a job's executor, starts a new gateway on the same store, which adopts the kernel, and
runs a job through it. Every kernel is then deleted. Driver and executors are on the pod
network, the master the in-cluster `kubernetes` Service. At the end: the pods of the run's
namespace (drivers and executors, by the run's gateway label) not being deleted, then once the
deletions finished; the target is 0. Needs root (setup.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "plugins" / "eg_k8s" / "tests"))
from eg_core.testing import GatewayProcess, KernelSocket  # noqa: E402
from k8s_helpers import gateway_args, interrupt_a_running_job, spark_args  # noqa: E402
from bench_k8s import cluster  # noqa: E402

JOB = 'print(spark.range(10**6).selectExpr("sum(id)").collect()[0][0])'
SUM = f"{sum(range(10**6))}\n"


async def run(gw: GatewayProcess, kid: str, code: str = JOB, expect: str = SUM) -> None:
    ks = await KernelSocket.connect(gw, kid)
    try:
        out = await ks.execute(code, timeout=300)
    finally:
        await ks.close()
    if out["stdout"] != expect:
        raise RuntimeError(f"kernel {kid}: {code!r} gave {out}")


async def interrupt_a_job(gw: GatewayProcess, kid: str, host: str) -> None:
    ks = await KernelSocket.connect(gw, kid)
    try:
        reply = await interrupt_a_running_job(gw, ks, kid, 1, host)
    finally:
        await ks.close()
    if reply.get("ename") != "KeyboardInterrupt":
        raise RuntimeError(f"interrupt gave {reply}")


async def start(gw: GatewayProcess) -> str:
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "spark_python_kubernetes", "env": {"KERNEL_EXECUTORS": "1"}})
    if r.status_code != 201:
        raise RuntimeError(f"{r.status_code} {r.text}")
    return r.json()["id"]


async def delete(gw: GatewayProcess, kid: str) -> None:
    async with gw.client() as http:
        r = await http.delete(f"/api/kernels/{kid}")
    if r.status_code != 204:
        raise RuntimeError(f"delete {kid}: {r.status_code} {r.text}")


def pods_left(core, namespace: str, gateway_id: str) -> tuple[list[str], list[str]]:
    """(pods not being deleted, pods being deleted) of the run's gateway."""
    pods = core.list_namespaced_pod(namespace, label_selector=f"eg.jupyter.org/gateway={gateway_id}").items
    return ([p.metadata.name for p in pods if not p.metadata.deletion_timestamp],
            [p.metadata.name for p in pods if p.metadata.deletion_timestamp])


def wait_all_gone(core, namespace: str, gateway_id: str, timeout: int = 120) -> list[str]:
    from kubernetes import watch

    selector = f"eg.jupyter.org/gateway={gateway_id}"
    if core.list_namespaced_pod(namespace, label_selector=selector).items:
        stream = watch.Watch()
        for _ in stream.stream(core.list_namespaced_pod, namespace, label_selector=selector, timeout_seconds=timeout):
            if not core.list_namespaced_pod(namespace, label_selector=selector).items:
                stream.stop()
    return [p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector=selector).items]


async def lifecycles(values: dict, tmp: Path, namespace: str, gateway_id: str, count: int) -> dict[str, float]:
    args = [*gateway_args(values, namespace, gateway_id), *spark_args(values)]
    gw = GatewayProcess(tmp, *args)
    counts = {"lifecycles": 0, "jobs": 0, "interrupts": 0, "restarts": 0, "adopted": 0}
    t0 = time.perf_counter()
    try:
        for n in range(count):
            kid = await start(gw)
            await run(gw, kid)
            counts["jobs"] += 1
            if n == count // 2:
                gw.proc.kill()
                gw.proc.wait()
                gw.stop()
                gw = GatewayProcess(tmp, *args)
                await run(gw, kid)
                counts["adopted"] += 1
                counts["jobs"] += 1
            elif n % 3 == 1:
                await interrupt_a_job(gw, kid, values["EG_K8S_HOST_IP"])
                await run(gw, kid)
                counts["interrupts"] += 1
                counts["jobs"] += 1
            elif n % 3 == 2:
                async with gw.client() as http:
                    r = await http.post(f"/api/kernels/{kid}/restart")
                if r.status_code != 200:
                    raise RuntimeError(f"restart: {r.status_code} {r.text}")
                await run(gw, kid)
                counts["restarts"] += 1
                counts["jobs"] += 1
            await delete(gw, kid)
            counts["lifecycles"] += 1
            print(f"lifecycle {n + 1}/{count} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    finally:
        gw.stop()
    counts["seconds"] = time.perf_counter() - t0
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lifecycles", type=int, default=20)
    args = parser.parse_args()
    from kubernetes import client, config

    values = cluster()
    configuration = client.Configuration()
    config.load_kube_config(config_file=values["KUBECONFIG"], client_configuration=configuration)
    core = client.CoreV1Api(client.ApiClient(configuration))
    namespace = f"eg-bench-spark-{uuid.uuid4().hex[:6]}"
    gateway_id = f"eg-bench-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        counts = asyncio.run(lifecycles(values, Path(tempfile.mkdtemp(prefix="eg-bench-spark-k8s-")), namespace, gateway_id, args.lifecycles))
        live, deleting = pods_left(core, namespace, gateway_id)
        after = wait_all_gone(core, namespace, gateway_id)
    finally:
        core.delete_namespace(namespace)
    print(f"{counts['lifecycles']} Spark kernel lifecycles on Kubernetes in {counts['seconds']:.0f} s: {counts['jobs']} jobs, "
          f"{counts['interrupts']} interrupts, {counts['restarts']} restarts, {counts['adopted']} adoption after a gateway SIGKILL")
    print(f"pods left (drivers and executors): {len(live)} not being deleted{': ' + ', '.join(live) if live else ''}; "
          f"{len(deleting)} being deleted; {len(after)} once the deletions finished")
    print(f"target: 0 pods left: {'OK' if not live and not after else 'MISSED'}")


if __name__ == "__main__":
    main()
