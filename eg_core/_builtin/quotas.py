"""The ``quotas`` policy: CPU, memory and GPU quotas per user and per group (see
:mod:`eg_core._builtin._quotas`). A builtin policy written as a third-party one: thin hook
implementations on the public API. Settings::

    eg-gateway --ResourceQuotas.per_user='{"cpus": 8, "memory": "32Gi", "gpus": 1}' \\
               --ResourceQuotas.per_group='{"gpu-team": {"gpus": 4}}'

Without either, it counts nothing and costs nothing.
"""

from __future__ import annotations

from eg_core import Event, hookimpl

from ._quotas import Ledger, ResourceQuotas

_ledger = Ledger()


@hookimpl
def eg_configurables():
    return [ResourceQuotas]


@hookimpl
def eg_startup(gateway):
    _ledger.gateway = gateway
    _ledger.holdings = {}


@hookimpl
def eg_before_launch(kernel):
    if _ledger.gateway is not None and ResourceQuotas.instance().active and not kernel.pooled and not kernel.restarting:
        _ledger.reserve(kernel)


@hookimpl
def eg_kernel_event(kernel, event, details):
    if event in (Event.LAUNCH_FAILED, Event.SHUT_DOWN):
        _ledger.release(kernel.kernel_id)
    elif event == Event.POOL_CLAIMED:
        _ledger.move(details.get("request_id"), kernel.kernel_id)
    elif event == Event.ADOPTED and ResourceQuotas.instance().active:
        _ledger.adopt(kernel)
