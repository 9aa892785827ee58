"""Benchmark: kernel start over SSH (eg-ssh, a real sshd on 127.0.0.1) against a local kernel,
both through the same eg gateway in the same run.

    python bench/bench_ssh.py [--rounds 7]

Each round starts one local (python3) and one SSH (python_ssh) kernel, alternating, and times
POST /api/kernels until a kernel_info_reply is in hand over the websocket; the kernels are shut
down between rounds. A warm-up round (the SSH connection is opened once and then reused) is not
counted. Prints the medians side by side and the SSH launch phases from the gateway log.

Target: SSH start <= local start + 150 ms. Needs root and plugins/eg_ssh/ci/setup.sh (run when
something is missing).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from eg_core.testing import GatewayProcess, KernelSocket  # noqa: E402
from eg_ssh.testing import TestSSHD, ensure_setup  # noqa: E402

TARGET_MS = 150.0


async def start_to_kernel_info(gw, name: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": name})
        if r.status_code != 201:
            raise RuntimeError(f"{name}: {r.status_code} {r.text}")
        kid = r.json()["id"]
    ks = await KernelSocket.connect(gw, kid)
    msg_id = await ks.request("kernel_info_request", {})
    while (await ks.recv())["parent_header"].get("msg_id") != msg_id:
        pass
    elapsed = time.perf_counter() - t0
    await ks.close()
    return elapsed, kid


async def shutdown(gw, kid: str) -> None:
    async with gw.client() as http:
        await http.delete(f"/api/kernels/{kid}")


async def bench(gw, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"python3": [], "python_ssh": []}
    for round_no in range(rounds + 1):
        order = ("python3", "python_ssh") if round_no % 2 else ("python_ssh", "python3")
        for name in order:
            elapsed, kid = await start_to_kernel_info(gw, name)
            await shutdown(gw, kid)
            if round_no:  # round 0 warms up (imports, page cache, the SSH connection)
                times[name].append(elapsed)
    return times


def phases(log: str) -> dict[str, float]:
    found: dict[str, list[float]] = {}
    for line in log.splitlines():
        if "launched python_ssh" not in line:
            continue
        for phase, value in re.findall(r"(\w+) (\d+\.\d+)s", line.split("(", 1)[-1]):
            found.setdefault(phase, []).append(float(value))
    return {k: statistics.median(v[1:] or v) for k, v in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    ensure_setup()
    sshd = TestSSHD(addresses=("127.0.0.1",)).start()
    tmp = Path(tempfile.mkdtemp(prefix="eg-bench-ssh-"))
    (tmp / "config").mkdir()
    (tmp / "config" / "eg_gateway_config.py").write_text(sshd.gateway_config())
    gw = GatewayProcess(tmp, env={"JUPYTER_CONFIG_DIR": str(tmp / "config"), "EG_RESPONSE_PORT": "0"})
    try:
        times = asyncio.run(bench(gw, args.rounds))
        log = gw.output()
    finally:
        gw.stop()
        sshd.stop()
    local, ssh = (statistics.median(times[n]) * 1000 for n in ("python3", "python_ssh"))
    print(f"kernel start -> kernel_info_reply, median of {args.rounds} rounds (ms)")
    print(f"{'':14}{'local':>10}{'ssh':>10}{'ssh-local':>12}")
    print(f"{'median':14}{local:10.1f}{ssh:10.1f}{ssh - local:12.1f}")
    for label, fn in (("min", min), ("max", max)):
        lo, hi = fn(times["python3"]) * 1000, fn(times["python_ssh"]) * 1000
        print(f"{label:14}{lo:10.1f}{hi:10.1f}")
    print("ssh launch phases (median, ms): " + ", ".join(f"{k} {v * 1000:.1f}" for k, v in phases(log).items()))
    verdict = "OK" if ssh - local <= TARGET_MS else "MISSED"
    print(f"target ssh <= local + {TARGET_MS:.0f} ms: {verdict} ({ssh - local:+.1f} ms)")


if __name__ == "__main__":
    main()
