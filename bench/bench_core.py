"""Benchmark: local kernels through eg against jupyter_client directly (the floor).

    python bench/bench_core.py [--starts 7] [--executes 300] [--mib 32]
    python bench/bench_core.py --against <git rev> [--this <git rev>] [--rounds 24]

Measures, side by side:
- start: kernel start until a kernel_info_reply is in hand (eg: POST /api/kernels, websocket
  open, kernel_info over it; direct: AsyncKernelManager.start_kernel + wait_for_ready);
- execute round trip: execute_request until its execute_reply and the idle status;
- stdout throughput: a cell printing N MiB, in MiB/s of stream text received;
- small messages (--against only): cells printing short lines, each flushed (one iopub message
  each), in lines/s received;
  (all against one kernel: through eg's websocket (v1), then jupyter_client on its connection file)
- gateway RSS, fresh and with one kernel (--against: after all rounds).

Plain mode: one gateway of this checkout. Targets: round trip <= 1.1x floor, throughput >= 0.9x
floor, start <= floor + 20 ms, RSS <= 60 MiB.

A/B mode (--against REV): two eg revisions, A = REV and B = the working tree (or --this REV),
interleaved against the floor in one run, so that what a change to the relay or the launch path
costs shows apart from the machine's noise.
- A revision's ``eg_core`` and ``kernelspecs`` are extracted with ``git archive`` into
  $TMPDIR/eg-bench-rev-<sha> (laid out as installed, kept for later runs) and its gateway runs
  with that directory first on PYTHONPATH: setuptools' editable finder comes after PYTHONPATH,
  and PYTHONSAFEPATH=1 keeps the current directory (a checkout) out. Where each gateway imports
  ``eg_core`` from is checked before it starts, and printed.
- Both gateways run the core only (the plugins installed as entry points are disabled), with
  options every revision understands. Each is started once, with one python3 kernel, and serves
  all rounds (the starts go through it too); its RSS is taken after the last round.
- A round: each measure of the four units (A and B, each through eg and by the floor on the same
  kernel) is cut into --slices turns, taken in an order that rotates every turn, so all four are
  sampled over the same stretch of time and the machine's drift hits them alike (--executes,
  --mib and --lines are per round and unit). Then one start through A, through B and directly,
  in an order that rotates every round. Round 0 warms up and is not counted.
- Reported: the median over rounds of each round's eg/floor ratio with its bootstrap 95 %
  interval, and B/A (the per-round ratio of the two ratios) with its interval: a 5 % change is
  resolved where that interval is narrower than +-5 %. Start: ms over the floor, and B - A.
  The raw figures go to bench/results/core-ab-<time>.json.
- Targets (for B): round trip <= 1.05x the floor, stdout >= 1.0x, small messages >= 0.95x,
  start within +20 ms of the floor, RSS after the run within 10 MiB of A's.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import queue
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable

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
# Many small iopub messages: one short line per message.
SMALL_CODE = "for i in range({n}):\n    print(i, flush=True)\n"


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



async def drain(kc) -> None:
    """Discard the iopub messages the client holds: eg's legs on the same kernel reach this
    subscriber too, and the floor must not be timed reading them."""
    while True:
        try:
            await kc.get_iopub_msg(timeout=0.005)
        except queue.Empty:
            return


# -- main ---------------------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


async def plain(args) -> dict:
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
            await drain(kc)
            measured = await direct_roundtrips(kc, 50)
            if round_no:
                direct_rt += measured
        for _ in range(args.throughput_runs):
            ks = await KernelSocket.connect(gw, kid, v1=True)
            eg_tp.append(await eg_throughput(ks, args.mib))
            await ks.close()
            await drain(kc)
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
         f"{r['start_eg_ms'] - r['start_direct_ms']:+.1f} ms", "<= floor + 20 ms"),
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


# -- A/B: two eg revisions, interleaved, against the floor --------------------------------------

REPO = Path(__file__).resolve().parent.parent
METRICS = ("roundtrip", "stdout", "small")


def git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True).stdout


def extract(sha: str) -> Path:
    """A directory holding revision ``sha``'s ``eg_core`` as installed (its ``kernelspecs/`` as
    ``eg_core/kernelspecs``), extracted once and kept in the temp dir for later runs."""
    dest = Path(tempfile.gettempdir()) / f"eg-bench-rev-{sha[:12]}"
    if not (dest / "eg_core" / "__init__.py").exists():
        staging = Path(tempfile.mkdtemp(prefix=f"{dest.name}-"))
        with tarfile.open(fileobj=io.BytesIO(git("archive", sha, "eg_core", "kernelspecs"))) as tar:
            tar.extractall(staging, filter="data")
        (staging / "kernelspecs").rename(staging / "eg_core" / "kernelspecs")
        staging.rename(dest)
    return dest


@dataclass
class Side:
    """One eg revision under test: its gateway, its kernel, and jupyter_client on that kernel."""

    label: str  # "A" or "B"
    rev: str | None  # None: the working tree
    sha: str = ""
    env: dict = field(default_factory=dict)
    eg_core: str = ""  # where its gateway imports eg_core from
    gw: GatewayProcess | None = None
    kid: str = ""
    kc: AsyncKernelClient | None = None
    rss_fresh_mib: float = 0.0

    def prepare(self) -> None:
        head = git("rev-parse", "HEAD").decode().strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "eg_core", "kernelspecs").strip())
        # The core only: the plugins installed as entry points are blocked by name.
        plugins = sorted({ep.name for ep in entry_points(group="eg.plugins")})
        self.env = {"PYTHONSAFEPATH": "1", "EG_DISABLED_PLUGINS": ",".join(plugins)}
        expected = REPO
        if self.rev is None:
            self.sha = head + (" + uncommitted changes" if dirty else "")
        else:
            self.sha = git("rev-parse", "--verify", f"{self.rev}^{{commit}}").decode().strip()
            expected = extract(self.sha)
            self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(expected), os.environ.get("PYTHONPATH")]))
        probe = "import eg_core, eg_core.kernelspecs as k; print(eg_core.__file__); print(k.__file__)"
        found = subprocess.run([sys.executable, "-c", probe], env={**os.environ, **self.env}, check=True,
                               capture_output=True, text=True).stdout.split()
        if not all(Path(f).is_relative_to(expected) for f in found):
            raise RuntimeError(f"{self.label}: eg_core imported from {found}, not from {expected}")
        self.eg_core = str(Path(found[0]).parent)

    async def start(self, tmp: Path) -> None:
        (tmp / self.label).mkdir(parents=True, exist_ok=True)
        self.gw = GatewayProcess(tmp / self.label, "--Gateway.autorestart=False", env=self.env)
        await asyncio.sleep(1)
        self.rss_fresh_mib = rss_mib(self.gw.proc.pid)
        _, self.kid = await start_to_kernel_info(self.gw, "python3", v1=True)
        self.kc = AsyncKernelClient(connection_file=str(tmp / self.label / "runtime" / f"eg-kernel-{self.kid}.json"))
        self.kc.load_connection_file()
        self.kc.start_channels()
        await self.kc.wait_for_ready(timeout=60)

    async def stop(self) -> None:
        if self.kc:
            self.kc.stop_channels()
        if self.gw:
            if self.kid and self.gw.proc.poll() is None:
                await shutdown(self.gw, self.kid)
            self.gw.stop()

    @property
    def name(self) -> str:
        return f"{self.rev} ({self.sha[:9]})" if self.rev else f"working tree ({self.sha[:9]}{'+' if '+' in self.sha else ''})"


def cell(metric: str, amount: int) -> tuple[str, Callable[[str], bool]]:
    """One slice's cell and a check of its stdout: ``amount`` KiB of 1 KiB lines (stdout), or
    ``amount`` short lines, each flushed, so one iopub message each (small messages)."""
    if metric == "stdout":
        return PRINT_CODE.format(n=amount), lambda text: len(text) == amount * 1024
    return SMALL_CODE.format(n=amount), lambda text: text.count("\n") == amount


async def eg_leg(side: Side, metric: str, amount: int) -> list[float]:
    """Seconds of ``amount`` round trips, or of one cell, through ``side``'s gateway (on a new
    websocket, so no other leg's output waits in it; its first execute is not timed)."""
    ks = await KernelSocket.connect(side.gw, side.kid, v1=True)
    try:
        await ks.execute("pass")
        if metric == "roundtrip":
            return await eg_roundtrips(ks, amount)
        code, ok = cell(metric, amount)
        t0 = time.perf_counter()
        out = await ks.execute(code, timeout=600)
        elapsed = time.perf_counter() - t0
        assert ok(out["stdout"]), len(out["stdout"])
        return [elapsed]
    finally:
        await ks.close()


