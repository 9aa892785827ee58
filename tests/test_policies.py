"""Operator policies as plugins: identity and per-user tokens, authorization, kernel limits, TLS."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess

import httpx
import pytest

from eg_core.testing import TOKEN


def start(http, name="python3", **env):
    return http.post("/api/kernels", json={"name": name, "env": env})


async def test_token_is_generated_and_printed_when_none_is_set(gateway_factory):
    gw = gateway_factory(token="")
    assert "generated one for this run" in gw.output()
    token = gw.output().split("generated one for this run:\n", 1)[1].split()[0]
    async with httpx.AsyncClient(base_url=gw.url) as anon:
        assert (await anon.get("/api")).status_code == 401
        assert (await anon.get("/api", headers={"Authorization": f"token {token}"})).status_code == 200


async def test_per_user_tokens_bind_the_username(gateway_factory, tmp_path):
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"alice": "alice-secret", "bob": "bob-secret"}))
    gw = gateway_factory(f"--Gateway.users_file={users}")
    alice = httpx.AsyncClient(base_url=gw.url, headers={"Authorization": "token alice-secret"}, timeout=60)
    admin = httpx.AsyncClient(base_url=gw.url, headers=gw.headers, timeout=60)
    async with alice, admin:
        r = await start(alice, KERNEL_USERNAME="bob")
        assert r.status_code == 403 and "may not start kernels as 'bob'" in r.json()["message"]
        r = await start(alice)
        assert r.status_code == 201
        r2 = await start(admin, KERNEL_USERNAME="bob")  # the gateway's own token acts for anyone
        assert r2.status_code == 201
        wrong = await alice.get("/api", headers={"Authorization": "token nope"})
        assert wrong.status_code == 401
        for kid in (r.json()["id"], r2.json()["id"]):
            await admin.delete(f"/api/kernels/{kid}")
    assert "alice-secret" not in gw.output() and "bob-secret" not in gw.output()


async def test_authorized_and_unauthorized_users(gateway_factory):
    gw = gateway_factory("--UserAuthorization.unauthorized_users=['mallory']")
    async with gw.client() as http:
        r = await start(http, KERNEL_USERNAME="mallory")
        assert r.status_code == 403 and "'mallory' is not authorized" in r.json()["message"]
        r = await start(http, "authorization_test", KERNEL_USERNAME="bad_guy")
        assert r.status_code == 403 and "bad_guy" in r.json()["message"]
        r = await start(http, "authorization_test", KERNEL_USERNAME="carol")
        assert r.status_code == 403 and "not in the set of users authorized" in r.json()["message"]
        specs = (await http.get("/api/kernelspecs?user=carol")).json()["kernelspecs"]
        assert "authorization_test" not in specs and "python3" in specs
        assert (await http.get("/api/kernelspecs/authorization_test?user=carol")).status_code == 403
        assert "authorization_test" in (await http.get("/api/kernelspecs?user=alice")).json()["kernelspecs"]
        r = await start(http, "authorization_test", KERNEL_USERNAME="alice")
        assert r.status_code == 201
        await http.delete(f"/api/kernels/{r.json()['id']}")


async def test_max_kernels_is_atomic_under_concurrency(gateway_factory):
    gw = gateway_factory("--KernelLimits.max_kernels=3")
    async with gw.client() as http:
        answers = await asyncio.gather(*(start(http) for _ in range(8)))
        codes = sorted(r.status_code for r in answers)
        assert codes == [201] * 3 + [403] * 5, codes
        refused = next(r for r in answers if r.status_code == 403).json()
        assert "max kernels limit has been set to 3" in refused["message"]
        running = (await http.get("/api/kernels")).json()
        assert len(running) == 3
        await http.delete(f"/api/kernels/{running[0]['id']}")
        again = await start(http)
        assert again.status_code == 201
        for k in (await http.get("/api/kernels")).json():
            await http.delete(f"/api/kernels/{k['id']}")


async def test_failed_launch_releases_its_slot_and_per_user_limit(gateway_factory):
    gw = gateway_factory("--KernelLimits.max_kernels=2", "--KernelLimits.max_kernels_per_user=1")
    async with gw.client() as http:
        assert (await start(http, "crash_at_start", KERNEL_USERNAME="alice")).status_code == 502
        first = await start(http, KERNEL_USERNAME="alice")
        assert first.status_code == 201
        second = await start(http, KERNEL_USERNAME="alice")
        assert second.status_code == 403 and "per user limit has been set to 1" in second.json()["message"]
        bob = await start(http, KERNEL_USERNAME="bob")
        assert bob.status_code == 201
        carol = await start(http, KERNEL_USERNAME="carol")
        assert carol.status_code == 403
        for r in (first, bob):
            await http.delete(f"/api/kernels/{r.json()['id']}")


async def test_tls(gateway_factory, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    gw = gateway_factory(f"--certfile={cert}", f"--keyfile={key}")
    async with httpx.AsyncClient(base_url=gw.url.replace("http:", "https:"), verify=ssl.create_default_context(cafile=str(cert)), headers={"Authorization": f"token {TOKEN}"}) as https:
        assert (await https.get("/api")).status_code == 200
    with pytest.raises(httpx.HTTPError):
        async with httpx.AsyncClient(base_url=gw.url) as plain:
            await plain.get("/api")
