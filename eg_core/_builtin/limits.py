"""The ``limits`` policy: ``max_kernels`` and ``max_kernels_per_user`` (per group too), counted atomically.

A launch reserves its slot in ``eg_before_launch`` (no await between the count and the
reservation, so concurrent requests cannot overshoot); a failed launch or a shutdown releases it.
Kernels the gateway adopted count too, and warm-pool kernels count in ``max_kernels`` (they run)
but not per user until a request claims one (the claim is checked like a launch).
"""

from __future__ import annotations

from traitlets.config import SingletonConfigurable
from traitlets import Dict, Int

from eg_core import Event, LaunchRefused, hookimpl
from eg_core.config import EnvDefaults


class KernelLimits(EnvDefaults, SingletonConfigurable):
    """How many kernels may run (pending launches included)."""

    max_kernels = Int(0, config=True, help="Kernels the gateway may hold at once (0: no limit).").tag(env=("EG_MAX_KERNELS", "KG_MAX_KERNELS"))
    max_kernels_per_user = Int(-1, config=True, help="Kernels one user may hold at once (-1: no limit).").tag(
        env=("EG_MAX_KERNELS_PER_USER",)
    )
    max_kernels_per_user_by_group = Dict(
        Int(), config=True,
        help="Per group, the kernels each member may hold at once, in place of max_kernels_per_user "
        "(a member of several listed groups gets the largest), e.g. {\"students\": 2, \"staff\": 10}.",
    ).tag(env=("EG_MAX_KERNELS_PER_USER_BY_GROUP",))

    def per_user(self, groups: frozenset[str]) -> int:
        """The kernels a member of ``groups`` may hold (-1: no limit)."""
        by_group = [n for group, n in self.max_kernels_per_user_by_group.items() if group in groups]
        if not by_group:
            return self.max_kernels_per_user
        return -1 if any(n < 0 for n in by_group) else max(by_group)


class _Slots:
    """Reserved launches by kernel id, and the gateway (an :class:`eg_core.GatewayAPI`)."""

    gateway = None
    reserved: dict[str, str] = {}


def _holders() -> dict[str, str | None]:
    """Kernel id -> user of every running, pooled (user None) and reserved kernel."""
    gateway = _Slots.gateway
    running = {k.kernel_id: k.user for k in (gateway.kernels() if gateway else ())}
    pooled = {k.kernel_id: None for k in (gateway.pooled_kernels() if gateway else ())}
    return {**pooled, **running, **_Slots.reserved}


def reserve(kernel_id: str, user: str | None, groups: frozenset[str] = frozenset()) -> None:
    """Count a launch (or a claim) in before it happens; ``user`` None: a warm pool's kernel;
    ``groups``: the user's, for ``max_kernels_per_user_by_group``."""
    limits = KernelLimits.instance()
    holders = _holders()
    if limits.max_kernels > 0 and len(holders) >= limits.max_kernels:
        raise LaunchRefused(
            f"A max kernels limit has been set to {limits.max_kernels} and there are currently "
            f"{len(holders)} active and pending kernels."
        )
    mine = sum(1 for owner in holders.values() if owner == user)
    allowed = limits.per_user(groups)
    if user is not None and allowed >= 0 and mine >= allowed:
        raise LaunchRefused(
            f"A max kernels per user limit has been set to {allowed} and user "
            f"'{user}' currently has {mine} active and pending kernels."
        )
    _Slots.reserved[kernel_id] = user


@hookimpl
def eg_configurables():
    return [KernelLimits]


@hookimpl
def eg_startup(gateway):
    _Slots.gateway = gateway
    _Slots.reserved = {}


@hookimpl
def eg_before_launch(kernel):
    if _Slots.gateway is not None and not kernel.restarting:  # limits are the gateway's
        reserve(kernel.kernel_id, None if kernel.pooled else kernel.user, kernel.groups)


@hookimpl
def eg_kernel_event(kernel, event, details):
    if event in (Event.LAUNCH_FAILED, Event.SHUT_DOWN, Event.LAUNCHED):
        _Slots.reserved.pop(kernel.kernel_id, None)
    elif event == Event.POOL_CLAIMED:  # the claim's reservation; the claimed kernel now counts as running
        _Slots.reserved.pop(details.get("request_id"), None)
