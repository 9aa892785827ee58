"""Resource quotas: what a user's (or a group's) running and pending kernels asked of their
backends, summed, against the operator's limits.

Each launch's request (:meth:`eg_core.GatewayAPI.requested_resources`: CPUs, memory, GPUs) is
checked and counted in ``eg_before_launch``, with no await between the two, so concurrent starts
cannot overshoot; a failed launch or a shutdown gives it back. A warm-pool kernel counts once a
request claims it (the claim is checked like a launch); a restart keeps its count; kernels
adopted at startup count again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from traitlets import Dict, validate
from traitlets.config import SingletonConfigurable

from eg_core import LaunchRefused
from eg_core.config import EnvDefaults, cpus, memory_bytes

KINDS = ("cpus", "memory", "gpus")


def _amounts(values: Any, where: str) -> dict[str, float]:
    """A quota entry (``{"cpus": 8, "memory": "32Gi", "gpus": 1}``) as numbers; ValueError says
    what is wrong, naming ``where``."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: must be an object like {{\"cpus\": 8, \"memory\": \"32Gi\", \"gpus\": 1}}")
    unknown = set(values) - set(KINDS)
    if unknown:
        raise ValueError(f"{where}: unknown resource {sorted(unknown)[0]!r}; known: {', '.join(KINDS)}")
    try:
        parsed = {k: (cpus(v) if k == "cpus" else float(memory_bytes(v)) if k == "memory" else float(v)) for k, v in values.items()}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    if any(v < 0 for v in parsed.values()):
        raise ValueError(f"{where}: amounts are 0 or more")
    return parsed


class ResourceQuotas(EnvDefaults, SingletonConfigurable):
    """How much CPU, memory and GPU the running and pending kernels of one user, or of all the
    members of one group, may ask for together. A start that would pass a limit is refused
    (403) saying what is in use and what was asked."""

    per_user = Dict(
        config=True, help="What each user's kernels may ask for together, e.g. {\"cpus\": 8, \"memory\": \"32Gi\", \"gpus\": 1}.",
    ).tag(env=("EG_QUOTA_PER_USER",), example='{"cpus": 8, "memory": "32Gi", "gpus": 1}')
    per_group = Dict(
        config=True,
        help="What the kernels of all members of a group may ask for together, by group (as the identity provider "
        "reports groups), e.g. {\"gpu-team\": {\"gpus\": 4}, \"students\": {\"cpus\": 16}}.",
    ).tag(env=("EG_QUOTA_PER_GROUP",), example='{"gpu-team": {"gpus": 4}}')

    @validate("per_user")
    def _valid_user_quota(self, proposal: dict) -> dict:
        _amounts(proposal["value"], "ResourceQuotas.per_user")
        return proposal["value"]

    @validate("per_group")
    def _valid_group_quotas(self, proposal: dict) -> dict:
        for group, values in proposal["value"].items():
            _amounts(values, f"ResourceQuotas.per_group[{group!r}]")
        return proposal["value"]

    @property
    def active(self) -> bool:
        return bool(self.per_user or self.per_group)


@dataclass(frozen=True)
class Holding:
    """What one kernel counts against its user's and groups' quotas."""

    user: str
    groups: frozenset[str]
    resources: dict[str, float]


class Ledger:
    """Every counted kernel (running, pending, adopted) by kernel id."""

    def __init__(self) -> None:
        self.gateway: Any = None
        self.holdings: dict[str, Holding] = {}

    def reserve(self, kernel: Any) -> None:
        """Check ``kernel``'s request against the quotas and count it; raises LaunchRefused."""
        quotas = ResourceQuotas.instance()
        asked = self.gateway.requested_resources(kernel)
        user, groups = kernel.user, frozenset(kernel.groups)
        if quotas.per_user:
            mine = [h for h in self.holdings.values() if h.user == user]
            _check(f"user '{user}'", "per user", _amounts(quotas.per_user, "ResourceQuotas.per_user"), mine, asked)
        for group in sorted(groups & set(quotas.per_group)):
            theirs = [h for h in self.holdings.values() if group in h.groups]
            _check(f"group '{group}'", f"for group '{group}'", _amounts(quotas.per_group[group], group), theirs, asked)
        self.holdings[kernel.kernel_id] = Holding(user, groups, asked)

    def adopt(self, kernel: Any) -> None:
        """Count a kernel an earlier gateway process launched (never refused: it runs)."""
        self.holdings[kernel.kernel_id] = Holding(kernel.user, frozenset(kernel.groups), self.gateway.requested_resources(kernel))

    def release(self, kernel_id: str | None) -> None:
        self.holdings.pop(kernel_id, None)

    def move(self, old_id: str | None, new_id: str) -> None:
        """A claim: the request's count becomes the claimed kernel's."""
        holding = self.holdings.pop(old_id, None)
        if holding is not None:
            self.holdings[new_id] = holding


def _check(who: str, which: str, limits: dict[str, float], held: list[Holding], asked: dict[str, float]) -> None:
    for kind, limit in limits.items():
        using = sum(h.resources.get(kind, 0.0) for h in held)
        if asked.get(kind, 0.0) > 0 and using + asked[kind] > limit:
            raise LaunchRefused(
                f"Resource quota: {who} holds {_show(kind, using)} in running and pending kernels and this kernel asks "
                f"for {_show(kind, asked[kind])}; the limit {which} is {_show(kind, limit)}"
            )


def _show(kind: str, amount: float) -> str:
    if amount == float("inf"):
        return f"all the {'GPU' if kind == 'gpus' else kind}s of a host"
    if kind == "memory":
        return f"{amount / 1024**3:g} GiB of memory"
    return f"{amount:g} {'CPU' if kind == 'cpus' else 'GPU'}{'' if amount == 1 else 's'}"
