"""End to end: JupyterLab 4 in a real (headless Chromium) browser, kernels in eg.

browser -> JupyterLab (``jupyter lab --gateway-url``) -> eg -> ipykernel. The test opens a
notebook, picks eg's ``python3`` kernel in JupyterLab's dialog, runs ``print(6*7)`` and reads
``42`` in the page; reloads the page and runs a second cell; has JupyterLab reconnect its kernel
websocket (same ``session_id``) and runs a third; and checks that eg and Jupyter Server end up
with one connection for the one browser tab.

Needs playwright (the python package) and a Chromium at ``/usr/bin/chromium`` (or
``$EG_E2E_CHROMIUM``); without them the test fails, it does not skip. On failure the message
names the step, and a screenshot is saved in the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import jupyterlab
import psutil
import pytest

from eg_core.testing import GatewayProcess

sys.path.append(str(Path(__file__).parent))
from e2e_servers import JupyterProcess, failure_context, stop_gateway  # noqa: E402

try:
    from playwright.async_api import async_playwright, expect
except ImportError as exc:  # CI installs playwright; a missing one is a failure, not a skip
    async_playwright = expect = None
    PLAYWRIGHT_MISSING = f"the playwright python package is missing ({exc}): pip install playwright (the browser is the OS's chromium)"
else:
    PLAYWRIGHT_MISSING = ""

pytestmark = pytest.mark.timeout(400)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps calling home, which this machine's closed network punishes.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KERNEL_DISPLAY_NAME = "Python 3 (local)"  # eg's packaged python3 kernelspec
LOAD_TIMEOUT = 90_000  # ms; JupyterLab's first load takes 10-30 s on a slow machine
STEP_TIMEOUT = 60_000  # ms
EMPTY_NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
# No news / update toasts over the notebook, and no requests to jupyter.org.
LAB_SETTINGS = {"@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}
CELLS = ".jp-Notebook .jp-Cell"


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium binary (checked before any server starts)."""
    if PLAYWRIGHT_MISSING:
        pytest.fail(PLAYWRIGHT_MISSING)
    path = os.environ.get("EG_E2E_CHROMIUM") or "/usr/bin/chromium"
    if not os.path.exists(path):
        path = shutil.which("chromium") or shutil.which("chromium-browser") or path
    if not os.path.exists(path):
        pytest.fail(f"Chromium not found at {path}: apt-get install chromium, or set EG_E2E_CHROMIUM (no `playwright install` here)")
    return path


@pytest.fixture(scope="module")
def eg(chromium, tmp_path_factory):
    gw = GatewayProcess(tmp_path_factory.mktemp("eg"), "--log-level=DEBUG")
    yield gw
    leaked = stop_gateway(gw)
    assert not leaked, f"kernel processes outlived the gateway: {leaked}\n{gw.output()[-4000:]}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory, eg):
    tmp = tmp_path_factory.mktemp("lab")
    (tmp / "root").mkdir()
    (tmp / "root" / "test.ipynb").write_text(json.dumps(EMPTY_NOTEBOOK))
    # --expose-app-in-browser: window.jupyterapp, to run JupyterLab commands from the test.
    server = JupyterProcess(tmp, eg, "--expose-app-in-browser", app="jupyterlab", user_settings=LAB_SETTINGS)
    yield server
    server.stop()


