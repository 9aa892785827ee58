"""Our kernelspecs in a plain jupyter_client application: the eg-local provisioner runs the
same plugin hooks as the gateway does."""

from __future__ import annotations

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import KernelProvisionerFactory

from eg_core._runtime.catalog import packaged_kernelspecs_dir
from eg_core._runtime.provisioner import HookProvisioner


async def test_jupyter_client_runs_our_kernelspec():
    ksm = KernelSpecManager(kernel_dirs=[packaged_kernelspecs_dir()])
    assert "eg-local" in KernelProvisionerFactory.instance().get_provisioner_entries()
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=ksm)
    await km.start_kernel()
    try:
        assert isinstance(km.provisioner, HookProvisioner)
        assert km.provisioner.kernel.resource_manager == "local"
        assert km.provisioner.kernel.state["pid"] > 0
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=60)
        reply = await kc.execute_interactive("x = 6 * 7", timeout=30)
        assert reply["content"]["status"] == "ok"
        await km.interrupt_kernel()
        await km.restart_kernel()
        await kc.wait_for_ready(timeout=60)
        kc.stop_channels()
    finally:
        await km.shutdown_kernel()
    assert await km.provisioner.poll() is not None