async def floor_leg(side: Side, metric: str, amount: int) -> list[float]:
    """The same by jupyter_client on the connection file of ``side``'s kernel."""
    await drain(side.kc)
    await direct_execute(side.kc, "pass")
    if metric == "roundtrip":
        return await direct_roundtrips(side.kc, amount)
    code, ok = cell(metric, amount)
    t0 = time.perf_counter()
    text = await direct_execute(side.kc, code)
    elapsed = time.perf_counter() - t0
    assert ok(text), len(text)
    return [elapsed]


async def start_leg(side: Side | None) -> float:
    """One start through ``side``'s gateway, or directly (None); the kernel is shut down after."""
    if side is None:
        elapsed, km = await direct_start()
        await km.shutdown_kernel(now=True)
        return elapsed
    elapsed, kid = await start_to_kernel_info(side.gw, "python3", v1=True)
    await shutdown(side.gw, kid)
    return elapsed


def rotated(items: list, n: int) -> list:
    n %= len(items)
    return items[n:] + items[:n]


async def one_round(sides: list[Side], round_no: int, args) -> dict:
    """Every measure of the four units (A and B, each through eg and by the floor on the same
    kernel), cut into ``args.slices`` slices taken in turn, in an order that rotates with every
    slice: all four are sampled over the same stretch of time, so the machine's drift hits them
    alike. Then one start through A, through B and directly, in an order that rotates with the
    round. Round trip in seconds (median), stdout in MiB/s, small messages in lines/s."""
    units = [(side, via) for side in sides for via in ("eg", "floor")]
    amounts = {"roundtrip": -(-args.executes // args.slices), "stdout": max(args.mib * 1024 // args.slices, 1),
               "small": max(args.lines // args.slices, 1)}
    record: dict[str, float] = {}
    for metric in METRICS:
        seconds: dict[str, list[float]] = {f"{metric}_{side.label}_{via}": [] for side, via in units}
        for piece in range(args.slices):
            for side, via in rotated(units, round_no + piece):
                leg = eg_leg if via == "eg" else floor_leg
                seconds[f"{metric}_{side.label}_{via}"] += await leg(side, metric, amounts[metric])
        for key, times in seconds.items():
            if metric == "roundtrip":
                record[key] = statistics.median(times)
            else:
                record[key] = amounts[metric] * len(times) / sum(times) / (1024 if metric == "stdout" else 1)
    for side in rotated([*sides, None], round_no):
        record[f"start_{side.label if side else 'floor'}"] = await start_leg(side)
    return record


def median_ci(values: list[float], resamples: int = 4000) -> tuple[float, float, float]:
    """The median and its bootstrap 95 % interval (percentile; fixed seed, so reruns on the same
    figures agree)."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    return statistics.median(values), medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]


def summarize(rounds: list[dict], sides: list[Side], rss_after: dict) -> dict:
    """Per-round ratios (eg / the floor on the same kernel, same round) and their medians."""
    summary: dict = {}
    for metric in METRICS:
        ratio = {s.label: [r[f"{metric}_{s.label}_eg"] / r[f"{metric}_{s.label}_floor"] for r in rounds] for s in sides}
        summary[metric] = {
            **{s.label: median_ci(ratio[s.label]) for s in sides},
            "B/A": median_ci([b / a for a, b in zip(ratio["A"], ratio["B"])]),
            # Whether the kernels themselves differ: the floor on B's kernel over the floor on A's.
            "floor B/A": median_ci([r[f"{metric}_B_floor"] / r[f"{metric}_A_floor"] for r in rounds]),
            "floor": statistics.median(r[f"{metric}_{s.label}_floor"] for r in rounds for s in sides),
        }
    summary["start"] = {
        **{s.label: median_ci([1000 * (r[f"start_{s.label}"] - r["start_floor"]) for r in rounds]) for s in sides},
        "B-A": median_ci([1000 * (r["start_B"] - r["start_A"]) for r in rounds]),
        "floor": 1000 * statistics.median(r["start_floor"] for r in rounds),
    }
    summary["rss_after_mib"] = {**rss_after, "B-A": rss_after["B"] - rss_after["A"]}
    summary["rss_fresh_mib"] = {s.label: s.rss_fresh_mib for s in sides}
    return summary


def mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def ab_report(summary: dict, sides: list[Side], n_rounds: int) -> None:
    def ratio(c: tuple) -> str:
        return f"{c[0]:.3f}x [{c[1]:.3f}-{c[2]:.3f}]"

    def ms(c: tuple) -> str:
        return f"{c[0]:+.0f} ms [{c[1]:+.0f} {c[2]:+.0f}]"

    def half_width(c: tuple) -> str:
        return f"±{50 * (c[2] - c[1]) / c[0]:.1f}%"

    a, b = sides
    print(f"\nA = {a.name}: eg_core from {a.eg_core}")
    print(f"B = {b.name}: eg_core from {b.eg_core}")
    print(f"{n_rounds} rounds; median over rounds [bootstrap 95 % interval]; eg / the floor on the same kernel\n")
    header = f"{'measure':24} {'A':>26} {'B':>26} {'B/A':>26} {'B/A CI':>7}   target (B)"
    print(header)
    print("-" * len(header))
    targets = {"roundtrip": ("<= 1.05x", lambda x: x <= 1.05), "stdout": (">= 1.0x", lambda x: x >= 1.0),
               "small": (">= 0.95x", lambda x: x >= 0.95)}
    names = {"roundtrip": "execute round trip", "stdout": "stdout throughput", "small": "small messages"}
    for metric in METRICS:
        s = summary[metric]
        text, ok = targets[metric]
        print(f"{names[metric]:24} {ratio(s['A']) + ' ' + mark(ok(s['A'][0])):>26} {ratio(s['B']) + ' ' + mark(ok(s['B'][0])):>26} "
              f"{ratio(s['B/A']):>26} {half_width(s['B/A']):>7}   {text} {mark(ok(s['B'][0]))}")
    s = summary["start"]
    print(f"{'start, over the floor':24} {ms(s['A']) + ' ' + mark(s['A'][0] <= 20):>26} {ms(s['B']) + ' ' + mark(s['B'][0] <= 20):>26} "
          f"{ms(s['B-A']):>26} {'':>7}   <= +20 ms {mark(s['B'][0] <= 20)} (B-A {mark(s['B-A'][0] <= 20)})")
    r = summary["rss_after_mib"]
    print(f"{'RSS after the run':24} {r['A']:>22.1f} MiB {r['B']:>22.1f} MiB {r['B-A']:>+22.1f} MiB {'':>7}   "
          f"<= A + 10 MiB {mark(r['B-A'] <= 10)}")
    f = summary["rss_fresh_mib"]
    print(f"{'(RSS fresh)':24} {f['A']:>22.1f} MiB {f['B']:>22.1f} MiB {f['B'] - f['A']:>+22.1f} MiB")
    print(f"\nthe floor (median): round trip {1000 * summary['roundtrip']['floor']:.3f} ms, stdout "
          f"{summary['stdout']['floor']:.0f} MiB/s, small messages {summary['small']['floor']:.0f} lines/s, "
          f"start {summary['start']['floor']:.0f} ms")
    print("the kernels themselves, floor on B's kernel / on A's: " + ", ".join(
        f"{names[m]} {ratio(summary[m]['floor B/A'])}" for m in METRICS))
    print("B/A resolves a 5 % change where its interval is narrower than ±5 %.")


async def ab(args) -> tuple[dict, dict, list[Side]]:
    sides = [Side("A", args.against), Side("B", args.this)]
    for side in sides:
        side.prepare()
        print(f"{side.label}: {side.name}, eg_core from {side.eg_core}", flush=True)
    tmp = Path(args.tmp)
    load_before = os.getloadavg()
    rounds = []
    try:
        for side in sides:
            await side.start(tmp)
        for round_no in range(args.rounds + 1):  # round 0 warms up
            t0 = time.perf_counter()
            record = await one_round(sides, round_no, args)
            if round_no:
                rounds.append(record)
            print(f"round {round_no}{' (warm-up)' if not round_no else ''}: " + "  ".join(
                f"{m} A {record[f'{m}_A_eg'] / record[f'{m}_A_floor']:.3f}x B {record[f'{m}_B_eg'] / record[f'{m}_B_floor']:.3f}x"
                for m in METRICS) + f"  start A {1000 * (record['start_A'] - record['start_floor']):+.0f} "
                f"B {1000 * (record['start_B'] - record['start_floor']):+.0f} ms  ({time.perf_counter() - t0:.0f} s)", flush=True)
        rss_after = {side.label: rss_mib(side.gw.proc.pid) for side in sides}
    finally:
        for side in sides:
            await side.stop()
    summary = summarize(rounds, sides, rss_after)
    raw = {
        "args": vars(args), "load_before": load_before, "load_after": os.getloadavg(), "cpus": os.cpu_count(),
        "sides": [{"label": s.label, "rev": s.rev, "sha": s.sha, "eg_core": s.eg_core, "env": s.env} for s in sides],
        "rounds": rounds, "summary": summary,
    }
    return raw, summary, sides


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", metavar="REV", help="A/B mode: compare this git revision (A) with --this (B)")
    parser.add_argument("--this", metavar="REV", help="A/B mode: B is this git revision (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=24, help="A/B mode: rounds counted (plus one warm-up)")
    parser.add_argument("--starts", type=int, default=7, help="plain mode: starts through eg and directly")
    parser.add_argument("--executes", type=int, default=300, help="round trips (plain mode: in all; A/B: per round and unit)")
    parser.add_argument("--mib", type=int, default=32, help="stdout throughput: MiB printed (plain: per cell; A/B: per round and unit)")
    parser.add_argument("--lines", type=int, default=2000, help="A/B small messages: lines printed per round and unit")
    parser.add_argument("--slices", type=int, default=8, help="A/B: each measure of a round in this many turns")
    parser.add_argument("--throughput-runs", type=int, default=5, help="plain mode")
    parser.add_argument("--tmp", default=f"/tmp/eg-bench-{uuid.uuid4().hex[:6]}")
    parser.add_argument("--json", action="store_true", help="plain mode: print the raw figures as JSON too")
    arguments = parser.parse_args()
    if arguments.this and not arguments.against:
        parser.error("--this needs --against")
    if arguments.against:
        raw_figures, summary_figures, tested = asyncio.run(ab(arguments))
        ab_report(summary_figures, tested, len(raw_figures["rounds"]))
        out = REPO / "bench" / "results" / f"core-ab-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(raw_figures, indent=1))
        print(f"raw figures: {out}")
    else:
        figures = asyncio.run(plain(arguments))
        report(figures)
        if arguments.json:
            print(json.dumps(figures, indent=1))
