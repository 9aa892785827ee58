"""Identity providers behind one hook (``eg_identify``), with the builtin users file as one of
them: groups from the provider take part in policy (admins by group, kernelspec access by group,
kernel limits per group), and a reload forgets cached identities at once. Real gateways, real
kernels, real HTTP clients. The Hub and OIDC providers are tested in their plugins."""

from __future__ import annotations

import json
import signal

import httpx

from eg_core.testing import gateway_exit

USERS = {
    "alice": {"token": "alice-secret", "groups": ["staff"]},
    "bob": "bob-secret",
    "carol": {"token": "carol-secret", "groups": ["eg-admins"]},
}


def client(gw, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gw.url, headers={"Authorization": f"token {token}"}, timeout=90)


def users_file(tmp_path, users=USERS):
    path = tmp_path / "users.json"
    path.write_text(json.dumps(users))
    return path


async def test_groups_make_admins_authorize_kernelspecs_and_set_limits(gateway_factory, tmp_path):
    gw = gateway_factory(
        f"--Gateway.users_file={users_file(tmp_path)}", "--Gateway.admin_groups=['eg-admins']",
        "--UserAuthorization.authorized_groups=['staff', 'eg-admins']",
        "--KernelLimits.max_kernels_per_user=1", '--KernelLimits.max_kernels_per_user_by_group={"staff": 2}',
    )
    async with client(gw, "alice-secret") as alice, client(gw, "bob-secret") as bob, client(gw, "carol-secret") as carol:
        # kernelspecs by group: bob is in no authorized group
        assert "python3" in (await alice.get("/api/kernelspecs")).json()["kernelspecs"]
        assert "python3" not in (await bob.get("/api/kernelspecs")).json()["kernelspecs"]
        r = await bob.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 403 and "bob" in r.json()["message"], r.text

        # limits per group: staff may hold 2 where everyone else holds 1
        first = await alice.post("/api/kernels", json={"name": "python3"})
        second = await alice.post("/api/kernels", json={"name": "python3"})
        assert (first.status_code, second.status_code) == (201, 201), second.text
        third = await alice.post("/api/kernels", json={"name": "python3"})
        assert third.status_code == 403 and "limit has been set to 2" in third.json()["message"], third.text
        own = await carol.post("/api/kernels", json={"name": "python3"})
        assert own.status_code == 201
        r = await carol.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 403 and "limit has been set to 1" in r.json()["message"], r.text

        # admins by group: carol sees and manages alice's kernels; alice sees only her own
        ids = {first.json()["id"], second.json()["id"]}
        assert {k["id"] for k in (await carol.get("/api/kernels")).json()} == ids | {own.json()["id"]}
        assert {k["id"] for k in (await alice.get("/api/kernels")).json()} == ids
        assert (await carol.delete(f"/api/kernels/{first.json()['id']}")).status_code == 204


async def test_a_token_removed_from_the_users_file_stops_working_at_the_reload(gateway_factory, tmp_path):
    path = users_file(tmp_path)
    gw = gateway_factory(f"--Gateway.users_file={path}")  # identities are cached for 60 s by default
    async with client(gw, "bob-secret") as bob:
        assert (await bob.get("/api/kernels")).status_code == 200
        path.write_text(json.dumps({"alice": "alice-secret"}))
        gw.proc.send_signal(signal.SIGHUP)
        await gw.wait_for_output("Reloading configuration")
        r = await bob.get("/api/kernels")
        assert r.status_code == 401, r.text


def test_a_users_file_with_bad_groups_stops_the_gateway_saying_what_to_fix(tmp_path):
    path = users_file(tmp_path, {"alice": {"token": "t", "groups": "staff"}})
    result = gateway_exit(tmp_path, f"--Gateway.users_file={path}")
    assert result.returncode != 0
    assert "user 'alice': groups must be a list of group names" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
