"""The environment a kernel gets, and validation of the ``env`` a client sends.

Precedence, lowest first: variables inherited from the gateway's own environment (only the names
in ``inherited_envs``), the kernelspec's ``env`` (``${VAR}`` filled from the values below it and
the request), the request's allowed values (``KERNEL_*`` and ``client_envs``), and last the
values the core sets (``KERNEL_ID``, ``KERNEL_GATEWAY``, ``KERNEL_USERNAME``, ``KERNEL_LANGUAGE``).
"""

from __future__ import annotations

import getpass
import re
from string import Template
from typing import Any, Iterable

from .errors import BadRequest, LaunchRefused

MAX_VALUE_LENGTH = 4096
MAX_ENTRIES = 512
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,255}\Z")
# Enterprise Gateway rejects these in values: shell expansion, command substitution, line breaks.
_FORBIDDEN = {"$": "'$'", "`": "a backtick", "\n": "a newline", "\r": "a carriage return", "\0": "a NUL byte"}
# Never passed to a kernel, whatever the allow-lists say.
SECRET_NAMES = {"EG_AUTH_TOKEN", "KG_AUTH_TOKEN", "JUPYTER_TOKEN", "EG_REMOTE_PWD", "EG_LAUNCH_KEY"}


def validate_request_env(env: Any) -> dict[str, str]:
    """Check a request's ``env``: a JSON object of at most 512 names to strings, names like
    ``KERNEL_FOO``, values at most 4096 characters without shell metacharacters.

    Raises :class:`BadRequest` saying which entry is wrong (values are never echoed).
    """
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise BadRequest(f"'env' must be a JSON object of names to strings, not {_json_type(env)}")
    if len(env) > MAX_ENTRIES:
        raise BadRequest(f"'env' has {len(env)} entries; at most {MAX_ENTRIES} are allowed")
    for name, value in env.items():
        if not _NAME.match(name):
            raise BadRequest(
                f"env name {name[:80]!r} is not a valid variable name (letters, digits, '_'; not starting with a digit)"
            )
        if not isinstance(value, str):
            raise BadRequest(f"env value of {name} must be a string, not {_json_type(value)}")
        if len(value) > MAX_VALUE_LENGTH:
            raise BadRequest(f"env value of {name} is longer than {MAX_VALUE_LENGTH} characters")
        for char, what in _FORBIDDEN.items():
            if char in value:
                raise BadRequest(f"env value of {name} contains {what}, which is not allowed")
    return dict(env)


def allowed_request_env(env: dict[str, str], client_envs: Iterable[str]) -> dict[str, str]:
    """The request values that may reach the kernel: ``KERNEL_*`` and names in ``client_envs``
    (``*`` allows every name); gateway secrets never."""
    allowed = set(client_envs)
    return {
        k: v
        for k, v in env.items()
        if k not in SECRET_NAMES and (k.startswith("KERNEL_") or "*" in allowed or k in allowed)
    }


def substitute(template_env: dict[str, str] | None, values: dict[str, str]) -> dict[str, str]:
    """Fill ``${VAR}`` references in a kernelspec's env from ``values`` (unknown ones stay)."""
    return {k: Template(str(v)).safe_substitute(values) for k, v in (template_env or {}).items()}


def kernel_env(
    *,
    request_env: dict[str, str],
    spec: dict[str, Any],
    gateway_env: dict[str, str],
    inherited_envs: Iterable[str],
    client_envs: Iterable[str],
    kernel_id: str,
    user: str,
) -> dict[str, str]:
    """Build the kernel's environment in the documented precedence."""
    env = {k: gateway_env[k] for k in inherited_envs if k in gateway_env and k not in SECRET_NAMES}
    requested = allowed_request_env(request_env, client_envs)
    env.update(substitute(spec.get("env"), {**gateway_env, **env, **requested}))
    env.update(requested)
    env["KERNEL_ID"] = kernel_id
    env["KERNEL_GATEWAY"] = "1"
    env["KERNEL_USERNAME"] = user
    env.setdefault("KERNEL_LANGUAGE", str(spec.get("language", "")).lower())
    for name in SECRET_NAMES:
        env.pop(name, None)
    return env


def request_user(request_env: dict[str, str], principal: str | None = None, bind: bool = False) -> str:
    """The user a kernel runs for: the authenticated ``principal`` when the gateway binds names
    to per-user tokens (a different ``KERNEL_USERNAME`` is refused), else ``KERNEL_USERNAME``
    from the request, else the gateway's own user."""
    claimed = request_env.get("KERNEL_USERNAME")
    if principal and bind:
        if claimed and claimed != principal:
            raise LaunchRefused(f"user {principal!r} may not start kernels as {claimed!r} (KERNEL_USERNAME)")
        return principal
    return claimed or principal or getpass.getuser()


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
