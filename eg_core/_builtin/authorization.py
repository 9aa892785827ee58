"""The ``authorization`` policy: which users may use which kernelspecs (Enterprise Gateway's
``authorized_users`` / ``unauthorized_users``, globally and per kernelspec), and the same by the
groups an identity provider reports (``authorized_groups`` / ``unauthorized_groups``)."""

from __future__ import annotations

from traitlets.config import SingletonConfigurable
from traitlets import Set, Unicode

from eg_core import LaunchRefused, hookimpl
from eg_core.config import EnvDefaults


class UserAuthorization(EnvDefaults, SingletonConfigurable):
    """Who may start kernels. A kernelspec's ``authorized_users`` and ``authorized_groups``
    replace the global pair (either set in the kernelspec replaces both); its
    ``unauthorized_users`` and ``unauthorized_groups`` add to the global ones (comma strings or
    lists in its config). With any authorized user or group, a user must be one of them or in
    one of the groups."""

    authorized_users = Set(Unicode(), config=True, help="When set, only these users may start kernels.").tag(
        env=("EG_AUTHORIZED_USERS",)
    )
    unauthorized_users = Set(Unicode(), config=True, help="Users who may not start kernels.").tag(
        env=("EG_UNAUTHORIZED_USERS",)
    )
    authorized_groups = Set(Unicode(), config=True, help="When set, members of these groups may start kernels (with authorized_users).").tag(
        env=("EG_AUTHORIZED_GROUPS",)
    )
    unauthorized_groups = Set(Unicode(), config=True, help="Members of these groups may not start kernels.").tag(
        env=("EG_UNAUTHORIZED_GROUPS",)
    )


def _names(value) -> set[str]:
    if isinstance(value, str):
        return {v.strip() for v in value.split(",") if v.strip()}
    return {str(v) for v in value or ()}


def refusal(user: str, kernel_name: str, config: dict, groups: frozenset[str] = frozenset()) -> str | None:
    """Why ``user`` (a member of ``groups``) may not use ``kernel_name``, or None when they may."""
    settings = UserAuthorization.instance()
    if user in settings.unauthorized_users | _names(config.get("unauthorized_users")):
        return f"User '{user}' is not authorized to start kernel '{kernel_name}'"
    barred = groups & (settings.unauthorized_groups | _names(config.get("unauthorized_groups")))
    if barred:
        return f"User '{user}' is in group '{sorted(barred)[0]}', which is not authorized to start kernel '{kernel_name}'"
    if config.get("authorized_users") or config.get("authorized_groups"):
        users, allowed_groups = _names(config.get("authorized_users")), _names(config.get("authorized_groups"))
    else:
        users, allowed_groups = settings.authorized_users, settings.authorized_groups
    if (users or allowed_groups) and user not in users and not groups & allowed_groups:
        return f"User '{user}' is not in the set of users authorized to start kernel '{kernel_name}'"
    return None


@hookimpl
def eg_configurables():
    return [UserAuthorization]


@hookimpl
def eg_user_allowed(user, kernel_name, config, groups):
    return refusal(user, kernel_name, config, groups) is None


@hookimpl
def eg_before_launch(kernel):
    reason = refusal(kernel.user, kernel.kernel_name, kernel.config, kernel.groups)
    if reason:
        raise LaunchRefused(reason)
