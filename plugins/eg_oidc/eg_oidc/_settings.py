"""The issuer whose tokens eg accepts, and the claims that name the user and their groups."""

from __future__ import annotations

from traitlets import Float, List, Unicode, validate
from traitlets.config import SingletonConfigurable

from eg_core.config import EnvDefaults

ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class OIDCIdentity(EnvDefaults, SingletonConfigurable):
    """OIDC / JWT bearer tokens as per-user credentials: signed by a key of the issuer's JWKS,
    for eg's audience, not expired. Off while issuer is empty."""

    issuer = Unicode("", config=True, help="The issuer (the tokens' iss), e.g. https://login.example.org/realms/lab.").tag(
        env=("EG_OIDC_ISSUER",), example="https://login.example.org/realms/lab")
    audience = Unicode("", config=True, help="The audience the tokens must name (their aud): eg's client id at the issuer.").tag(
        env=("EG_OIDC_AUDIENCE",))
    jwks_url = Unicode(
        "", config=True, help="The issuer's JWKS URL; empty: the jwks_uri of <issuer>/.well-known/openid-configuration.",
    ).tag(env=("EG_OIDC_JWKS_URL",))
    username_claim = Unicode("preferred_username", config=True, help="The claim that names the user.").tag(
        env=("EG_OIDC_USERNAME_CLAIM",))
    groups_claim = Unicode("groups", config=True, help="The claim that lists the user's groups (absent: no groups).").tag(
        env=("EG_OIDC_GROUPS_CLAIM",))
    algorithms = List(Unicode(), list(ASYMMETRIC), config=True, help="Signature algorithms accepted (asymmetric only).").tag(
        env=("EG_OIDC_ALGORITHMS",), example="RS256,ES256")
    leeway = Float(30.0, config=True, help="Seconds of clock difference allowed on exp, nbf and iat.").tag(env=("EG_OIDC_LEEWAY",))
    jwks_refresh_seconds = Float(
        30.0, config=True, help="A token signed by a key the JWKS did not have makes eg fetch the JWKS again, at most this often.",
    ).tag(env=("EG_OIDC_JWKS_REFRESH_SECONDS",))
    request_timeout = Float(5.0, config=True, help="Seconds a request to the issuer may take (503 beyond).").tag(
        env=("EG_OIDC_TIMEOUT",))

    @validate("algorithms")
    def _asymmetric_only(self, proposal: dict) -> list[str]:
        wrong = [a for a in proposal["value"] if a not in ASYMMETRIC]
        if wrong:
            raise ValueError(f"OIDCIdentity.algorithms: {', '.join(wrong)} not accepted; use asymmetric ones: {', '.join(ASYMMETRIC)}")
        return proposal["value"]
