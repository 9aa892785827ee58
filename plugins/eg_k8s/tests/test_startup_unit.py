"""A direct pod kernel's startup is confirmed by the kernel itself (no cluster: a real ipykernel
on this host and a pod watch fed by the test that never reports the pod Running, as a kubelet
writing many statuses reports it seconds late)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

from eg_core import KernelContext
from eg_core.testing import free_port
from eg_core.watch import Change, SharedWatch, Snapshot
from eg_k8s import _lifecycle

UID = "5f1d7c1e-0000-4000-8000-000000000001"


def pod(ip: str | None, running: bool = False) -> dict:
    state = {"running": {}} if running else {"waiting": {"reason": "ContainerCreating"}}
    return {"metadata": {"uid": UID, "name": "p"}, "spec": {"nodeName": "n"},
            "status": {"phase": "Running" if running else "Pending", **({"podIP": ip} if ip else {}),
                       "containerStatuses": [{"name": "kernel", "state": state}]}}


async def test_the_kernel_answering_confirms_its_start_before_the_pod_is_reported_running(tmp_path):
    conn = {"ip": "0.0.0.0", "transport": "tcp", "signature_scheme": "hmac-sha256", "key": uuid.uuid4().hex,
            **{f"{p}_port": free_port() for p in ("shell", "iopub", "stdin", "hb", "control")}}
    path = tmp_path / "kernel.json"
    path.write_text(json.dumps({**conn, "ip": "127.0.0.1"}))
    changes: asyncio.Queue = asyncio.Queue()

    async def feed():
        yield Snapshot({"k": pod(None)})
        while True:
            yield Change("k", await changes.get())

    watch = SharedWatch("test pods", feed)
    kernel = KernelContext(kernel_id="k", kernel_name="python_kubernetes", resource_manager="k8s", spec={}, config={},
                           env={}, user="alice", connection_info=conn)
    answered = asyncio.ensure_future(_lifecycle._answers(kernel, watch, UID))  # pod network: no fixed host
    proc = subprocess.Popen([sys.executable, "-m", "ipykernel_launcher", "-f", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await watch.synced()
        assert not answered.done()  # no address yet
        await changes.put(pod("127.0.0.1"))  # the pod's IP is known; the API never says Running
        await asyncio.wait_for(answered, 120)
        answered.result()
    finally:
        answered.cancel()
        proc.kill()
        proc.wait()
        await watch.close()
