"""Benchmark: what idle kernels cost the gateway (memory and open files per kernel, CPU at rest).

    python bench/bench_idle_kernels.py [--kernels 500] [--idle-seconds 20] [--batch 10]
    python bench/bench_idle_kernels.py --profile     # in-process: where the memory goes (tracemalloc)

The kernels are ``tests/kernelspecs/tiny``: a one-file kernel (pyzmq, no IPython) that answers
kernel_info on shell and publishes status on iopub, so a hundred fit on two cores. Measured on the
gateway process only (psutil), not on its kernels:

- RSS fresh (just listening), after a batch of kernels started and stopped (modules loaded on first use),
  with all kernels idle, and after they are shut down;
- RSS per kernel = (RSS with N - RSS fresh) / N, and the same from the warmed-up baseline;
- open files per kernel = (fds with N - fds with N/2) / (N/2): what each further kernel adds (the
  figure from the warmed-up gateway, which also holds files opened once, is printed beside it);
- idle CPU: the gateway's CPU time over ``--idle-seconds`` with all kernels idle, in % of one core;
- the (N+1)th start against the first: start -> kernel_info_reply over the websocket, median of
  ``--probes`` starts each, alone (nothing else starting), with 0 and with N kernels held. N
  running kernels also slow the machine (the new kernel's own start), so the (N+1)th start is
  also timed, taking turns, on a second, fresh gateway beside them: the ratio of the two is the
  gateway's own part, which the target is about.

Targets (issue 12): 500 kernels, <= 0.2 MiB and <= 3 open files per kernel, <= 1% CPU idle, the
501st start as fast as the first (within 10%).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from eg_core.testing import GatewayProcess  # noqa: E402
from _common import shutdown, start_to_kernel_info  # noqa: E402

KERNELSPECS = str(ROOT / "tests" / "kernelspecs")
MIB = 1024 * 1024
TARGET_MIB_PER_KERNEL = 0.2
TARGET_FDS_PER_KERNEL = 3
TARGET_IDLE_CPU = 1.0
TARGET_START_RATIO = 1.1


def rss(proc: psutil.Process) -> int:
    return proc.memory_info().rss


async def settle(proc: psutil.Process, seconds: float = 1.5) -> None:
    """Let the gateway go quiet (pending log writes, GC) before reading its RSS."""
    await asyncio.sleep(seconds)


async def start_kernels(http, n: int, batch: int, retries: list[str] | None = None) -> list[str]:
    """Start ``n`` kernels, ``batch`` at a time. A launch that lost its port to a process outside
    the gateway (it tests ports free, then the kernel binds them) is retried and noted."""

    async def one() -> str:
        for _ in range(3):
            r = await http.post("/api/kernels", json={"name": "tiny"})
            if r.status_code == 201:
                return r.json()["id"]
            if "Address already in use" not in r.text or retries is None:
                break
            retries.append(r.text)
        raise SystemExit(f"kernel start failed: {r.status_code} {r.text}")

    ids: list[str] = []
    while len(ids) < n:
        ids += await asyncio.gather(*(one() for _ in range(min(batch, n - len(ids)))))
    return ids


async def run(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="eg-bench-idle-"))
    gw = GatewayProcess(tmp, "--log-level=WARN", kernel_spec_dirs=[KERNELSPECS])
    proc = psutil.Process(gw.proc.pid)
    out: dict = {"kernels": args.kernels}
    try:
        async with gw.client() as http:
            await settle(proc)
            out["rss_fresh"] = rss(proc)
            warm = await start_kernels(http, args.batch, args.batch)  # also opens the client's keep-alive connections
            await asyncio.gather(*(http.delete(f"/api/kernels/{k}") for k in warm))
            await http.get("/metrics")
            await settle(proc)
            out["rss_warm"] = rss(proc)
            out["first_start"] = await probe_starts(gw, args.probes)
            await settle(proc)
            out["fds_warm"] = proc.num_fds()  # after the probes: every lazily opened gateway file is open

            retries: list[str] = []
            half = args.kernels // 2
            t0 = time.perf_counter()
            ids = await start_kernels(http, half, args.batch, retries)
            seconds = time.perf_counter() - t0
            await settle(proc)
            out["fds_half"] = proc.num_fds()
            t0 = time.perf_counter()
            ids += await start_kernels(http, args.kernels - half, args.batch, retries)
            out["port_race_retries"] = len(retries)
            out["start_seconds"] = seconds + time.perf_counter() - t0
            models = (await http.get("/api/kernels")).json()
            assert len(models) == args.kernels and all(m["execution_state"] == "idle" for m in models), models[:3]
            await settle(proc, 3)
            out["rss_loaded"] = rss(proc)
            kids = proc.children(recursive=True)
            out["kernel_rss_each"] = sum(rss(k) for k in kids) / max(len(kids), 1)
            out["threads"] = proc.num_threads()
            out["fds"] = proc.num_fds()

            c0, w0 = proc.cpu_times(), time.perf_counter()
            await asyncio.sleep(args.idle_seconds)
            c1, w1 = proc.cpu_times(), time.perf_counter()
            out["idle_cpu_percent"] = 100 * ((c1.user + c1.system) - (c0.user + c0.system)) / (w1 - w0)
            out["rss_after_idle"] = rss(proc)
            (tmp / "beside").mkdir()
            beside = GatewayProcess(tmp / "beside", "--log-level=WARN", kernel_spec_dirs=[KERNELSPECS])
            try:
                await probe_starts(beside, 1)  # its first start loads modules
                out["next_start"], out["beside_start"] = await probe_starts_alternating([gw, beside], args.probes)
            finally:
                beside.stop()

            t0 = time.perf_counter()
            for i in range(0, len(ids), args.batch):
                await asyncio.gather(*(http.delete(f"/api/kernels/{k}") for k in ids[i : i + args.batch]))
            out["stop_seconds"] = time.perf_counter() - t0
            await settle(proc)
            out["rss_after_shutdown"] = rss(proc)
    finally:
        gw.stop()
    return out


async def probe_starts(gw, n: int) -> float:
    """Median seconds of ``n`` single starts (start -> kernel_info over the websocket), each
    kernel shut down before the next."""
    times = []
    for _ in range(n):
        elapsed, kid = await start_to_kernel_info(gw, "tiny")
        await shutdown(gw, kid)
        times.append(elapsed)
    return sorted(times)[len(times) // 2]


async def probe_starts_alternating(gws: list, n: int) -> list[float]:
    """Median seconds of ``n`` single starts on each gateway, taking turns (so that both see
    the same machine)."""
    times: list[list[float]] = [[] for _ in gws]
    for _ in range(n):
        for gw, each in zip(gws, times):
            elapsed, kid = await start_to_kernel_info(gw, "tiny")
            await shutdown(gw, kid)
            each.append(elapsed)
    return [sorted(each)[len(each) // 2] for each in times]


def report(r: dict) -> bool:
    n = r["kernels"]
    per_fresh = (r["rss_loaded"] - r["rss_fresh"]) / n / MIB
    per_warm = (r["rss_loaded"] - r["rss_warm"]) / n / MIB
    print(f"kernels                          {n} (tiny kernel, {r['kernel_rss_each'] / MIB:.1f} MiB RSS each)")
    print(f"start {n} kernels                 {r['start_seconds']:.1f} s ({r['port_race_retries']} launches retried after "
          f"losing a port to another socket); shut down: {r['stop_seconds']:.1f} s")
    print(f"gateway RSS fresh                {r['rss_fresh'] / MIB:.1f} MiB")
    print(f"gateway RSS after warm-up starts {r['rss_warm'] / MIB:.1f} MiB")
    print(f"gateway RSS with {n} idle         {r['rss_loaded'] / MIB:.1f} MiB "
          f"({r['threads']} threads, {r['fds']} fds)")
    print(f"gateway RSS after {r['idle_seconds']:g} s idle       {r['rss_after_idle'] / MIB:.1f} MiB")
    print(f"gateway RSS after shutting down  {r['rss_after_shutdown'] / MIB:.1f} MiB")
    ok_mem = per_fresh <= TARGET_MIB_PER_KERNEL
    ok_cpu = r["idle_cpu_percent"] <= TARGET_IDLE_CPU
    print(f"RSS per kernel (vs fresh)        {per_fresh:.3f} MiB   target <= {TARGET_MIB_PER_KERNEL}  {'OK' if ok_mem else 'MISSED'}")
    print(f"RSS per kernel (vs warmed up)    {per_warm:.3f} MiB")
    print(f"idle CPU with {n} kernels         {r['idle_cpu_percent']:.2f} %   target <= {TARGET_IDLE_CPU}  {'OK' if ok_cpu else 'MISSED'}")
    fds = (r["fds"] - r["fds_half"]) / (n - n // 2)
    ok_fds = fds <= TARGET_FDS_PER_KERNEL
    print(f"open files per kernel            {fds:.2f}   target <= {TARGET_FDS_PER_KERNEL}  {'OK' if ok_fds else 'MISSED'}"
          f"   (from {n // 2} to {n} kernels; {(r['fds'] - r['fds_warm']) / n:.2f} from the warmed-up gateway, "
          "which adds the fixed files the first hundreds of kernels open)")
    ratio = r["next_start"] / r["first_start"]
    own = r["next_start"] / r["beside_start"]
    ok_start = own <= TARGET_START_RATIO
    print(f"start with 0 / {n} kernels held   {r['first_start'] * 1000:.1f} / {r['next_start'] * 1000:.1f} ms (x{ratio:.2f}: "
          f"the machine and the gateway)")
    print(f"  a fresh gateway beside them     {r['beside_start'] * 1000:.1f} ms: the gateway's own part x{own:.2f}"
          f"   target <= x{TARGET_START_RATIO}  {'OK' if ok_start else 'MISSED'}")
    return ok_mem and ok_cpu and ok_fds and ok_start


# -- in-process profile: where the per-kernel memory goes ---------------------------------------


async def profile(args: argparse.Namespace) -> None:
    """Start kernels in this process's own gateway (the real registry) and diff tracemalloc
    snapshots taken with 1 kernel and with N, grouped by allocating line."""
    import tracemalloc

    os.environ["JUPYTER_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="eg-bench-rt-")
    from eg_core._server.app import Gateway

    gw = Gateway()
    gw.initialize(["--Gateway.kernel_spec_dirs", KERNELSPECS, "--Gateway.auth_token=x", "--log-level=WARN"])
    me = psutil.Process()
    first = await gw.kernels.start("tiny")
    await first.shutdown()
    tracemalloc.start(args.frames)
    gc.collect()
    rss0, before = rss(me), tracemalloc.take_snapshot()
    kernels = []
    for i in range(0, args.kernels, args.batch):
        kernels += await asyncio.gather(*(gw.kernels.start("tiny") for _ in range(min(args.batch, args.kernels - i))))
    await asyncio.sleep(2)
    gc.collect()
    rss1, after = rss(me), tracemalloc.take_snapshot()
    n = len(kernels)
    traced, _ = tracemalloc.get_traced_memory()
    stats = after.compare_to(before, "traceback" if args.frames > 1 else "lineno")
    grown = sum(s.size_diff for s in stats)
    print(f"in-process: RSS +{(rss1 - rss0) / n / 1024:.0f} KiB per kernel, Python heap (tracemalloc) "
          f"+{grown / n / 1024:.0f} KiB per kernel; the rest is native (libzmq sockets, thread stacks, malloc slack)")
    print(f"threads: {me.num_threads()}, fds: {me.num_fds()}")
    print("top allocation sites, per kernel:")
    for s in stats[: args.top]:
        where = s.traceback.format()[-2:] if args.frames > 1 else [str(s.traceback[0])]
        print(f"  {s.size_diff / n / 1024:7.1f} KiB {s.count_diff / n:6.1f} blocks  {' <- '.join(w.strip() for w in where)}")
    by_file: dict[str, int] = {}
    for s in after.compare_to(before, "filename"):
        key = s.traceback[0].filename
        for marker in ("site-packages/", "lib/python3", "eg_core/"):
            if marker in key:
                key = key.split(marker, 1)[1]
                break
        by_file[key] = by_file.get(key, 0) + s.size_diff
    print("per kernel, by file:")
    for key, size in sorted(by_file.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {size / n / 1024:7.1f} KiB  {key}")
    tracemalloc.stop()
    await gw.kernels.shutdown_all()
    gw.kernels.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernels", type=int, default=500)
    parser.add_argument("--probes", type=int, default=7, help="single starts timed with 0 and with N kernels held")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=10, help="kernels started at once")
    parser.add_argument("--profile", action="store_true", help="in-process tracemalloc profile instead")
    parser.add_argument("--frames", type=int, default=1, help="traceback depth for --profile")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if args.profile:
        asyncio.run(profile(args))
        return
    result = asyncio.run(run(args))
    result["idle_seconds"] = args.idle_seconds
    sys.exit(0 if report(result) else 1)


if __name__ == "__main__":
    main()
