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
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from eg_core.testing import GatewayProcess  # noqa: E402
from _common import interleaved_starts, launch_phases  # noqa: E402
from eg_ssh.testing import TestSSHD, ensure_setup  # noqa: E402

TARGET_MS = 150.0


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
        times = asyncio.run(interleaved_starts(gw, ["python3", "python_ssh"], args.rounds))
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
    print("ssh launch phases (median, ms): " + ", ".join(f"{k} {v * 1000:.1f}" for k, v in launch_phases(log, "python_ssh").items()))
    verdict = "OK" if ssh - local <= TARGET_MS else "MISSED"
    print(f"target ssh <= local + {TARGET_MS:.0f} ms: {verdict} ({ssh - local:+.1f} ms)")


if __name__ == "__main__":
    main()
