"""The issuer's signing keys: fetched from its JWKS (found through its discovery document when
no URL is set), kept, and fetched again when a token names a key not seen yet (rotation), at
most every ``jwks_refresh_seconds``."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from eg_core.identity import IdentityUnavailable, get_json

from ._settings import OIDCIdentity

if TYPE_CHECKING:
    from eg_core.doctor import Check


class KeySet:
    """The keys of one issuer by key id; one fetch at a time."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetched = float("-inf")
        self.lock = asyncio.Lock()

    async def key(self, settings: OIDCIdentity, kid: str | None) -> Any:
        """The signing key ``kid`` (the only key when the token names none), fetching the JWKS
        again if it is not known; None when the issuer has no such key."""
        found = self._find(kid)
        if found is None:
            async with self.lock:
                found = self._find(kid)
                if found is None and time.monotonic() - self.fetched >= settings.jwks_refresh_seconds:
                    await self._fetch(settings)
                    found = self._find(kid)
        return found

    def _find(self, kid: str | None) -> Any:
        if kid is None:
            return next(iter(self.keys.values())) if len(self.keys) == 1 else None
        return self.keys.get(kid)

    async def _fetch(self, settings: OIDCIdentity) -> None:
        import jwt

        url = settings.jwks_url or (await _get_json(settings, settings.issuer.rstrip("/") + "/.well-known/openid-configuration")).get("jwks_uri")
        if not isinstance(url, str):
            raise IdentityUnavailable(f"the issuer {settings.issuer} names no jwks_uri: set OIDCIdentity.jwks_url")
        document = await _get_json(settings, url)
        keys = {}
        for entry in document.get("keys", []):
            if isinstance(entry, dict) and entry.get("use", "sig") == "sig":
                try:
                    key = jwt.PyJWK(entry)
                except jwt.PyJWTError:
                    continue  # a key type or algorithm this gateway cannot use
                keys[entry.get("kid") or ""] = key
        self.keys, self.fetched = keys, time.monotonic()


async def _get_json(settings: OIDCIdentity, url: str) -> dict[str, Any]:
    what = f"the OIDC issuer's keys could not be read from {url}"
    body = await get_json(url, what, timeout=settings.request_timeout)
    if body is None:
        raise IdentityUnavailable(f"{what} (not found or not allowed); check OIDCIdentity.issuer and jwks_url")
    return body


async def check(settings: OIDCIdentity) -> Check:
    """``eg-gateway doctor``: the issuer's JWKS can be read and holds signing keys eg can use."""
    from eg_core.doctor import Check

    what = f"OIDC issuer {settings.issuer}"
    keys = KeySet()
    try:
        await keys._fetch(settings)
    except IdentityUnavailable as exc:
        return Check(what, False, exc.message, "fix OIDCIdentity.issuer or jwks_url, or start the identity provider")
    if not keys.keys:
        return Check(what, False, "its JWKS holds no signing key eg can use", "check OIDCIdentity.jwks_url")
    if not settings.audience:
        return Check(what, False, "OIDCIdentity.audience is not set, so every token is refused", "set it to eg's client id at the issuer")
    return Check(what, True, f"{len(keys.keys)} signing key(s)")
