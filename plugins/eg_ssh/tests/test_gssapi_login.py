"""Kerberos (GSSAPI) SSH logins (Enterprise Gateway's EG_REMOTE_GSS_SSH) against a real sshd
and a real MIT KDC on loopback: the gateway holds only the user's Kerberos tickets; the key it
offers is not authorized and it has no password."""

from __future__ import annotations

import pytest

from eg_ssh.testing import TEST_USERS, TestSSHD, where

pytestmark = pytest.mark.timeout(180)
USER = TEST_USERS[0]


@pytest.fixture(scope="module")
def gss_sshd(kerberos_realm):
    keytab = kerberos_realm.add_principal("host/127.0.0.1")
    server = TestSSHD(
        addresses=("127.0.0.1",),
        extra_config="GSSAPIAuthentication yes\nGSSAPIStrictAcceptorCheck no\n",  # the keytab has host/127.0.0.1, not the hostname
        env={**kerberos_realm.env, "KRB5_KTNAME": f"FILE:{keytab}"},
    ).start()
    yield server
    server.stop()


def gss_gateway(gateway_factory, gss_sshd, kerberos_realm, tmp_path, ccache: str | None, key: str):
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "eg_gateway_config.py").write_text(gss_sshd.gateway_config(user=USER, client_keys=[key]))
    env = {"JUPYTER_CONFIG_DIR": str(config_dir), "EG_RESPONSE_PORT": "0", "EG_REMOTE_GSS_SSH": "true", **kerberos_realm.env}
    env["KRB5CCNAME"] = ccache or f"FILE:{tmp_path / 'no-tickets'}"
    return gateway_factory(env=env)


async def test_gssapi_login(gateway_factory, gss_sshd, kerberos_realm, tmp_path, stranger_key):
    ccache = kerberos_realm.kinit(USER, tmp_path / "egtest.ccache")
    gw = gss_gateway(gateway_factory, gss_sshd, kerberos_realm, tmp_path, ccache, stranger_key)
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh"})
        assert r.status_code == 201, r.text + gss_sshd.log()[-2000:]
        kid = r.json()["id"]
        assert (await where(gw, kid))[0] == USER
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert "Accepted gssapi-with-mic for egtest" in gss_sshd.log()


async def test_gssapi_without_tickets_is_a_rejected_login(gateway_factory, gss_sshd, kerberos_realm, tmp_path, stranger_key):
    gw = gss_gateway(gateway_factory, gss_sshd, kerberos_realm, tmp_path, None, stranger_key)
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh"})
    assert r.status_code >= 400
    assert "rejected" in r.json()["message"] and "Kerberos" in r.json()["message"]