class Tab:
    """A browser page and what it did: console lines and kernel websockets (opened and closed)."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        self.kernel_sockets: list[str] = []  # urls, in order of opening
        self.events: list[str] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("websocket", self._on_websocket)

    def _on_websocket(self, ws) -> None:
        if "/channels" not in ws.url:
            return
        self.kernel_sockets.append(ws.url)
        sid = session_id(ws.url)
        self.events.append(f"{time.monotonic():.2f} open {sid}")
        ws.on("close", lambda _: self.events.append(f"{time.monotonic():.2f} close {sid}"))


@pytest.fixture
async def tab(chromium, eg, lab):
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            page.set_default_timeout(STEP_TIMEOUT)
            yield Tab(page)
        finally:
            await browser.close()


def session_id(url: str) -> str:
    return parse_qs(urlparse(url).query).get("session_id", [""])[0]


async def eg_kernels(eg) -> list[dict]:
    async with eg.client() as http:
        r = await http.get("/api/kernels")
        assert r.status_code == 200, r.text
        return r.json()


async def settle(probe, expected, timeout: float = 30):
    """Poll ``probe`` (sync or async) until it returns ``expected``; return the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        seen = probe()
        if asyncio.iscoroutine(seen):
            seen = await seen
        if seen == expected or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.25)


def tcp_connections(pid: int, port: int) -> list:
    """The established TCP connections of process ``pid`` to ``port``."""
    return [
        c
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    ]


async def wait_kernel_idle(page) -> None:
    """The notebook's kernel is eg's python3 and idle (status bar: "Python 3 (local) | Idle")."""
    status = page.locator("#jp-main-statusbar").get_by_text(f"{KERNEL_DISPLAY_NAME} | Idle")
    await expect(status).to_be_visible(timeout=STEP_TIMEOUT)


async def run_in_cell(page, index: int, code: str) -> None:
    """Type ``code`` into cell ``index`` and run it with Shift+Enter."""
    cell = page.locator(CELLS).nth(index)
    editor = cell.locator(".cm-content")
    await editor.click()
    await expect(cell).to_have_class(re.compile(r"\bjp-mod-active\b"))
    await page.keyboard.type(code)
    await expect(editor).to_have_text(code)
    await page.keyboard.press("Shift+Enter")


async def expect_output(page, index: int, text: str) -> None:
    """Cell ``index`` has run (an execution count in its prompt) and shows exactly ``text``."""
    cell = page.locator(CELLS).nth(index)
    await expect(cell.locator(".jp-OutputArea-output")).to_have_text(re.compile(rf"^\s*{re.escape(text)}\s*$"), timeout=STEP_TIMEOUT)
    await expect(cell.locator(".jp-InputArea-prompt")).to_have_text(re.compile(r"\[\d+\]"))


async def test_notebook_in_jupyterlab(eg, lab, tab, tmp_path):
    started = time.monotonic()
    steps: list[str] = []
    try:
        await notebook_flow(eg, lab, tab, steps.append)
    except (Exception, pytest.fail.Exception) as exc:  # also pytest-timeout's failure
        shot = tmp_path / "failure.png"
        try:
            await tab.page.screenshot(path=str(shot), full_page=True)
        except Exception as shot_exc:  # the page may be gone
            shot = f"(no screenshot: {shot_exc})"
        console = "\n".join(tab.console[-40:])
        pytest.fail(
            f"JupyterLab {jupyterlab.__version__}, step {steps[-1] if steps else '?'!r} failed after "
            f"{time.monotonic() - started:.1f} s: {type(exc).__name__}: {exc}\n"
            f"screenshot: {shot}\nkernel websockets of the page: {tab.events}\n"
            f"----- browser console (tail) -----\n{console}\n{failure_context(eg, lab)}"
        )


