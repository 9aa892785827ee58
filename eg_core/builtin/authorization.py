"""The ``authorization`` policy: which users may use which kernelspecs (Enterprise Gateway's
``authorized_users`` / ``unauthorized_users``, globally and per kernelspec)."""

from __future__ import annotations

from traitlets.config import SingletonConfigurable
from traitlets import Set, Unicode

from eg_core import LaunchRefused, hookimpl
from eg_core.config import EnvDefaults


class UserAuthorization(EnvDefaults, SingletonConfigurable):
    """Who may start kernels. A kernelspec's ``authorized_users`` replaces the global set; its
    ``unauthorized_users`` adds to the global one (comma strings or lists in its config)."""

    authorized_users = Set(Unicode(), config=True, help="When set, only these users may start kernels.").tag(
        env=("EG_AUTHORIZED_USERS",)
    )
    unauthorized_users = Set(Unicode(), config=True, help="Users who may not start kernels.").tag(
        env=("EG_UNAUTHORIZED_USERS",)
    )


def _names(value) -> set[str]:
    if isinstance(value, str):
        return {v.strip() for v in value.split(",") if v.strip()}
    return {str(v) for v in value or ()}


def refusal(user: str, kernel_name: str, config: dict) -> str | None:
    """Why ``user`` may not use ``kernel_name``, or None when they may."""
    settings = UserAuthorization.instance()
    if user in settings.unauthorized_users | _names(config.get("unauthorized_users")):
        return f"User '{user}' is not authorized to start kernel '{kernel_name}'"
    authorized = _names(config.get("authorized_users")) or settings.authorized_users
    if authorized and user not in authorized:
        return f"User '{user}' is not in the set of users authorized to start kernel '{kernel_name}'"
    return None


@hookimpl
def eg_configurables():
    return [UserAuthorization]


@hookimpl
def eg_user_allowed(user, kernel_name, config):
    return refusal(user, kernel_name, config) is None


@hookimpl
def eg_before_launch(kernel):
    reason = refusal(kernel.user, kernel.kernel_name, kernel.config)
    if reason:
        raise LaunchRefused(reason)
