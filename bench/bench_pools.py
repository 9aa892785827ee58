"""Benchmark: kernel start from a warm pool against a cold start, same gateway, same run.

    python bench/bench_pools.py [--rounds 15] [--docker] [--k8s]

One gateway keeps one ``python3`` (with ``--docker`` one ``python_docker``, with ``--k8s`` one
``python_kubernetes`` pod, in a namespace of its own on eg-k8s's test cluster) kernel waiting
(``EG_KERNEL_POOLS``). Each round times, in alternating order, POST /api/kernels until a
kernel_info_reply is in hand over the websocket for:

- a pool hit: a request with ``KERNEL_USERNAME`` and ``KERNEL_WORKING_DIR`` (so the claim binds
  user, env and working directory), started once the pool has refilled;
- a cold start of the same kernelspec: the same request with an explicit ``KERNEL_ID``, which a
  pool never serves.

Kernels are shut down between starts (not timed); one warm-up round is not counted.
Target: pool-hit p50 <= 30 ms (local, Docker and Kubernetes pods).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from eg_core.testing import GatewayProcess, KernelSocket  # noqa: E402

TARGET_MS = 30.0
POST_TIMES: dict[bool, list[float]] = {}  # from_pool -> seconds until the POST answered
SETUP = ROOT / "plugins" / "eg_docker" / "ci" / "setup.sh"
K8S_SETUP = ROOT / "plugins" / "eg_k8s" / "ci" / "setup.sh"


async def timed_start(gw, http, name: str, env: dict) -> tuple[float, str, bool]:
    """Seconds from POST /api/kernels to a kernel_info_reply over the websocket, with an HTTP
    client already open (as Jupyter Server's is)."""
    t0 = time.perf_counter()
    r = await http.post("/api/kernels", json={"name": name, "env": env})
    if r.status_code != 201:
        raise RuntimeError(f"{name}: {r.status_code} {r.text}")
    model = r.json()
    POST_TIMES.setdefault(bool(model.get("from_pool")), []).append(time.perf_counter() - t0)
    ks = await KernelSocket.connect(gw, model["id"])
    msg_id = await ks.request("kernel_info_request", {})
    while (await ks.recv())["parent_header"].get("msg_id") != msg_id:
        pass
    elapsed = time.perf_counter() - t0
    await ks.close()
    await http.delete(f"/api/kernels/{model['id']}")
    return elapsed, model["id"], bool(model.get("from_pool"))


async def pool_full(http, name: str) -> None:
    while True:
        text = (await http.get("/metrics")).text
        m = re.search(rf'^eg_pool_kernels{{kernelspec="{name}"}} (\S+)$', text, re.M)
        if m and float(m.group(1)) >= 1:
            return
        await asyncio.sleep(0.05)


async def run(gw, names: list[str], rounds: int, workdir: str) -> dict[str, dict[str, list[float]]]:
    async with gw.client() as http:
        return await _rounds(gw, http, names, rounds, workdir)


async def _rounds(gw, http, names: list[str], rounds: int, workdir: str) -> dict[str, dict[str, list[float]]]:
    times = {name: {"hit": [], "cold": []} for name in names}
    for round_no in range(rounds + 1):
        for name in names:
            env = {"KERNEL_USERNAME": "alice", "KERNEL_WORKING_DIR": workdir}
            kinds = ("hit", "cold") if round_no % 2 else ("cold", "hit")
            for kind in kinds:
                await pool_full(http, name)
                await asyncio.sleep(0.3)  # let the refill's aftermath (logs, GC) settle
                extra = {"KERNEL_ID": str(uuid.uuid4())} if kind == "cold" else {}
                elapsed, _, from_pool = await timed_start(gw, http, name, {**env, **extra})
                if from_pool != (kind == "hit"):
                    raise RuntimeError(f"{name} {kind}: from_pool={from_pool}")
                if round_no:
                    times[name][kind].append(elapsed)
    return times


def setup(script: Path) -> dict[str, str]:
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{script} failed:\n{proc.stderr[-3000:]}")
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


def k8s_args(namespace: str) -> list[str]:
    """eg-k8s on the test cluster, as its tests run it (k8s_helpers.gateway_args)."""
    sys.path.insert(0, str(ROOT / "plugins" / "eg_k8s" / "tests"))
    from k8s_helpers import gateway_args

    return gateway_args(setup(K8S_SETUP), namespace, "eg-bench-pools")


def namespace_api():
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=setup(K8S_SETUP)["KUBECONFIG"], client_configuration=configuration)
    return client.CoreV1Api(client.ApiClient(configuration))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--docker", action="store_true", help="also python_docker kernels (runs eg_docker's ci/setup.sh)")
    parser.add_argument("--k8s", action="store_true", help="also python_kubernetes pods (runs eg_k8s's ci/setup.sh)")
    args = parser.parse_args()
    names = ["python3"] + (["python_docker"] if args.docker else []) + (["python_kubernetes"] if args.k8s else [])
    env = {"EG_KERNEL_POOLS": json.dumps({n: 1 for n in names}), "EG_RESPONSE_ADDRESS": "127.0.0.1:0"}
    specs, extra, core, namespace = [], [], None, f"eg-bench-pools-{uuid.uuid4().hex[:6]}"
    if args.docker:
        env["DOCKER_HOST"] = setup(SETUP)["DOCKER_HOST"]
        specs.append(str(ROOT / "plugins" / "eg_docker" / "tests" / "kernelspecs"))
    if args.k8s:
        core = namespace_api()
        core.create_namespace({"metadata": {"name": namespace}})
        extra = k8s_args(namespace)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            gw = GatewayProcess(Path(tmp), "--log-level=WARN", "--DockerSettings.gateway_id=eg-bench-pools", *extra, env=env, kernel_spec_dirs=specs)
            try:
                times = asyncio.run(run(gw, names, args.rounds, tmp))
            finally:
                gw.stop()
    finally:
        if core is not None:
            core.delete_namespace(namespace)
    print(f"kernel start -> kernel_info_reply over the websocket, {args.rounds} rounds (ms)")
    print(f"{'':16}{'p50':>9}{'p90':>9}{'min':>9}{'max':>9}")
    for name in names:
        for kind in ("hit", "cold"):
            v = sorted(t * 1000 for t in times[name][kind])
            p90 = v[min(len(v) - 1, int(round(0.9 * (len(v) - 1))))]
            print(f"{name + ' ' + kind:16}{statistics.median(v):9.1f}{p90:9.1f}{v[0]:9.1f}{v[-1]:9.1f}")
        hit = statistics.median(times[name]["hit"]) * 1000
        print(f"  of which POST /api/kernels p50: hit {statistics.median(POST_TIMES[True]) * 1000:.1f} ms, cold {statistics.median(POST_TIMES[False]) * 1000:.1f} ms (all kernelspecs)")
        print(f"  {name}: pool hit p50 <= {TARGET_MS:.0f} ms: {'MET' if hit <= TARGET_MS else 'MISSED'} ({hit:.1f} ms; "
              f"cold {statistics.median(times[name]['cold']) * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
