"""The gateway object policies get in ``eg_startup``: kernels with activity and connections,
shutdown with a reason, events, settings without secrets, the kernelspecs of a resource manager. In-process, with a real kernel."""

from __future__ import annotations

import pytest

from eg_core import NotFound
from eg_core._server.app import Gateway
from eg_core.testing import EventRecorder


async def test_gateway_api(tmp_path, monkeypatch, kernel_spec_dirs):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    app = Gateway()
    app.initialize([*(a for d in kernel_spec_dirs for a in ("--Gateway.kernel_spec_dirs", d)), "--Gateway.auth_token=secret-t"])
    recorder = EventRecorder()
    app.pm.register(recorder, name="recorder")
    gateway = app.api
    try:
        managed = await app.kernels.start("tiny")
        [summary] = gateway.kernels()
        assert (summary.kernel_id, summary.kernel_name, summary.resource_manager) == (managed.kernel_id, "tiny", "local")
        assert summary.connections == 0 and summary.last_activity > 0 and not summary.changing
        assert gateway.kernel(managed.kernel_id) == summary and gateway.launching == 0
        assert "auth_token" not in gateway.settings and gateway.settings["default_kernel_name"] == "python3"
        specs = {k.kernel_name: k for k in gateway.kernelspecs("local")}
        assert "tiny" in specs and specs["tiny"].kernel_id == "" and specs["tiny"].spec["argv"], sorted(specs)
        assert {k.resource_manager for k in gateway.kernelspecs("local")} == {"local"}
        assert gateway.kernelspecs("no-such-manager") == [] and len(gateway.kernelspecs()) >= len(specs)
        await gateway.emit(managed.kernel_id, "quota_exceeded", {"limit": 3})
        assert await recorder.wait("quota_exceeded", managed.kernel_id) == {"limit": 3}
        await gateway.shutdown_kernel(managed.kernel_id, reason="over quota")
        assert (await recorder.wait("shut_down", managed.kernel_id))["reason"] == "over quota"
        assert gateway.kernels() == []
        with pytest.raises(NotFound):
            gateway.kernel(managed.kernel_id)
        with pytest.raises(NotFound):
            await gateway.shutdown_kernel(managed.kernel_id, reason="again")
    finally:
        await app.kernels.shutdown_all()
        app.kernels.close()
