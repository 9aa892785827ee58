"""Benchmark: fair fan-out. Many websocket clients on many steadily printing kernels, one
interactive client, and the gateway's memory after heavy relay.

    python bench/bench_fanout.py [--kernels 50] [--clients 50,100,200] [--seconds 10]

Kernels are ``tests/kernelspecs/tiny``; each printing kernel runs ``stream`` (a line of
``--line-bytes`` every ``--interval-ms``). For each client count, a reader process (so its work
does not slow the measuring one) connects that many websockets spread over the kernels, starts
the printing and counts the bytes it receives. Meanwhile this process times execute round trips
of an interactive client on its own idle kernel. Reported per client count:

- the interactive execute round trip (p50, p90) against its value with nothing printing
  (target: within 2x);
- the gateway's CPU seconds per relayed MB (bytes the clients received; target: flat as
  clients are added) and its CPU share.

First, on the fresh gateway, ``--heavy-runs`` runs of ``--heavy-mb`` MB printed as fast as
possible to one client, and the gateway's RSS against its fresh value (target: within 10 MiB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
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


class _Gw:
    """What KernelSocket.connect needs of a gateway, in the reader process."""

    def __init__(self, ws_url: str, token: str):
        self.ws_url, self.headers = ws_url, {"Authorization": f"token {token}"}


async def reader(args: argparse.Namespace) -> None:
    """The reader process: connect, wait for 'go', start the printing, count bytes until SIGTERM."""
    gw = _Gw(args.ws_url, args.token)
    kernel_ids = args.kernel_ids.split(",")
    sockets = [await KernelSocket.connect(gw, kernel_ids[i % len(kernel_ids)]) for i in range(args.n_clients)]
    received = [0, 0]

    async def drain(ks: KernelSocket) -> None:
        try:
            while True:
                frame = await ks.ws.recv()  # not `+= len(await ...)`: that adds to a value read before the await
                received[0] += len(frame)
                received[1] += 1
        except Exception:
            return

    tasks = [asyncio.ensure_future(drain(ks)) for ks in sockets]
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    for ks in sockets[: len(kernel_ids)]:
        await ks.request("execute_request", {"code": args.code, "silent": False})
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    print(json.dumps({"bytes": received[0], "messages": received[1]}), flush=True)
    for t in tasks:
        t.cancel()
    os._exit(0)


async def round_trips(ks: KernelSocket, n: int, pause: float = 0.05) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        out = await ks.execute("1")
        assert out["reply"]["status"] == "ok"
        times.append(time.perf_counter() - t0)
        await asyncio.sleep(pause)
    return times


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


async def start_kernels(http, n: int) -> list[str]:
    ids: list[str] = []
    while len(ids) < n:
        rs = await asyncio.gather(*(http.post("/api/kernels", json={"name": "tiny"}) for _ in range(min(10, n - len(ids)))))
        for r in rs:
            if r.status_code != 201:
                raise SystemExit(f"kernel start failed: {r.status_code} {r.text}")
            ids.append(r.json()["id"])
    return ids


async def fan_out_step(gw, proc, ids: list[str], clients: int, args, interactive: KernelSocket) -> dict:
    count = int(args.seconds * 1000 / args.interval_ms) + int(3000 / args.interval_ms)
    cmd = [sys.executable, __file__, "--reader", "--ws-url", gw.ws_url, "--token", gw.token, "--kernel-ids", ",".join(ids),
           "--n-clients", str(clients), "--code", f"stream {count} {args.line_bytes} {args.interval_ms}"]
    rd = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        return await _measure_step(rd, proc, clients, count, args, interactive)
    finally:
        if rd.poll() is None:  # the step failed: no reader outlives it
            rd.kill()
            rd.wait()


async def _measure_step(rd, proc, clients: int, count: int, args, interactive: KernelSocket) -> dict:
    assert (await asyncio.get_running_loop().run_in_executor(None, rd.stdout.readline)).strip() == "ready"
    rd.stdin.write("go\n")
    rd.stdin.flush()
    await asyncio.sleep(1.5)  # every kernel printing
    c0, w0 = proc.cpu_times(), time.perf_counter()
    rtts = await round_trips(interactive, args.rtt_samples, pause=max(args.seconds / args.rtt_samples - 0.01, 0.01))
    c1, w1 = proc.cpu_times(), time.perf_counter()
    rd.send_signal(signal.SIGTERM)
    out, _ = await asyncio.get_running_loop().run_in_executor(None, rd.communicate)
    counts = json.loads(out.strip().splitlines()[-1])
    total = counts["bytes"]
    cpu = (c1.user + c1.system) - (c0.user + c0.system)
    # bytes over the measured window ~ total * window / (window + warm-up + tail): use the rate
    printing_seconds = count * args.interval_ms / 1000
    share = min((w1 - w0) / printing_seconds, 1.0)
    relayed_mb = total / MIB * share
    relayed_messages = counts["messages"] * share
    await asyncio.sleep(3)  # let the printing end before the next step
    return {"clients": clients, "rtt": rtts, "cpu_seconds": cpu, "window": w1 - w0, "relayed_mb": relayed_mb,
            "relayed_messages": relayed_messages, "total_mb": total / MIB}


async def heavy_relay(gw, http, proc, args) -> dict:
    [kid] = await start_kernels(http, 1)
    ks = await KernelSocket.connect(gw, kid)
    size = 64 * 1024
    count = int(args.heavy_mb * MIB / size)
    rss = []
    for _ in range(args.heavy_runs):
        out = await ks.execute(f"stream {count} {size} 0", timeout=600)
        assert out["stdout"].count("\n") == count, "lost output"
        await asyncio.sleep(1.5)
        rss.append(proc.memory_info().rss)
    await ks.close()
    await http.delete(f"/api/kernels/{kid}")
    await asyncio.sleep(1.5)
    return {"rss_runs": rss, "rss_after": proc.memory_info().rss}


async def run(args) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="eg-bench-fanout-"))
    gw = GatewayProcess(tmp, "--log-level=WARN", kernel_spec_dirs=[KERNELSPECS])
    proc = psutil.Process(gw.proc.pid)
    try:
        async with gw.client() as http:
            await asyncio.sleep(1.5)
            rss_fresh = proc.memory_info().rss
            heavy = await heavy_relay(gw, http, proc, args)
            [interactive_id] = await start_kernels(http, 1)
            interactive = await KernelSocket.connect(gw, interactive_id)
            ids = await start_kernels(http, args.kernels)
            idle = await round_trips(interactive, args.rtt_samples)
            steps = [await fan_out_step(gw, proc, ids, int(c), args, interactive) for c in args.clients.split(",")]
            await interactive.close()
            await asyncio.gather(*(http.delete(f"/api/kernels/{k}") for k in ids + [interactive_id]))
            await asyncio.sleep(1.5)
            rss_after_fanout = proc.memory_info().rss
    finally:
        gw.stop()
    idle_p50 = statistics.median(idle) * 1000
    print(f"{args.kernels} kernels printing {args.line_bytes} B every {args.interval_ms} ms; interactive execute round trip "
          f"idle p50 {idle_p50:.1f} ms, p90 {pct(idle, 0.9) * 1000:.1f} ms")
    print(f"{'clients':>8}{'rtt p50':>10}{'rtt p90':>10}{'x idle':>8}{'msgs/s out':>11}{'MB relayed':>12}{'CPU %':>8}{'CPU s/MB':>10}{'CPU us/msg':>11}")
    for s in steps:
        p50 = statistics.median(s["rtt"]) * 1000
        print(f"{s['clients']:>8}{p50:10.1f}{pct(s['rtt'], 0.9) * 1000:10.1f}{p50 / idle_p50:8.2f}"
              f"{s['relayed_messages'] / s['window']:11.0f}{s['relayed_mb']:12.1f}"
              f"{100 * s['cpu_seconds'] / s['window']:8.1f}{s['cpu_seconds'] / max(s['relayed_mb'], 1e-9):10.4f}"
              f"{1e6 * s['cpu_seconds'] / max(s['relayed_messages'], 1):11.1f}")
    worst = max(statistics.median(s["rtt"]) * 1000 / idle_p50 for s in steps)
    per_mb = [s["cpu_seconds"] / max(s["relayed_mb"], 1e-9) for s in steps]
    print(f"target interactive rtt <= 2x idle: {'MET' if worst <= 2 else 'MISSED'} (worst x{worst:.2f}); "
          f"CPU per MB from {per_mb[0]:.4f} to {per_mb[-1]:.4f} s/MB (x{per_mb[-1] / per_mb[0]:.2f})")
    runs = ", ".join(f"{r / MIB:.1f}" for r in heavy["rss_runs"])
    grown = (heavy["rss_after"] - rss_fresh) / MIB
    print(f"gateway RSS fresh {rss_fresh / MIB:.1f} MiB, after each {args.heavy_mb} MB run to one client {runs} MiB, "
          f"kernel shut down {heavy['rss_after'] / MIB:.1f} MiB: {'MET' if grown <= 10 else 'MISSED'} (+{grown:.1f} MiB, "
          f"target <= 10); after the fan-out steps (all kernels shut down) {rss_after_fanout / MIB:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernels", type=int, default=50)
    parser.add_argument("--clients", default="50,100,200", help="client counts, one step each")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per step")
    parser.add_argument("--line-bytes", type=int, default=1000)
    parser.add_argument("--interval-ms", type=float, default=100.0)
    parser.add_argument("--rtt-samples", type=int, default=40)
    parser.add_argument("--heavy-mb", type=int, default=50)
    parser.add_argument("--heavy-runs", type=int, default=3)
    parser.add_argument("--reader", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ws-url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--kernel-ids", help=argparse.SUPPRESS)
    parser.add_argument("--n-clients", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(reader(args) if args.reader else run(args))


if __name__ == "__main__":
    main()
