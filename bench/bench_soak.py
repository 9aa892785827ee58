"""Soak benchmark: does a gateway that runs for hours hold steady (no descriptor, memory or
kernel leak)?

    python bench/bench_soak.py [--minutes 5] [--cycles 0] [--kernel tiny] [--parallel 4] [--churn 3]

Each cycle (``--parallel`` at once): start a kernel, run code over a websocket, close
and reopen the websocket ``--churn`` times (alternating the legacy and v1 protocols, one reconnect
with the same session id), restart the kernel, run code again, shut it down. About every 25
cycles, between rounds (no kernel running), the gateway's open descriptors and RSS are sampled
(psutil); after a warm-up third of the run, the growth is fitted by least squares and reported
per 1,000 cycles. Ends after ``--minutes`` (or
``--cycles`` when given), so it can run for an hour (``--minutes 60``) or a few minutes.

Targets: descriptors do not grow (< 1 per 1,000 cycles); RSS grows < 2 MiB per 1,000 cycles;
no kernel process and no session record is left at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from eg_core.testing import GatewayProcess, KernelSocket  # noqa: E402

KERNELSPECS = str(ROOT / "tests" / "kernelspecs")
MIB = 1024 * 1024
SAMPLE_EVERY = 25
TARGET_FDS_PER_1000 = 1.0
TARGET_RSS_MIB_PER_1000 = 2.0


async def execute(gw, kernel_id: str, v1: bool, session_id: str | None = None) -> None:
    ks = await KernelSocket.connect(gw, kernel_id, v1=v1, session_id=session_id)
    try:
        out = await ks.execute("1 + 1", timeout=120)
        if out["reply"]["status"] != "ok":
            raise RuntimeError(f"execute failed: {out}")
    finally:
        await ks.close()


PORT_RACES = []  # launches that lost a port to another process between its test and its bind


async def cycle(gw, http, kernel: str, churn: int) -> None:
    for _ in range(3):
        r = await http.post("/api/kernels", json={"name": kernel})
        if r.status_code == 201 or "Address already in use" not in r.text:
            break
        PORT_RACES.append(r.text)
    if r.status_code != 201:
        raise RuntimeError(f"start failed: {r.status_code} {r.text}")
    kernel_id = r.json()["id"]
    try:
        await execute(gw, kernel_id, v1=False)
        for i in range(churn):
            await execute(gw, kernel_id, v1=bool(i % 2), session_id="soak-same" if i == churn - 1 else None)
        r = await http.post(f"/api/kernels/{kernel_id}/restart", json={})
        if r.status_code != 200:
            raise RuntimeError(f"restart failed: {r.status_code} {r.text}")
        await execute(gw, kernel_id, v1=True)
    finally:
        await http.delete(f"/api/kernels/{kernel_id}")


def slope_per_1000(samples: list[tuple[int, float]]) -> float:
    """Least-squares growth of ``value`` per 1,000 cycles."""
    n = len(samples)
    if n < 2:
        return 0.0
    mx = sum(c for c, _ in samples) / n
    my = sum(v for _, v in samples) / n
    var = sum((c - mx) ** 2 for c, _ in samples)
    return 1000 * sum((c - mx) * (v - my) for c, v in samples) / var if var else 0.0


async def run(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="eg-bench-soak-"))
    gw = GatewayProcess(tmp, "--log-level=WARN", kernel_spec_dirs=[KERNELSPECS])
    proc = psutil.Process(gw.proc.pid)
    samples: list[tuple[int, int, int, float]] = []  # cycles, fds, rss, seconds
    done = 0
    stop_at = time.monotonic() + 60 * args.minutes
    t0 = time.monotonic()

    def finished() -> bool:
        return (args.cycles and done >= args.cycles) or (not args.cycles and time.monotonic() >= stop_at)

    async def sample() -> None:
        await asyncio.sleep(0.5)  # let closed connections and ended kernels be reaped
        samples.append((done, proc.num_fds(), proc.memory_info().rss, time.monotonic() - t0))

    try:
        async with gw.client() as http:
            await sample()
            while not finished():
                # a round: --parallel cycles at once; samples are taken between rounds, when no
                # kernel runs, so descriptor counts compare like with like
                await asyncio.gather(*(cycle(gw, http, args.kernel, args.churn) for _ in range(args.parallel)))
                done += args.parallel
                if done % SAMPLE_EVERY < args.parallel:
                    await sample()
            left = (await http.get("/api/kernels")).json()
            await sample()
        kernels_left = [p.pid for p in proc.children(recursive=True)]
        records_left = list((tmp / "sessions").glob("*.json"))
    finally:
        gw.stop()
    steady = [s for s in samples if s[0] >= done / 3]
    return {
        "cycles": done,
        "seconds": time.monotonic() - t0,
        "samples": samples,
        "fds_per_1000": slope_per_1000([(c, f) for c, f, _, _ in steady]),
        "rss_mib_per_1000": slope_per_1000([(c, r / MIB) for c, _, r, _ in steady]),
        "port_races": len(PORT_RACES),
        "kernels_listed_at_end": len(left),
        "kernel_processes_left": len(kernels_left),
        "records_left": len(records_left),
    }


def report(r: dict, args: argparse.Namespace) -> bool:
    first, last = r["samples"][0], r["samples"][-1]
    print(f"cycles                  {r['cycles']} in {r['seconds']:.0f} s ({args.parallel} at once, kernel {args.kernel}, "
          f"{args.churn + 2} websockets and 1 restart per cycle)")
    print(f"open descriptors        {first[1]} at start, {last[1]} at end; growth {r['fds_per_1000']:+.2f} per 1,000 cycles "
          f"(target < {TARGET_FDS_PER_1000})")
    print(f"RSS                     {first[2] / MIB:.1f} MiB at start, {last[2] / MIB:.1f} MiB at end; growth "
          f"{r['rss_mib_per_1000']:+.2f} MiB per 1,000 cycles after warm-up (target < {TARGET_RSS_MIB_PER_1000})")
    print(f"port races retried      {r['port_races']} (a start whose port another process took first)")
    print(f"left at the end         {r['kernels_listed_at_end']} kernels listed, {r['kernel_processes_left']} kernel processes, "
          f"{r['records_left']} session records")
    print("samples (cycles, fds, RSS MiB, s):")
    for c, f, rss, s in r["samples"][:: max(len(r["samples"]) // 12, 1)]:
        print(f"    {c:6d} {f:5d} {rss / MIB:8.1f} {s:7.0f}")
    return (
        r["fds_per_1000"] < TARGET_FDS_PER_1000
        and r["rss_mib_per_1000"] < TARGET_RSS_MIB_PER_1000
        and not (r["kernels_listed_at_end"] or r["kernel_processes_left"] or r["records_left"])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--cycles", type=int, default=0, help="stop after this many cycles instead of --minutes")
    parser.add_argument("--kernel", default="tiny", help="kernelspec (tests/kernelspecs and installed ones)")
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--churn", type=int, default=3, help="extra websocket connections per cycle")
    args = parser.parse_args()
    ok = report(asyncio.run(run(args)), args)
    print("targets met" if ok else "TARGETS MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
