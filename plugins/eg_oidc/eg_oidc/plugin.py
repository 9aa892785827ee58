"""The ``oidc`` plugin: OIDC / JWT bearer tokens as eg's per-user credentials, once
``OIDCIdentity.issuer`` is set (without it, and for tokens that are not JWTs, it declines)."""

from __future__ import annotations

from eg_core import hookimpl

from ._settings import OIDCIdentity


class _Issuer:
    """The signing keys read so far (a :class:`eg_oidc._jwks.KeySet`, made on first use)."""

    keys = None


@hookimpl
def eg_configurables():
    return [OIDCIdentity]


@hookimpl
def eg_identify(token):
    settings = OIDCIdentity.instance()
    from . import _tokens

    if not settings.issuer or not _tokens.is_jwt(token):
        return None
    if _Issuer.keys is None:
        from ._jwks import KeySet

        _Issuer.keys = KeySet()
    return _tokens.identify(settings, _Issuer.keys, token)


@hookimpl
async def eg_doctor(kernels):
    settings = OIDCIdentity.instance()
    if not settings.issuer:
        return None
    from ._jwks import check

    return [await check(settings)]
