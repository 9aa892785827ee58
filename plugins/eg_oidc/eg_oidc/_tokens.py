"""Verifying a bearer token: a JWT signed by one of the issuer's keys with an accepted
algorithm, from the issuer, for eg's audience, within its validity; its claims name the user and
their groups."""

from __future__ import annotations

from eg_core.identity import Identity, IdentityRefused

from ._jwks import KeySet
from ._settings import OIDCIdentity


def is_jwt(token: str) -> bool:
    """Whether ``token`` has a JWT's shape (three dot-separated parts): others are left to
    other identity providers."""
    return token.count(".") == 2 and token.startswith("eyJ")


async def identify(settings: OIDCIdentity, keys: KeySet, token: str) -> Identity:
    """The user a valid token names; raises :class:`IdentityRefused` saying what is wrong."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise IdentityRefused(f"the bearer token is not a valid JWT ({exc})") from None
    algorithm = header.get("alg")
    if algorithm not in settings.algorithms:
        raise IdentityRefused(f"the bearer token's algorithm {algorithm!r} is not accepted (accepted: {', '.join(settings.algorithms)})")
    key = await keys.key(settings, header.get("kid"))
    if key is None:
        raise IdentityRefused("the bearer token is signed by a key the issuer does not publish")
    try:
        claims = jwt.decode(
            token, key, algorithms=[algorithm], audience=settings.audience or None, issuer=settings.issuer,
            leeway=settings.leeway, options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise IdentityRefused("the bearer token has expired: get a new one from the identity provider") from None
    except jwt.InvalidAudienceError:
        raise IdentityRefused(f"the bearer token is not for this gateway (its audience is not {settings.audience!r})") from None
    except jwt.InvalidIssuerError:
        raise IdentityRefused(f"the bearer token is not from the issuer {settings.issuer}") from None
    except jwt.InvalidSignatureError:
        raise IdentityRefused("the bearer token's signature does not verify with the issuer's key") from None
    except jwt.PyJWTError as exc:
        raise IdentityRefused(f"the bearer token is not valid ({exc})") from None
    name = claims.get(settings.username_claim)
    if not isinstance(name, str) or not name:
        raise IdentityRefused(f"the bearer token has no {settings.username_claim!r} claim naming the user (OIDCIdentity.username_claim)")
    groups = claims.get(settings.groups_claim) or []
    if isinstance(groups, str):
        groups = [groups]
    return Identity(name, frozenset(g for g in groups if isinstance(g, str)), expires=float(claims["exp"]))