async def notebook_flow(eg, lab, tab: Tab, step) -> None:
    page = tab.page
    cells = page.locator(CELLS)

    step("1. open the notebook and pick the python3 kernel")
    await page.goto(f"{lab.url}/lab/tree/test.ipynb?token={lab.token}", timeout=LOAD_TIMEOUT)
    # The notebook names no kernel: JupyterLab asks (unless a setting makes it start the default).
    dialog = page.locator(".jp-Dialog")
    idle = page.locator("#jp-main-statusbar").get_by_text(f"{KERNEL_DISPLAY_NAME} | Idle")
    await expect(dialog.or_(idle).first).to_be_visible(timeout=LOAD_TIMEOUT)
    if await dialog.is_visible():
        await expect(dialog.locator(".jp-Dialog-header")).to_have_text("Select Kernel")
        await dialog.locator("select").select_option(label=KERNEL_DISPLAY_NAME)
        await dialog.locator("button.jp-mod-accept").click()
        await expect(dialog).to_have_count(0)
    await wait_kernel_idle(page)
    kernels = await eg_kernels(eg)
    assert [k["name"] for k in kernels] == ["python3"], f"eg should run exactly the notebook's kernel: {kernels}"
    kernel_id = kernels[0]["id"]
    assert tab.kernel_sockets and all(f"/api/kernels/{kernel_id}/channels" in u for u in tab.kernel_sockets), tab.kernel_sockets

    step("2. run print(6*7) in the first cell")
    await expect(cells).to_have_count(1)
    await run_in_cell(page, 0, "print(6*7)")
    await expect_output(page, 0, "42")

    step("3. save the notebook")  # so that the reloaded page shows the same cells
    await page.keyboard.press("Control+s")
    await expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)
    saved = json.loads((lab.root_dir / "test.ipynb").read_text())
    assert saved["cells"][0]["outputs"][0]["text"] in ("42\n", ["42\n"]), saved["cells"][0]
    assert saved["metadata"]["kernelspec"]["name"] == "python3", saved["metadata"]

    step("4. reload the page: JupyterLab reconnects to the same kernel, run a second cell")
    sockets_before = len(tab.kernel_sockets)
    await page.reload(timeout=LOAD_TIMEOUT)
    await expect(cells.first).to_be_visible(timeout=LOAD_TIMEOUT)
    await wait_kernel_idle(page)
    assert len(tab.kernel_sockets) > sockets_before, "the reloaded page opened no kernel websocket"
    assert all(f"/api/kernels/{kernel_id}/channels" in u for u in tab.kernel_sockets), tab.kernel_sockets
    await expect_output(page, 0, "42")
    await expect(cells).to_have_count(2)  # Shift+Enter added an empty cell below the first one
    await run_in_cell(page, 1, "print('again')")
    await expect_output(page, 1, "again")
    assert [k["id"] for k in await eg_kernels(eg)] == [kernel_id]

    step("5. JupyterLab's own websocket reconnect (same session_id), run a third cell")
    current = session_id(tab.kernel_sockets[-1])
    sockets_before = len(tab.kernel_sockets)
    await page.evaluate("window.jupyterapp.commands.execute('notebook:reconnect-to-kernel')")
    assert await settle(lambda: len(tab.kernel_sockets) > sockets_before, True), "no new kernel websocket after the reconnect"
    assert session_id(tab.kernel_sockets[-1]) == current, tab.kernel_sockets
    # No wait for "Idle" first: after a reconnect JupyterLab shows "Unknown" until a status message
    # it tracks arrives (those caused by its kernel_info_request are not), with or without a gateway.
    await expect(cells).to_have_count(3)
    await run_in_cell(page, 2, "print('third')")
    await expect_output(page, 2, "third")
    await wait_kernel_idle(page)

    step("6. one browser tab: one connection on eg, one upstream websocket from Jupyter Server")
    # JupyterLab's first handshake offers the v1 subprotocol, which Jupyter Server's gateway mode
    # refuses, so Chromium drops it and retries; Jupyter Server leaves the upstream websocket of
    # the dropped try open and opens another with the same session_id: eg must close the stale one.
    async with eg.client() as http:

        async def eg_connections():
            return (await http.get(f"/api/kernels/{kernel_id}")).json()["connections"]

        connections = await settle(eg_connections, 1)
    assert connections == 1, f"eg counts {connections} connections for one browser tab"
    upstream = await settle(lambda: len(tcp_connections(lab.proc.pid, eg.port)), 1)
    assert upstream == 1, f"Jupyter Server holds {upstream} connections to eg for one browser tab"
