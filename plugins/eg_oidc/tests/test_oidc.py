"""OIDC / JWT bearer tokens as eg's users: a real gateway verifies tokens the test signs against
a JWKS the test serves over real HTTP (with a discovery document). A valid token's user owns
their kernels and sees no one else's; expired tokens, another audience or issuer, an unknown
key, ``alg: none`` and HS256 made with the public key are each refused with a 401 that says
why; a rotated key is fetched when a token names it; an issuer that cannot be reached gets a
503 while the service token goes on."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from tornado import httpserver, web

from eg_core.testing import free_port, run_doctor

pytestmark = pytest.mark.timeout(240)

AUDIENCE = "eg-test"


class Issuer:
    """An OIDC issuer: a discovery document and a JWKS served on loopback; signs tokens."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/realm"
        self.keys = {"k1": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        self.published = ["k1"]
        issuer = self

        class Discovery(web.RequestHandler):
            def get(self):
                self.write({"issuer": issuer.url, "jwks_uri": f"{issuer.url}/keys"})

        class Keys(web.RequestHandler):
            def get(self):
                self.write({"keys": [issuer.jwk(kid) for kid in issuer.published]})

        app = web.Application([("/realm/.well-known/openid-configuration", Discovery), ("/realm/keys", Keys)])
        self.server = httpserver.HTTPServer(app)
        self.server.listen(self.port, "127.0.0.1")

    def jwk(self, kid: str) -> dict:
        key = self.keys[kid].public_key()
        algorithm = jwt.algorithms.ECAlgorithm if isinstance(key, ec.EllipticCurvePublicKey) else jwt.algorithms.RSAAlgorithm
        return {**algorithm.to_jwk(key, as_dict=True), "kid": kid, "use": "sig"}

    def token(self, user: str = "alice", groups=(), kid: str = "k1", **claims) -> str:
        now = int(time.time())
        payload = {"iss": self.url, "aud": AUDIENCE, "sub": f"id-{user}", "preferred_username": user,
                   "groups": list(groups), "iat": now, "exp": now + 300, **claims}
        algorithm = "ES256" if isinstance(self.keys[kid], ec.EllipticCurvePrivateKey) else "RS256"
        return jwt.encode(payload, self.keys[kid], algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
async def issuer():  # serves on the test's event loop
    issuer = Issuer()
    yield issuer
    issuer.server.stop()


def client(gw, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gw.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _part(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(payload: dict) -> str:
    return f"{_part(json.dumps({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'}).encode())}.{_part(json.dumps(payload).encode())}."


def hs256(payload: dict, secret: bytes) -> str:
    """A token MACed with ``secret`` (the algorithm-confusion attack uses the public key's PEM)."""
    signing_input = f"{_part(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': 'k1'}).encode())}.{_part(json.dumps(payload).encode())}"
    return f"{signing_input}.{_part(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


async def test_tokens_name_their_user_and_bad_ones_are_refused_with_the_reason(gateway_factory, issuer):
    gw = gateway_factory(f"--OIDCIdentity.issuer={issuer.url}", f"--OIDCIdentity.audience={AUDIENCE}",
                         "--Gateway.admin_groups=['eg-admins']", "--OIDCIdentity.jwks_refresh_seconds=0")
    async with client(gw, issuer.token("alice")) as alice, client(gw, issuer.token("bob")) as bob:
        r = await alice.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        kernel = r.json()["id"]
        assert [k["id"] for k in (await alice.get("/api/kernels")).json()] == [kernel]
        assert (await bob.get("/api/kernels")).json() == []
        assert (await bob.get(f"/api/kernels/{kernel}")).status_code == 404
    async with client(gw, issuer.token("carol", groups=["eg-admins"])) as carol:  # an admin by group
        assert [k["id"] for k in (await carol.get("/api/kernels")).json()] == [kernel]

    now = int(time.time())
    public_pem = issuer.keys["k1"].public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    issuer.keys["stranger"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "expired": (issuer.token("alice", iat=now - 900, exp=now - 600), "expired"),
        "another audience": (issuer.token("alice", aud="someone-else"), "audience"),
        "another issuer": (issuer.token("alice", iss="https://evil.example.org"), "issuer"),
        "a key the issuer does not publish": (issuer.token("alice", kid="stranger"), "key"),
        "alg none": (unsigned({"iss": issuer.url, "aud": AUDIENCE, "preferred_username": "alice", "exp": now + 300}), "'none'"),
        "HS256 keyed with the public key": (
            hs256({"iss": issuer.url, "aud": AUDIENCE, "preferred_username": "alice", "exp": now + 300}, public_pem), "'HS256'"),
        "no user claim": (issuer.token("alice", preferred_username=None), "preferred_username"),
        "a forged signature": (issuer.token("alice")[:-8] + "AAAAAAAA", "signature"),
    }
    for case, (token, says) in refused.items():
        async with client(gw, token) as someone:
            r = await someone.get("/api/kernels")
            assert r.status_code == 401, (case, r.text)
            assert says in r.json()["message"], (case, r.json())
            assert token not in r.text and token not in gw.output(), case  # never echoed or logged

    # the issuer rotates to a new key: a token signed with it makes eg fetch the JWKS again
    issuer.keys["k2"] = ec.generate_private_key(ec.SECP256R1())
    issuer.published = ["k2"]
    async with client(gw, issuer.token("alice", kid="k2")) as alice:
        assert [k["id"] for k in (await alice.get("/api/kernels")).json()] == [kernel]


async def test_an_issuer_that_cannot_be_reached_gets_503_and_the_service_token_goes_on(gateway_factory, issuer):
    gw = gateway_factory(f"--OIDCIdentity.issuer={issuer.url}", f"--OIDCIdentity.audience={AUDIENCE}")
    issuer.server.stop()
    async with client(gw, issuer.token("alice")) as alice:
        r = await alice.get("/api/kernels")
        assert r.status_code == 503, r.text
        assert "try again" in r.json()["message"] and r.json()["reason"] == "Service Unavailable"
    async with gw.client() as service:
        assert (await service.get("/api/kernels")).status_code == 200


async def test_doctor_reads_the_issuer_s_keys(issuer):
    async def doctor(*args: str) -> str:
        result = await asyncio.to_thread(run_doctor, f"--OIDCIdentity.issuer={issuer.url}", *args)
        return next(line for line in result.stdout.splitlines() if "oidc:" in line)

    assert (await doctor(f"--OIDCIdentity.audience={AUDIENCE}")).startswith("ok")
    line = await doctor()
    assert line.startswith("FAIL") and "audience is not set" in line, line
    line = await doctor(f"--OIDCIdentity.audience={AUDIENCE}", f"--OIDCIdentity.jwks_url=http://127.0.0.1:{free_port()}/keys")
    assert line.startswith("FAIL") and "could not be read" in line, line
