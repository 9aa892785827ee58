"""Benchmark: a fresh gateway with every installed plugin and no backend reachable.

    python bench/bench_startup.py [--rounds 5]

Each round starts ``eg-gateway`` (as an operator would: ``python -m eg_core``) with no Docker
engine (``DOCKER_HOST`` names a socket that does not exist), no Kubernetes configuration
(``KUBECONFIG`` names a missing file) and no SSH hosts or YARN cluster configured, and measures:
- seconds from the process's start until ``GET /api`` answers 200;
- its RSS once the startup sweep has logged what it could not reach, with no kernel started;
- the warning lines it printed.
The same is measured with every plugin disabled (the core alone), taking turns.

Targets (issue 17): /api within 1 s, RSS <= 70 MiB with every plugin, one warning line.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from eg_core.testing import free_port  # noqa: E402

PLUGINS = ("ssh", "docker", "k8s", "yarn", "slurm", "webhook_store")


def one_start(tmp: Path, core_only: bool) -> tuple[float, float, list[str]]:
    """(seconds to /api, RSS in MiB after the startup sweep, warning lines)."""
    port = free_port()
    env = {
        **os.environ, "EG_AUTH_TOKEN": "bench", "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "EG_PERSISTENCE_ROOT": str(tmp / "sessions"), "DOCKER_HOST": f"unix://{tmp}/no-engine.sock",
        "KUBECONFIG": str(tmp / "no-kubeconfig"), "KUBERNETES_SERVICE_HOST": "",
        "EG_DISABLED_PLUGINS": ",".join(PLUGINS) if core_only else "",
    }
    log_path = tmp / f"gateway-{port}.log"
    with open(log_path, "wb") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "eg_core", f"--port={port}", "--ResponseListener.response_address=127.0.0.1:0"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api", headers={"Authorization": "token bench"})
            while True:
                try:
                    with urllib.request.urlopen(request, timeout=5) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    if proc.poll() is not None:
                        raise RuntimeError(log_path.read_text())
                    time.sleep(0.01)
            to_api = time.perf_counter() - t0
            deadline = time.monotonic() + 30
            while not core_only and "Startup sweep" not in log_path.read_text():
                if time.monotonic() > deadline:
                    raise RuntimeError("no startup sweep line: " + log_path.read_text())
                time.sleep(0.05)
            time.sleep(0.5)  # let anything the sweep started settle
            rss = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{proc.pid}/status").read_text()).group(1)) / 1024
        finally:
            proc.terminate()
            proc.wait(30)
    warnings = [line for line in log_path.read_text().splitlines() if re.match(r"\[[WE] ", line)]
    return to_api, rss, warnings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float, list[str]]]] = {"every plugin": [], "core only": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            order = list(results) if i % 2 == 0 else list(reversed(results))
            for which in order:
                results[which].append(one_start(Path(tmp), which == "core only"))
    print(f"fresh gateway, no backend reachable, {args.rounds} rounds (median, min-max):")
    for which, runs in results.items():
        api = [r[0] for r in runs]
        rss = [r[1] for r in runs]
        print(f"  {which:12}  /api after {statistics.median(api):.2f} s ({min(api):.2f}-{max(api):.2f})"
              f"   RSS {statistics.median(rss):.1f} MiB ({min(rss):.1f}-{max(rss):.1f})")
    plugins = results["every plugin"]
    api, rss = statistics.median(r[0] for r in plugins), statistics.median(r[1] for r in plugins)
    lines = plugins[-1][2]
    print(f"  target /api <= 1 s: {'ok' if api <= 1 else 'MISSED'};  RSS <= 70 MiB: {'ok' if rss <= 70 else 'MISSED'};"
          f"  warning lines {len(lines)} (1 expected): {'ok' if len(lines) == 1 else 'MISSED'}")
    for line in lines:
        print("    " + line)


if __name__ == "__main__":
    main()
