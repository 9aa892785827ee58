"""The ``pools`` plugin: warm pools of started kernels, per kernelspec.

A builtin policy written exactly as a third-party one: thin hook implementations over
:mod:`eg_core._builtin._pools` (the pools and their refill) and :mod:`eg_core._runtime.pool_binding`
(what fits a request, and binding it). Settings::

    eg-gateway --KernelPools.pools='{"python3": 2}' --KernelPools.max_pooled_kernels=16 \\
               --KernelPools.refill_concurrency=2 --KernelPools.refill_delay=1
    EG_KERNEL_POOLS='{"python3": 2}' EG_MAX_POOLED_KERNELS=16 EG_POOL_REFILL_CONCURRENCY=2 EG_POOL_REFILL_DELAY=1

Waiting kernels are not listed, culled, persisted or counted per user (``max_kernels`` counts
them); they are shut down when the gateway stops, and removed by the next gateway on the same
port when the gateway was killed first.
"""

from __future__ import annotations

from .. import hookimpl
from ._pools import KernelPools, WarmPools


class _State:
    pools: WarmPools | None = None


@hookimpl
def eg_configurables():
    return [KernelPools]


@hookimpl
async def eg_startup(gateway):
    # Warm pools start kernels outside any request: they are part of the core's kernel registry,
    # not a policy on the public API (tests/test_public_api.py exempts them).
    _State.pools = WarmPools(gateway._registry, KernelPools.instance(), gateway.settings.get("port", 0))
    await _State.pools.start()


@hookimpl
async def eg_claim_kernel(kernel):
    if _State.pools is not None:
        return await _State.pools.claim(kernel)
    return None


@hookimpl
def eg_kernel_event(kernel, event, details):
    if _State.pools is None:
        return
    if event in ("died", "shut_down") and details.get("pooled", event == "shut_down"):
        _State.pools.forget(kernel.kernel_id)
    elif event == "pool_claimed":
        _State.pools.claimed()


@hookimpl(tryfirst=True)  # before resource managers close their connections
async def eg_shutdown(gateway):
    if _State.pools is not None and _State.pools.registry is gateway._registry:
        pools, _State.pools = _State.pools, None
        await pools.stop()
