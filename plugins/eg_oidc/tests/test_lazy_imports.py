"""PyJWT and cryptography stay out of a gateway that does not verify OIDC tokens: importing the
plugin does not load them, and without an issuer it declines every token without them. Fresh
interpreters, real imports."""

from __future__ import annotations

import os

from eg_core.testing import fresh_python

SDK = ("jwt", "cryptography")
NO_SETTINGS = {k: v for k, v in os.environ.items() if not k.startswith("EG_")}


def test_without_an_issuer_the_plugin_declines_without_pyjwt():
    code = """
from eg_oidc import plugin
answer = plugin.eg_identify("eyJhbGciOiJSUzI1NiJ9.e30.sig")
"""
    ran = fresh_python(code, SDK, NO_SETTINGS)
    assert (ran.answer, ran.loaded) == (None, [])
