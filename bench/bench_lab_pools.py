"""Benchmark: JupyterLab in Chromium opening a notebook and showing its first cell's output,
with eg starting the kernel cold and with a warm pool.

    python bench/bench_lab_pools.py [--rounds 5]

browser -> JupyterLab (``jupyter lab --gateway-url``) -> eg -> ipykernel, as in
tests/test_e2e_jupyterlab.py (playwright, the OS's Chromium). For each mode (a gateway without a
pool, then one with ``EG_KERNEL_POOLS='{"python3": 1}'``) and round: open a new notebook that
names the python3 kernel and holds ``print(6*7)``; time until the status bar says the kernel is
idle, then run the cell and time until ``42`` shows. The kernel is shut down between rounds and,
with a pool, the next round waits until the pool has refilled. One warm-up round per mode is not
counted (JupyterLab's first page load fills caches).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from eg_core.testing import GatewayProcess  # noqa: E402
from e2e_servers import JupyterProcess, stop_gateway  # noqa: E402
from test_e2e_jupyterlab import CELLS, CHROMIUM_ARGS, KERNEL_DISPLAY_NAME, LAB_SETTINGS  # noqa: E402

from playwright.async_api import async_playwright, expect  # noqa: E402

TIMEOUT = 120_000


def notebook() -> dict:
    return {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [], "source": "print(6*7)"}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": KERNEL_DISPLAY_NAME, "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


async def pool_full(gw) -> None:
    async with gw.client() as http:
        while True:
            m = re.search(r'^eg_pool_kernels\{kernelspec="python3"\} (\S+)$', (await http.get("/metrics")).text, re.M)
            if m and float(m.group(1)) >= 1:
                return
            await asyncio.sleep(0.1)


async def one_mode(chromium: str, tmp: Path, pooled: bool, rounds: int) -> dict[str, list[float]]:
    env = {"EG_KERNEL_POOLS": json.dumps({"python3": 1})} if pooled else {}
    gw = GatewayProcess(tmp / ("eg-pool" if pooled else "eg-cold"), "--log-level=WARN", env=env)
    lab_dir = tmp / ("lab-pool" if pooled else "lab-cold")
    (lab_dir / "root").mkdir(parents=True)
    lab = JupyterProcess(lab_dir, gw, "--expose-app-in-browser", app="jupyterlab", user_settings=LAB_SETTINGS)
    times: dict[str, list[float]] = {"idle": [], "output": []}
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            try:
                for round_no in range(rounds + 1):
                    name = f"nb-{round_no}.ipynb"
                    (lab.root_dir / name).write_text(json.dumps(notebook()))
                    if pooled:
                        await pool_full(gw)
                    await asyncio.sleep(1.0)
                    page = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
                    t0 = time.perf_counter()
                    await page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}", timeout=TIMEOUT)  # reset: no earlier tabs
                    idle = page.locator("#jp-main-statusbar").get_by_text(f"{KERNEL_DISPLAY_NAME} | Idle")
                    await expect(idle).to_be_visible(timeout=TIMEOUT)
                    t_idle = time.perf_counter() - t0
                    await page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
                    out = page.locator(f"{CELLS}:visible").first.locator(".jp-OutputArea-output")
                    await expect(out).to_have_text(re.compile(r"^\s*42\s*$"), timeout=TIMEOUT)
                    t_out = time.perf_counter() - t0
                    await page.context.close()
                    async with gw.client() as http:
                        for k in (await http.get("/api/kernels")).json():
                            await http.delete(f"/api/kernels/{k['id']}")
                    if round_no:
                        times["idle"].append(t_idle)
                        times["output"].append(t_out)
            finally:
                await browser.close()
    finally:
        lab.stop()
        stop_gateway(gw)
    return times


async def run(args) -> None:
    import shutil

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for pooled in (False, True):
            (Path(tmp) / ("eg-pool" if pooled else "eg-cold")).mkdir()
            results["pool" if pooled else "cold"] = await one_mode(chromium, Path(tmp), pooled, args.rounds)
    print(f"JupyterLab in Chromium, new notebook -> (kernel idle, first cell's output), {args.rounds} rounds, median (min-max) s")
    for mode, t in results.items():
        cols = [f"{statistics.median(t[k]):.2f} ({min(t[k]):.2f}-{max(t[k]):.2f})" for k in ("idle", "output")]
        print(f"  {mode:5} kernel idle {cols[0]:>20}   output shown {cols[1]:>20}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
