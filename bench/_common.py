"""What the start-latency benchmarks share: one start timed through the API, and interleaved
rounds of starts of several kernelspecs (so machine noise hits each alike)."""

from __future__ import annotations

import contextlib
import re
import statistics
import time

from eg_core.testing import KernelSocket


async def start_to_kernel_info(gw, name: str, v1: bool = False, http=None) -> tuple[float, str]:
    """Seconds from POST /api/kernels to a kernel_info_reply over the kernel's websocket; with
    ``http``, through that open client (as Jupyter Server's is), else a new one (its TLS setup
    is timed too)."""
    t0 = time.perf_counter()
    async with contextlib.nullcontext(http) if http is not None else gw.client() as client:
        r = await client.post("/api/kernels", json={"name": name})
        if r.status_code != 201:
            raise RuntimeError(f"{name}: {r.status_code} {r.text}")
        kid = r.json()["id"]
    ks = await KernelSocket.connect(gw, kid, v1=v1)
    msg_id = await ks.request("kernel_info_request", {})
    while (await ks.recv())["parent_header"].get("msg_id") != msg_id:
        pass
    elapsed = time.perf_counter() - t0
    await ks.close()
    return elapsed, kid


async def shutdown(gw, kid: str) -> None:
    async with gw.client() as http:
        await http.delete(f"/api/kernels/{kid}")


async def interleaved_starts(gw, names: list[str], rounds: int) -> dict[str, list[float]]:
    """Start and stop each kernelspec once per round, alternating the order; round 0 warms up
    (imports, page cache, connections) and is not counted."""
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(rounds + 1):
        order = names if round_no % 2 else list(reversed(names))
        for name in order:
            elapsed, kid = await start_to_kernel_info(gw, name)
            await shutdown(gw, kid)
            if round_no:
                times[name].append(elapsed)
    return times


def launch_phases(log: str, kernel_name: str) -> dict[str, float]:
    """Median launch phase durations of ``kernel_name`` kernels, from the gateway log."""
    found: dict[str, list[float]] = {}
    for line in log.splitlines():
        if f"launched {kernel_name} on" not in line:
            continue
        for phase, seconds in re.findall(r"(\w+) ([0-9.]+)s", line.split("(", 1)[-1]):
            found.setdefault(phase, []).append(float(seconds))
    return {k: statistics.median(v) for k, v in found.items()}
