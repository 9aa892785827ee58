"""Asking the Hub who a token belongs to (``GET <hub>/user``) and, with eg's own token, their
groups (``GET <hub>/users/<name>``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from eg_core.identity import Identity, IdentityUnavailable, get_json

from ._settings import JupyterHubIdentity

if TYPE_CHECKING:
    from eg_core.doctor import Check


async def identify(settings: JupyterHubIdentity, token: str) -> Identity | None:
    """The Hub user ``token`` belongs to, with their groups; None when the Hub does not know
    the token (or it is a Hub service's, not a user's)."""
    base = settings.hub_api_url.rstrip("/")
    model = await _get(settings, f"{base}/user", token)
    if model is None or model.get("kind", "user") != "user" or not isinstance(model.get("name"), str):
        return None
    groups = model.get("groups")
    if groups is None and settings.api_token:
        groups = ((await _get(settings, f"{base}/users/{quote(model['name'], safe='')}", settings.api_token)) or {}).get("groups")
    return Identity(model["name"], frozenset(g for g in groups or () if isinstance(g, str)))


async def _get(settings: JupyterHubIdentity, url: str, token: str) -> dict[str, Any] | None:
    return await get_json(
        url, f"JupyterHub at {settings.hub_api_url} could not say who the token belongs to",
        headers={"Authorization": f"token {token}"} if token else {}, timeout=settings.request_timeout,
    )


async def check(settings: JupyterHubIdentity) -> Check:
    """``eg-gateway doctor``: the Hub's API answers at ``hub_api_url`` (its version, no token
    needed), and eg's own token, when set, is one the Hub knows."""
    from eg_core.doctor import Check

    what = f"JupyterHub API at {settings.hub_api_url}"
    try:
        root = await _get(settings, settings.hub_api_url.rstrip("/") + "/", "")
    except IdentityUnavailable as exc:
        return Check(what, False, exc.message, "start the Hub, or fix JupyterHubIdentity.hub_api_url (EG_JUPYTERHUB_API_URL)")
    if root is None or "version" not in root:
        return Check(what, False, "no JupyterHub API answers there", "set JupyterHubIdentity.hub_api_url to the Hub's .../hub/api URL")
    if settings.api_token and await _get(settings, settings.hub_api_url.rstrip("/") + "/user", settings.api_token) is None:
        return Check(what, False, f"JupyterHub {root['version']} does not know JupyterHubIdentity.api_token",
                     "give eg a Hub service token (c.JupyterHub.services) with the scope read:users:groups")
    return Check(what, True, f"JupyterHub {root['version']}")
