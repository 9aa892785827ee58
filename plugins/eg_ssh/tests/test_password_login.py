"""SSH password login (Enterprise Gateway's EG_REMOTE_PWD) against the real test sshd: the key
the gateway offers is not authorized, so only the password can log in."""

from __future__ import annotations

import pytest

from eg_ssh.testing import PASSWORD_USER, TEST_PASSWORD, where

pytestmark = pytest.mark.timeout(180)


async def test_password_login(ssh_gateway, stranger_key):
    gw = ssh_gateway(user=PASSWORD_USER, client_keys=[stranger_key], env={"EG_REMOTE_PWD": TEST_PASSWORD})
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        user, _ = await where(gw, kid)
        assert user == PASSWORD_USER
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert TEST_PASSWORD not in gw.output()


async def test_wrong_password_is_a_rejected_login(ssh_gateway, stranger_key):
    gw = ssh_gateway(user=PASSWORD_USER, client_keys=[stranger_key], env={"EG_REMOTE_PWD": "not-the-password"})
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_ssh"})
    assert r.status_code >= 400
    assert "rejected" in r.json()["message"] and "the password (remote_password)" in r.json()["message"]
    assert "not-the-password" not in gw.output() + r.text
