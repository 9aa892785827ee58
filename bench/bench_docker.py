"""Benchmark: kernel start in a Docker container (eg-docker, a real dockerd) against a local
kernel, both through the same eg gateway in the same run.

    python bench/bench_docker.py [--rounds 7] [--swarm]

Each round starts one local (python3) and one Docker (python_docker; with --swarm also a Swarm
service) kernel, in alternating order, and times POST /api/kernels until a kernel_info_reply is
in hand over the websocket; kernels are shut down between rounds (not timed). One warm-up round
is not counted. Prints the medians side by side and the Docker launch phases from the gateway log.

Target: Docker start <= local start + 500 ms. Needs root; runs plugins/eg_docker/ci/setup.sh
(idempotent: it reuses a running engine and the cached image).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from eg_core.testing import GatewayProcess  # noqa: E402
from _common import interleaved_starts, launch_phases  # noqa: E402

TARGET_MS = 500.0
SETUP = ROOT / "plugins" / "eg_docker" / "ci" / "setup.sh"


def engine(swarm: bool) -> str:
    proc = subprocess.run(["bash", str(SETUP), *(["--swarm"] if swarm else [])], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"setup.sh failed:\n{proc.stderr[-3000:]}")
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return values["DOCKER_HOST"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--swarm", action="store_true", help="also time Swarm service kernels")
    args = parser.parse_args()
    docker_host = engine(args.swarm)
    names = ["python3", "python_docker"] + (["docker_swarm"] if args.swarm else [])
    specs = [str(ROOT / "plugins" / "eg_docker" / "tests" / "kernelspecs")]
    with tempfile.TemporaryDirectory() as tmp:
        gw = GatewayProcess(
            Path(tmp), "--DockerSettings.gateway_id=eg-bench", env={"DOCKER_HOST": docker_host, "EG_RESPONSE_ADDRESS": "127.0.0.1:0"},
            kernel_spec_dirs=specs,
        )
        try:
            times = asyncio.run(interleaved_starts(gw, names, args.rounds))
        finally:
            gw.stop()
        log = gw.log_path.read_text(errors="replace")
    med = {name: statistics.median(v) * 1000 for name, v in times.items()}
    local = med["python3"]
    print(f"kernel start -> kernel_info_reply, median of {args.rounds} rounds (ms)")
    print(f"{'':14}" + "".join(f"{n:>15}" for n in names))
    print(f"{'median':14}" + "".join(f"{med[n]:15.1f}" for n in names))
    print(f"{'min':14}" + "".join(f"{min(times[n]) * 1000:15.1f}" for n in names))
    print(f"{'max':14}" + "".join(f"{max(times[n]) * 1000:15.1f}" for n in names))
    for name in names[1:]:
        print(f"{name} launch phases (median, ms): " + ", ".join(f"{k} {v * 1000:.1f}" for k, v in launch_phases(log, name).items()))
    docker = med["python_docker"]
    verdict = "MET" if docker <= local + TARGET_MS else "MISSED"
    print(f"target python_docker <= local + {TARGET_MS:.0f} ms: {verdict} ({docker - local:+.1f} ms)")


if __name__ == "__main__":
    main()
