"""Benchmark: R (IRkernel) against Python (ipykernel) kernel start, per resource manager.

    python bench/bench_languages.py [--rounds 5] [--rm local,ssh,docker]

For each resource manager one gateway starts its Python and its R kernelspec in alternating
order (python3/ir locally, python_ssh/R_ssh over the test sshd, python_docker/R_docker in the
eg-docker engine), and times POST /api/kernels until a kernel_info_reply is in hand over the
websocket; kernels are shut down between rounds (not timed), one warm-up round is not counted.
Prints the medians side by side. Needs root for ssh and docker (their ci/setup.sh, idempotent).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from eg_core.testing import GatewayProcess  # noqa: E402
from _common import interleaved_starts  # noqa: E402

KERNELSPECS = {"local": ("python3", "ir"), "ssh": ("python_ssh", "R_ssh"), "docker": ("python_docker", "R_docker")}


def local_gateway(tmp: Path):
    return GatewayProcess(tmp), lambda: None


def ssh_gateway(tmp: Path):
    with warnings.catch_warnings():  # asyncssh's import warns about DSA (cryptography)
        warnings.simplefilter("ignore")
        from eg_ssh.testing import TestSSHD, ensure_setup

    ensure_setup()
    sshd = TestSSHD(addresses=("127.0.0.1",)).start()
    (tmp / "config").mkdir()
    (tmp / "config" / "eg_gateway_config.py").write_text(sshd.gateway_config())
    gw = GatewayProcess(tmp, env={"JUPYTER_CONFIG_DIR": str(tmp / "config"), "EG_RESPONSE_PORT": "0"})
    return gw, sshd.stop


def docker_gateway(tmp: Path):
    proc = subprocess.run(["bash", str(ROOT / "plugins" / "eg_docker" / "ci" / "setup.sh")], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"eg-docker's setup.sh failed:\n{proc.stderr[-3000:]}")
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    gw = GatewayProcess(tmp, "--DockerSettings.gateway_id=eg-bench-languages",
                        env={"DOCKER_HOST": values["DOCKER_HOST"], "EG_RESPONSE_ADDRESS": "127.0.0.1:0"})
    return gw, lambda: None


GATEWAYS = {"local": local_gateway, "ssh": ssh_gateway, "docker": docker_gateway}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rm", default="local,ssh,docker", help="comma-separated: " + ", ".join(GATEWAYS))
    args = parser.parse_args()
    print(f"{'resource manager':18}{'python ms':>11}{'R ms':>10}{'R-python':>10}")
    for rm in [r.strip() for r in args.rm.split(",") if r.strip()]:
        if rm not in GATEWAYS:
            raise SystemExit(f"--rm {rm!r}: choose among {', '.join(GATEWAYS)}")
        with tempfile.TemporaryDirectory(prefix=f"eg-bench-lang-{rm}-") as tmp:
            gw, stop = GATEWAYS[rm](Path(tmp))
            try:
                times = asyncio.run(interleaved_starts(gw, list(KERNELSPECS[rm]), args.rounds))
            finally:
                gw.stop()
                stop()
        py, r = (statistics.median(times[name]) * 1000 for name in KERNELSPECS[rm])
        print(f"{rm:18}{py:11.0f}{r:10.0f}{r - py:+10.0f}", flush=True)


if __name__ == "__main__":
    main()
