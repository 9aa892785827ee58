"""The startup banner: where the gateway serves, which kernelspecs and plugins it has, and the
``jupyter lab`` command that connects to it, ready to paste.

The token appears in the command only when the gateway generated it (the operator has no other
way to learn it); a configured token is referred to by where it comes from
(``"$EG_AUTH_TOKEN"``, or ``"$(head -n1 <auth_token_file>)"``), so the banner does not copy a
secret into logs.
"""

from __future__ import annotations

import os
import shlex
import socket
from typing import Any

from .. import __version__
from .._runtime.plugins import describe

WILDCARDS = ("", "0.0.0.0", "::")


def client_url(gateway: Any, port: int) -> str:
    """The URL clients use: the listen address, or this host's name for a wildcard address."""
    host = socket.gethostname() if gateway.ip in WILDCARDS else gateway.ip
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if gateway.certfile else "http"
    return f"{scheme}://{host}:{port}{gateway.base_url}".rstrip("/")


def token_argument(gateway: Any, generated: bool) -> str:
    """The ``--GatewayClient.auth_token=...`` part of the command ('' without auth)."""
    if not gateway.auth_enabled:
        return ""
    if generated:
        value = shlex.quote(gateway.auth_token)
    elif not gateway.auth_token:
        value = "<a user's token from Gateway.users_file>"
    elif gateway.auth_token_file:
        value = f'"$(head -n1 {shlex.quote(gateway.auth_token_file)})"'
    elif "auth_token" not in (gateway.config.get("Gateway") or {}):
        env = next((name for name in ("EG_AUTH_TOKEN", "KG_AUTH_TOKEN") if os.environ.get(name)), "EG_AUTH_TOKEN")
        value = f'"${env}"'
    else:
        value = "<Gateway.auth_token from your config>"
    return f" --GatewayClient.auth_token={value}"


def banner_lines(gateway: Any, port: int, token_generated: bool) -> list[str]:
    """The banner's lines (printed once the gateway listens)."""
    url = client_url(gateway, port)
    packages = {row["name"]: row["package"] for row in describe(gateway.pm)}
    by_rm: dict[str, list[str]] = {}
    for name, entry in sorted(gateway.catalog.available().items()):
        by_rm.setdefault(entry.resource_manager, []).append(name)
    lines = [f"eg {__version__} is serving on {url}"]
    if by_rm:
        lines.append("Kernelspecs, by the plugin that runs them:")
        for rm, names in sorted(by_rm.items()):
            lines.append(f"    {rm} ({packages.get(rm, '?')}): {', '.join(names)}")
    else:
        lines.append("No kernelspecs are available: add some to Gateway.kernel_spec_dirs, or install the plugin they need")
    lines.append("Connect JupyterLab with:")
    lines.append(f"    jupyter lab --gateway-url={url}{token_argument(gateway, token_generated)}")
    return lines
