"""Benchmark: kernel start as a YARN application (eg-yarn, on the emulated ResourceManager with
its state delays set to zero) against a local kernel, both through the same eg gateway in the
same run.

    python bench/bench_yarn.py [--rounds 7]

Each round starts one local (python3), one REST-submitted (python_yarn_rest) and one
spark-submit (spark_python_yarn_cluster, through the tests' spark-submit stand-in) kernel,
alternating, and times POST /api/kernels until a kernel_info_reply is in hand over the websocket;
the kernels are shut down between rounds. A warm-up round is not counted. The difference to the
local start is eg-yarn's own overhead (RM requests, the queue check, the wait for the
application and the callback) plus the emulator's AM container launch (a ``bash -c``).

For spark-submit kernels the difference also holds Spark's part, which eg does not run: the
tests' ``spark-submit`` stand-in (an interpreter that submits over REST) and the AM shim (an
interpreter that registers with the RM before it runs the driver), where real Spark runs JVMs.
Their time is measured per application (run.sh started, from the gateway log, to the
application's submission at the RM; the AM container's launch to the AM's registration, from
the emulator) and subtracted to give eg's own overhead.

Target: YARN start <= local start + 300 ms of eg's own overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "plugins" / "eg_yarn" / "tests"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(TESTS))
from eg_core.testing import GatewayProcess  # noqa: E402
from _common import interleaved_starts, launch_phases  # noqa: E402
from yarn_emulator import Emulator, LoopThread, YarnCluster, write_hadoop_conf  # noqa: E402

import eg_yarn  # noqa: E402

TARGET_MS = 300.0
NAMES = ["python3", "python_yarn_rest", "spark_python_yarn_cluster"]


def kernelspecs(tmp: Path) -> Path:
    root = tmp / "kernels"
    for name in NAMES[1:]:
        shutil.copytree(Path(eg_yarn.kernelspecs_dir()) / name, root / name)
        spec = json.loads((root / name / "kernel.json").read_text())
        if "SPARK_HOME" in spec.get("env", {}):
            spec["env"]["SPARK_HOME"] = str(TESTS / "spark_home")
        (root / name / "kernel.json").write_text(json.dumps(spec))
    return root


@contextlib.contextmanager
def emulated_yarn_gateway(tmp: Path):
    """A gateway with eg-yarn's kernelspecs (SPARK_HOME at the tests' spark-submit stand-in) on a
    fresh emulated ResourceManager whose state delays are zero; yields (gateway, emulator,
    cluster) and stops all three on exit."""
    thread = LoopThread()
    cluster = YarnCluster(tmp / "yarn")
    cluster.state_delay = 0.0
    rm = Emulator(cluster, thread)
    conf = write_hadoop_conf(tmp / "conf", [rm.address])
    gw = GatewayProcess(
        tmp, f"--YarnSettings.yarn_endpoint={rm.url}", kernel_spec_dirs=[str(kernelspecs(tmp))],
        env={"HADOOP_CONF_DIR": str(conf), "SPARK_STAGING_DIR": str(tmp / "staging")},
    )
    try:
        yield gw, rm, cluster
    finally:
        gw.stop()
        rm.stop()

        async def stop():
            cluster.shutdown()

        thread.run(stop())
        thread.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with emulated_yarn_gateway(Path(tempfile.mkdtemp(prefix="eg-bench-yarn-"))) as (gw, rm, cluster):
        times = asyncio.run(interleaved_starts(gw, NAMES, args.rounds))
        log = gw.output()
        apps = rm.call(lambda: [(a.name, a.started, a.launched, a.registered_at) for a in cluster.apps.values()])
    medians = {n: statistics.median(times[n]) * 1000 for n in NAMES}
    local = medians["python3"]
    print(f"kernel start -> kernel_info_reply, median of {args.rounds} rounds (ms)")
    print(f"{'':28}{'median':>10}{'min':>10}{'max':>10}{'-local':>10}")
    for name in NAMES:
        print(f"{name:28}{medians[name]:10.1f}{min(times[name]) * 1000:10.1f}{max(times[name]) * 1000:10.1f}"
              f"{medians[name] - local:10.1f}")
    for name in NAMES[1:]:
        phases = launch_phases(log, name)
        print(f"{name} launch phases (median, ms): " + ", ".join(f"{k} {v * 1000:.1f}" for k, v in phases.items()))
    spark = spark_part_ms(log, apps)
    print(f"spark_python_yarn_cluster: Spark's part (spark-submit stand-in + AM shim, not eg), median {spark:.1f} ms")
    for name in NAMES[1:]:
        over = medians[name] - local - (spark if name == "spark_python_yarn_cluster" else 0.0)
        print(f"target {name}: eg's own overhead <= {TARGET_MS:.0f} ms: {'OK' if over <= TARGET_MS else 'MISSED'} ({over:+.1f} ms)")


_RUN_SH = re.compile(r"^\[I (\S+ \S+) eg\.yarn\] \[kernel ([0-9a-f-]+)\] yarn: started \S*run\.sh", re.M)


def spark_part_ms(log: str, apps: list[tuple[str, int, int, int]]) -> float:
    """Median time per spark-submit application spent in the stand-ins for Spark: run.sh's start
    to the application's submission, and the AM container's launch to the AM's registration."""
    started = {kid: datetime.datetime.strptime(ts, "%Y-%m-%d %H:%M:%S.%f").timestamp() * 1000 for ts, kid in _RUN_SH.findall(log)}
    parts = [(submitted - started[name]) + (registered - launched)
             for name, submitted, launched, registered in apps if name in started and registered and launched]
    return statistics.median(parts) if parts else 0.0


if __name__ == "__main__":
    main()
