"""Benchmark: local kernels through eg against jupyter_client directly (the floor).

    python bench/bench_core.py [--starts 7] [--executes 300] [--mib 32]

Measures, side by side:
- start: kernel start until a kernel_info_reply is in hand (eg: POST /api/kernels, websocket
  open, kernel_info over it; direct: AsyncKernelManager.start_kernel + wait_for_ready);
- execute round trip: execute_request until its execute_reply and the idle status;
- stdout throughput: a cell printing N MiB, in MiB/s of stream text received;
  (both against one kernel: through eg's websocket, then jupyter_client on its connection file)
- gateway RSS, fresh and with one kernel.

Targets: round trip <= 1.1x floor, throughput >= 0.9x floor, start <= floor + 20 ms, RSS <= 60 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import psutil
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from eg_core.testing import GatewayProcess, KernelSocket  # noqa: E402
from _common import shutdown, start_to_kernel_info  # noqa: E402

# Output streams as a long cell's would: 1 KiB lines, flushed every 256 KiB (ipykernel would
# otherwise hold a fast cell's whole output and send it as one message at the end).
PRINT_CODE = (
    "import sys\nchunk = 'x' * 1023 + '\\n'\nfor i in range({n}):\n    sys.stdout.write(chunk)\n"
    "    if i % 256 == 255:\n        sys.stdout.flush()\n"
)


# -- through eg ---------------------------------------------------------------------------------


async def eg_roundtrips(ks: KernelSocket, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await ks.execute("pass")
        times.append(time.perf_counter() - t0)
    return times


async def eg_throughput(ks: KernelSocket, mib: int) -> float:
    t0 = time.perf_counter()
    out = await ks.execute(PRINT_CODE.format(n=mib * 1024), timeout=600)
    elapsed = time.perf_counter() - t0
    assert len(out["stdout"]) == mib * 1024 * 1024, len(out["stdout"])
    return mib / elapsed


# -- directly with jupyter_client ---------------------------------------------------------------


async def direct_start() -> tuple[float, AsyncKernelManager]:
    t0 = time.perf_counter()
    km = AsyncKernelManager(kernel_name="python3")
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    elapsed = time.perf_counter() - t0
    kc.stop_channels()
    return elapsed, km


async def direct_execute(kc, code: str) -> str:
    """Run code; return its stdout once both its execute_reply and its idle status are in."""
    msg_id = kc.execute(code)

    async def reply() -> None:
        while (await kc.get_shell_msg())["parent_header"].get("msg_id") != msg_id:
            pass

    async def output() -> str:
        text = []
        while True:
            msg = await kc.get_iopub_msg()
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                text.append(msg["content"]["text"])
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(text)

    _, text = await asyncio.gather(reply(), output())
    return text


async def direct_roundtrips(kc, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await direct_execute(kc, "pass")
        times.append(time.perf_counter() - t0)
    return times


async def direct_throughput(kc, mib: int) -> float:
    t0 = time.perf_counter()
    text = await direct_execute(kc, PRINT_CODE.format(n=mib * 1024))
    elapsed = time.perf_counter() - t0
    assert len(text) == mib * 1024 * 1024, len(text)
    return mib / elapsed


# -- main ---------------------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


async def main(args) -> dict:
    tmp = Path(args.tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    gw = GatewayProcess(tmp, "--Gateway.autorestart=False")
    results = {}
    try:
        await asyncio.sleep(1)
        results["rss_fresh_mib"] = rss_mib(gw.proc.pid)
        eg_starts, direct_starts = [], []
        for _ in range(args.starts):  # interleaved, so machine noise hits both alike
            elapsed, kid = await start_to_kernel_info(gw, "python3", v1=True)
            eg_starts.append(elapsed)
            await shutdown(gw, kid)
            elapsed, km = await direct_start()
            direct_starts.append(elapsed)
            await km.shutdown_kernel(now=True)
        results["start_eg_ms"] = 1000 * statistics.median(eg_starts)
        results["start_direct_ms"] = 1000 * statistics.median(direct_starts)

        _, kid = await start_to_kernel_info(gw, "python3", v1=True)
        results["rss_one_kernel_mib"] = rss_mib(gw.proc.pid)
        # The floor is jupyter_client talking to the very same kernel, so kernel-to-kernel
        # differences do not count; one client at a time, alternating in batches.
        kc = AsyncKernelClient(connection_file=str(tmp / "runtime" / f"eg-kernel-{kid}.json"))
        kc.load_connection_file()
        kc.start_channels()
        await kc.wait_for_ready(timeout=60)
        rounds = max(args.executes // 50, 1)
        eg_rt, legacy_rt, direct_rt, eg_tp, direct_tp = [], [], [], [], []
        for round_no in range(rounds + 1):
            for v1, times in ((True, eg_rt), (False, legacy_rt)):
                ks = await KernelSocket.connect(gw, kid, v1=v1)
                measured = await eg_roundtrips(ks, 50)
                await ks.close()
                if round_no:  # round 0 warms up
                    times += measured
            measured = await direct_roundtrips(kc, 50)
            if round_no:
                direct_rt += measured
        for _ in range(args.throughput_runs):
            ks = await KernelSocket.connect(gw, kid, v1=True)
            eg_tp.append(await eg_throughput(ks, args.mib))
            await ks.close()
            direct_tp.append(await direct_throughput(kc, args.mib))
        results["roundtrip_eg_v1_ms"] = 1000 * statistics.median(eg_rt)
        results["roundtrip_eg_legacy_ms"] = 1000 * statistics.median(legacy_rt)
        results["roundtrip_direct_ms"] = 1000 * statistics.median(direct_rt)
        results["stdout_eg_mib_s"] = statistics.median(eg_tp)
        results["stdout_direct_mib_s"] = statistics.median(direct_tp)
        kc.stop_channels()
    finally:
        gw.stop()
    return results


def report(r: dict) -> None:
    rows = [
        ("kernel start -> kernel_info (median)", f"{r['start_eg_ms']:.1f} ms", f"{r['start_direct_ms']:.1f} ms",
         f"+{r['start_eg_ms'] - r['start_direct_ms']:.1f} ms", "<= floor + 20 ms"),
        ("execute round trip, v1 (median)", f"{r['roundtrip_eg_v1_ms']:.3f} ms", f"{r['roundtrip_direct_ms']:.3f} ms",
         f"{r['roundtrip_eg_v1_ms'] / r['roundtrip_direct_ms']:.2f}x", "<= 1.1x"),
        ("execute round trip, legacy (median)", f"{r['roundtrip_eg_legacy_ms']:.3f} ms", f"{r['roundtrip_direct_ms']:.3f} ms",
         f"{r['roundtrip_eg_legacy_ms'] / r['roundtrip_direct_ms']:.2f}x", "<= 1.1x"),
        ("stdout throughput (median)", f"{r['stdout_eg_mib_s']:.1f} MiB/s", f"{r['stdout_direct_mib_s']:.1f} MiB/s",
         f"{r['stdout_eg_mib_s'] / r['stdout_direct_mib_s']:.2f}x", ">= 0.9x"),
        ("gateway RSS fresh / one kernel", f"{r['rss_fresh_mib']:.1f} / {r['rss_one_kernel_mib']:.1f} MiB", "", "", "<= 60 MiB fresh"),
    ]
    print(f"{'measure':40} {'through eg':>22} {'direct (floor)':>16} {'ratio':>9}  target")
    for row in rows:
        print(f"{row[0]:40} {row[1]:>22} {row[2]:>16} {row[3]:>9}  {row[4]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=7)
    parser.add_argument("--executes", type=int, default=300)
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--throughput-runs", type=int, default=5)
    parser.add_argument("--tmp", default=f"/tmp/eg-bench-{uuid.uuid4().hex[:6]}")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    arguments = parser.parse_args()
    figures = asyncio.run(main(arguments))
    report(figures)
    if arguments.json:
        print(json.dumps(figures, indent=1))
