"""Benchmark: a Spark kernel's start until its first Spark result, through eg, against the same
Spark driver run by ``spark-submit`` directly (the floor), alternated in one run.

    python bench/bench_spark.py [--rounds 5]

Through eg: ``spark_python_yarn_cluster`` (eg-yarn, on the emulated ResourceManager with its state
delays set to zero, through the tests' spark-submit stand-in): POST /api/kernels, the websocket,
then one cell ``spark.range(10**6).selectExpr("sum(id)").collect()`` whose ``spark`` the
launcher's lazy context makes with real pyspark (local mode: the emulated RM runs no Spark JVM),
timed until the cell's result arrives; the kernel is then shut down. The floor: pyspark's own
``bin/spark-submit`` running a driver file that makes the same session (``local[*]``) and runs
the same query, timed from the process's start until it prints the result. Both pay the JVM's
start and Spark's; what eg adds is the gateway, the submission, the launcher and ipykernel.
A warm-up round of each is not counted (page cache, JIT-less class loading).

Target: through eg <= floor + 1 s (median).

Needs pyspark (``pip install -c constraints.txt -e '.[spark]'``) and Java on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "plugins" / "eg_yarn" / "tests"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(TESTS))
from eg_core.testing import GatewayProcess, KernelSocket  # noqa: E402
from _common import shutdown  # noqa: E402
from bench_yarn import emulated_yarn_gateway  # noqa: E402

TARGET_S = 1.0
QUERY = 'spark.range(10**6).selectExpr("sum(id)").collect()[0][0]'
DRIVER = f"""from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
print({QUERY}, flush=True)
spark.stop()
"""


async def through_eg(gw: GatewayProcess) -> float:
    """Seconds from POST /api/kernels to the first Spark result of a spark_python_yarn_cluster kernel."""
    t0 = time.perf_counter()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "spark_python_yarn_cluster"})
        if r.status_code != 201:
            raise RuntimeError(f"{r.status_code} {r.text}")
        kid = r.json()["id"]
    ks = await KernelSocket.connect(gw, kid)
    try:
        out = await ks.execute(f"print({QUERY})", timeout=300)
        elapsed = time.perf_counter() - t0
        if out["stdout"].strip() != str(sum(range(10**6))):
            raise RuntimeError(f"unexpected output: {out}")
    finally:
        await ks.close()
    await shutdown(gw, kid)
    return elapsed


async def floor(driver: Path) -> float:
    """Seconds from starting ``spark-submit driver.py`` (local mode) to its printed result."""
    import pyspark

    spark_submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    env = {k: v for k, v in os.environ.items() if k != "SPARK_HOME"}
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        str(spark_submit), str(driver), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
    )
    line = await proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    await proc.wait()
    if line.strip() != str(sum(range(10**6))).encode():
        raise RuntimeError(f"spark-submit printed {line!r}")
    return elapsed


async def rounds(gw: GatewayProcess, driver: Path, count: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"eg": [], "floor": []}
    for round_no in range(count + 1):
        order = ["eg", "floor"] if round_no % 2 else ["floor", "eg"]
        for what in order:
            elapsed = await (through_eg(gw) if what == "eg" else floor(driver))
            if round_no:
                times[what].append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="eg-bench-spark-"))
    driver = tmp / "driver.py"
    driver.write_text(DRIVER)
    with emulated_yarn_gateway(tmp) as (gw, _, _):
        times = asyncio.run(rounds(gw, driver, args.rounds))
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"start -> first Spark result, {args.rounds} rounds (s)")
    print(f"{'':36}{'median':>9}{'min':>9}{'max':>9}")
    for key, label in (("eg", "through eg (spark_python_yarn_cluster)"), ("floor", "spark-submit driver.py (floor)")):
        print(f"{label:36}{medians[key]:9.2f}{min(times[key]):9.2f}{max(times[key]):9.2f}")
    over = medians["eg"] - medians["floor"]
    print(f"target: eg <= floor + {TARGET_S:.0f} s: {'OK' if over <= TARGET_S else 'MISSED'} ({over:+.2f} s)")


if __name__ == "__main__":
    main()
