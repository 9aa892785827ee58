"""The ``limits`` policy: ``max_kernels`` and ``max_kernels_per_user``, counted atomically.

A launch reserves its slot in ``eg_before_launch`` (no await between the count and the
reservation, so concurrent requests cannot overshoot); a failed launch or a shutdown releases it.
Kernels the gateway adopted count too.
"""

from __future__ import annotations

from traitlets.config import SingletonConfigurable
from traitlets import Int

from .. import LaunchRefused, hookimpl
from ..config import EnvDefaults


class KernelLimits(EnvDefaults, SingletonConfigurable):
    """How many kernels may run (pending launches included)."""

    max_kernels = Int(0, config=True, help="Kernels the gateway may hold at once (0: no limit).").tag(env=("EG_MAX_KERNELS", "KG_MAX_KERNELS"))
    max_kernels_per_user = Int(-1, config=True, help="Kernels one user may hold at once (-1: no limit).").tag(
        env=("EG_MAX_KERNELS_PER_USER",)
    )


class _Slots:
    """Reserved launches by kernel id, and the gateway's registry of running kernels."""

    registry = None
    reserved: dict[str, str] = {}


def _holders() -> dict[str, str]:
    running = {kid: k.kernel.user for kid, k in (_Slots.registry.kernels.items() if _Slots.registry else ())}
    return {**running, **_Slots.reserved}


def reserve(kernel_id: str, user: str) -> None:
    limits = KernelLimits.instance()
    holders = _holders()
    if limits.max_kernels > 0 and len(holders) >= limits.max_kernels:
        raise LaunchRefused(
            f"A max kernels limit has been set to {limits.max_kernels} and there are currently "
            f"{len(holders)} active and pending kernels."
        )
    mine = sum(1 for owner in holders.values() if owner == user)
    if limits.max_kernels_per_user >= 0 and mine >= limits.max_kernels_per_user:
        raise LaunchRefused(
            f"A max kernels per user limit has been set to {limits.max_kernels_per_user} and user "
            f"'{user}' currently has {mine} active and pending kernels."
        )
    _Slots.reserved[kernel_id] = user


@hookimpl
def eg_configurables():
    return [KernelLimits]


@hookimpl
def eg_startup(gateway):
    _Slots.registry = gateway.kernels
    _Slots.reserved = {}


@hookimpl
def eg_before_launch(kernel):
    if _Slots.registry is not None and not kernel.restarting:  # limits are the gateway's
        reserve(kernel.kernel_id, kernel.user)


@hookimpl
def eg_kernel_event(kernel, event):
    if event in ("launch_failed", "shut_down", "launched"):
        _Slots.reserved.pop(kernel.kernel_id, None)
