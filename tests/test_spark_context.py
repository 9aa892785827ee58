"""The Spark context eg's launcher gives its kernel (``--spark-context-initialization-mode``).

Real launch_ipykernel.py processes with real ipykernel children and real pyspark in local mode
(a JVM started by pyspark), a real ResponseListener, the gateway's comm-port requests for the
interrupt and the shutdown, and Spark's own monitoring REST API (the driver's UI) for its jobs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import urllib.request
import uuid

import psutil
import pytest
from jupyter_client.asynchronous import AsyncKernelClient

from eg_core._runtime import launcher_comm
from eg_core.kernelspecs.launcher import launch_ipykernel as launcher
from eg_core._runtime.callback_listener import ResponseListener


class SparkKernel:
    """A launcher started with a Spark mode, its kernel's client and output."""

    def __init__(self, proc, info: dict, key: str, output_path, client: AsyncKernelClient):
        self.proc, self.info, self.key, self.output_path, self.client = proc, info, key, output_path, client

    @property
    def output(self) -> str:
        return self.output_path.read_text()

    def jvms(self) -> list[psutil.Process]:
        """The Java processes in the kernel's process group (pyspark's gateway JVM)."""
        found = []
        for proc in psutil.process_iter(["name"]):
            try:
                if proc.info["name"] == "java" and os.getpgid(proc.pid) == self.info["pgid"]:
                    found.append(proc)
            except (ProcessLookupError, psutil.Error):
                pass
        return found

    async def run(self, code: str, on_busy=None) -> tuple[dict, list[str]]:
        """Execute ``code``; returns the execute_reply content and the cell's text outputs."""
        msg_id = self.client.execute(code)
        texts = []
        while True:
            msg = await self.client.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "execute_input" and on_busy is not None:
                await on_busy()
            elif kind == "stream":
                texts.append(content["text"])
            elif kind == "execute_result":
                texts.append(content["data"]["text/plain"])
            elif kind == "status" and content["execution_state"] == "idle":
                break
        return (await self.client.get_shell_msg(timeout=30))["content"], texts

    async def value(self, code: str):
        reply, texts = await self.run(code)
        assert reply["status"] == "ok", (reply, self.output)
        return texts[-1].strip()


@pytest.fixture
async def start_spark_kernel(tmp_path, spark_runtime):
    """Start eg's launcher with ``--spark-context-initialization-mode``; at teardown shut down the
    kernels still running and kill what is left of their process groups."""
    listener = ResponseListener(response_address="127.0.0.1:0", log=logging.getLogger("test.response"))
    await listener.start()
    started: list[SparkKernel] = []

    async def start(mode: str) -> SparkKernel:
        kernel_id = str(uuid.uuid4())
        key = listener.new_launch_key()
        arrived = listener.expect(kernel_id, key)
        output_path = tmp_path / f"{mode}-{kernel_id}.log"
        env = {**os.environ, "EG_LAUNCH_KEY": key}
        with open(output_path, "wb") as output:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, launcher.__file__, "--kernel-id", kernel_id, "--response-address",
                listener.address, "--RemoteProcessProxy.spark-context-initialization-mode", mode,
                env=env, stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output,
            )
        info = await asyncio.wait_for(arrived, 30)
        client = AsyncKernelClient()
        client.load_connection_info(info)
        client.start_channels()
        kernel = SparkKernel(proc, info, key, output_path, client)
        started.append(kernel)
        assert (await client.kernel_info(reply=True, timeout=120))["content"]["status"] == "ok"
        await client.wait_for_ready(timeout=60)
        return kernel

    yield start
    for kernel in started:
        kernel.client.stop_channels()
        if kernel.proc.returncode is None:
            await launcher_comm.shutdown("127.0.0.1", kernel.info["comm_port"], kernel.key)
            try:
                await asyncio.wait_for(kernel.proc.wait(), 30)
            except asyncio.TimeoutError:
                os.killpg(kernel.info["pgid"], signal.SIGKILL)
                await kernel.proc.wait()
    await listener.stop()


def spark_rest(ui: str, path: str) -> list[dict]:
    """GET from the driver's monitoring REST API (``/api/v1``)."""
    with urllib.request.urlopen(f"{ui}/api/v1{path}", timeout=60) as answer:
        return json.load(answer)


async def test_lazy_context_made_on_first_use_cancelled_by_interrupt_stopped_at_shutdown(start_spark_kernel):
    kernel = await start_spark_kernel("lazy")
    assert await kernel.value("type(spark).__name__, type(sc).__name__") == "('LazySpark', 'LazySpark')"
    assert kernel.jvms() == []  # nothing made before the first use
    assert await kernel.value("from IPython.core.formatters import get_real_method; print(get_real_method(spark, '_repr_html_'))") == "None"
    assert kernel.jvms() == []  # IPython's display probes make nothing either

    assert await kernel.value('spark.range(10**6).selectExpr("sum(id)").collect()[0][0]') == str(sum(range(10**6)))
    assert await kernel.value("type(spark).__name__, sc is spark.sparkContext") == "('SparkSession', True)"
    assert len(kernel.jvms()) == 1
    ui = (await kernel.value("sc.uiWebUrl")).strip("'")
    app = spark_rest(ui, "/applications")[0]["id"]

    async def interrupt_when_running():
        while not spark_rest(ui, f"/applications/{app}/jobs?status=running"):
            await asyncio.sleep(0.2)
        assert await launcher_comm.signal("127.0.0.1", kernel.info["comm_port"], signal.SIGINT, kernel.key)

    reply, _ = await kernel.run('spark.range(10**13).selectExpr("max(id)").collect()', on_busy=interrupt_when_running)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", (reply, kernel.output)
    while spark_rest(ui, f"/applications/{app}/jobs?status=running"):  # the cancel reaches the scheduler
        await asyncio.sleep(0.2)
    jobs = spark_rest(ui, f"/applications/{app}/jobs")
    assert jobs[0]["status"] == "FAILED" and jobs[0]["numActiveTasks"] == 0, jobs[0]
    assert all(e["activeTasks"] == 0 for e in spark_rest(ui, f"/applications/{app}/executors"))
    assert await kernel.value("sc.parallelize(range(10)).sum()") == "45"  # the context still serves

    jvms = kernel.jvms()
    assert await launcher_comm.shutdown("127.0.0.1", kernel.info["comm_port"], kernel.key)
    assert await asyncio.wait_for(kernel.proc.wait(), 60) == 0
    assert "eg_spark_context: Spark session stopped" in kernel.output, kernel.output[-4000:]
    _, alive = await asyncio.to_thread(psutil.wait_procs, jvms, 60)
    assert alive == []


async def test_eager_context_exists_when_the_kernel_is_ready(start_spark_kernel):
    kernel = await start_spark_kernel("eager")
    assert len(kernel.jvms()) == 1  # made before the kernel answered kernel_info
    assert await kernel.value("type(spark).__name__, spark.range(7).count()") == "('SparkSession', 7)"


async def test_mode_none_binds_nothing_and_starts_no_jvm(start_spark_kernel):
    kernel = await start_spark_kernel("none")
    assert await kernel.value("'spark' in dir(), 'sc' in dir()") == "(False, False)"
    assert kernel.jvms() == []
