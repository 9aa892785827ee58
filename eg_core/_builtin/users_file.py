"""Identity provider: per-user tokens from ``Gateway.users_file``.

The file is a JSON object of user names to their token, or to ``{"token": ..., "groups": [...]}``
when the user's groups matter (``Gateway.admin_groups``, group authorization, limits per
group)::

    {"alice": "<alice's token>", "bob": {"token": "<bob's token>", "groups": ["staff"]}}

Read at start and on every config reload; a token removed from the file stops working then.
"""

from __future__ import annotations

import hmac
import json

from eg_core import hookimpl
from eg_core.config import ConfigError
from eg_core.identity import Identity


class _Users:
    """Each user's token and identity, as the file last read gave them."""

    entries: list[tuple[bytes, Identity]] = []


def load(path: str) -> int:
    """Read the users file at ``path`` ("" for none) and use it from now on; returns how many
    users it names. Raises :class:`ConfigError` saying what to fix."""
    if not path:
        _Users.entries = []
        return 0
    try:
        with open(path) as f:
            users = json.load(f)
    except OSError as exc:
        raise ConfigError(f"Gateway.users_file {path}: {exc.strerror}: fix the path") from None
    except ValueError as exc:
        raise ConfigError(f"Gateway.users_file {path}: not valid JSON ({exc}): fix the file") from None
    if not isinstance(users, dict):
        raise ConfigError(f"Gateway.users_file {path}: must be a JSON object of user names to non-empty tokens")
    _Users.entries = [(token.encode(), Identity(name, groups)) for name, (token, groups) in
                      ((name, _entry(path, name, value)) for name, value in users.items())]
    return len(_Users.entries)


def _entry(path: str, name: str, value: object) -> tuple[str, frozenset[str]]:
    """One user's token and groups, from a token string or ``{"token", "groups"}``."""
    token, groups = (value, []) if isinstance(value, str) else (
        (value.get("token"), value.get("groups", [])) if isinstance(value, dict) else (None, None))
    if not name or not isinstance(token, str) or not token:
        raise ConfigError(f"Gateway.users_file {path}: user {name!r} needs a non-empty token "
                          "(\"<token>\" or {\"token\": \"<token>\", \"groups\": [...]})")
    if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
        raise ConfigError(f"Gateway.users_file {path}: user {name!r}: groups must be a list of group names")
    return token, frozenset(groups)


@hookimpl(tryfirst=True)  # a table in memory: asked before providers over the network
def eg_identify(token):
    """The user whose token this is; compares against every token in constant time."""
    found = None
    supplied = token.encode()
    for user_token, identity in _Users.entries:
        if hmac.compare_digest(supplied, user_token):
            found = identity
    return found
