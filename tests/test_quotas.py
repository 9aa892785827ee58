"""Resource quotas per user and per group (the builtin ``quotas`` policy): the CPUs, memory and
GPUs a user's (or a group's members') running and pending kernels asked for may not pass the
operator's limit; a start that would is refused with 403 saying what is in use and what was
asked, and a shutdown gives the amounts back. Real gateways and real (tiny) kernels; the local
resource manager counts the request's KERNEL_CPUS, KERNEL_MEMORY and KERNEL_GPUS."""

from __future__ import annotations

import asyncio
import json

import httpx

from eg_core.testing import gateway_exit

USERS = {"alice": {"token": "alice-secret", "groups": ["gpu-team"]}, "bob": {"token": "bob-secret", "groups": ["gpu-team"]},
         "carol": "carol-secret"}


def client(gw, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gw.url, headers={"Authorization": f"token {token}"}, timeout=90)


async def start(http, **env: str) -> httpx.Response:
    return await http.post("/api/kernels", json={"name": "tiny", "env": env})


async def test_a_users_cpus_and_memory_are_capped_and_given_back_at_shutdown(gateway_factory, tmp_path):
    users = tmp_path / "users.json"
    users.write_text(json.dumps(USERS))
    gw = gateway_factory(f"--Gateway.users_file={users}", '--ResourceQuotas.per_user={"cpus": 2, "memory": "1Gi"}')
    async with client(gw, "alice-secret") as alice, client(gw, "carol-secret") as carol:
        first = await start(alice, KERNEL_CPUS="1.5", KERNEL_MEMORY="512Mi")
        assert first.status_code == 201, first.text
        r = await start(alice, KERNEL_CPUS="1")
        assert r.status_code == 403, r.text
        assert r.json()["message"] == ("Resource quota: user 'alice' holds 1.5 CPUs in running and pending kernels and this "
                                       "kernel asks for 1 CPU; the limit per user is 2 CPUs")
        r = await start(alice, KERNEL_MEMORY="600Mi")
        assert r.status_code == 403 and "0.5 GiB of memory" in r.json()["message"], r.text
        assert (await start(carol, KERNEL_CPUS="2")).status_code == 201  # another user's own quota
        assert (await start(alice, KERNEL_CPUS="500m")).status_code == 201  # 1.5 + 0.5 fits
        r = await start(alice, KERNEL_CPUS="lots")
        assert r.status_code == 400 and "'lots' is not an amount of CPUs" in r.json()["message"], r.text
        assert (await alice.delete(f"/api/kernels/{first.json()['id']}")).status_code == 204
        assert (await start(alice, KERNEL_CPUS="1.5")).status_code == 201  # given back


async def test_a_groups_gpus_are_capped_across_its_members_and_pending_starts_count(gateway_factory, tmp_path):
    users = tmp_path / "users.json"
    users.write_text(json.dumps(USERS))
    gw = gateway_factory(f"--Gateway.users_file={users}", '--ResourceQuotas.per_group={"gpu-team": {"gpus": 2}}')
    async with client(gw, "alice-secret") as alice, client(gw, "bob-secret") as bob, client(gw, "carol-secret") as carol:
        answers = await asyncio.gather(*(start(http, KERNEL_GPUS="1") for http in (alice, bob, alice, bob)))
        assert sorted(r.status_code for r in answers) == [201, 201, 403, 403]  # concurrent starts cannot overshoot
        refused = next(r for r in answers if r.status_code == 403).json()["message"]
        assert "group 'gpu-team' holds 2 GPUs" in refused and "the limit for group 'gpu-team' is 2 GPUs" in refused, refused
        assert (await start(carol, KERNEL_GPUS="4")).status_code == 201  # in no group with a quota
        assert (await start(alice)).status_code == 201  # asks for no GPU


def test_a_wrong_quota_stops_the_gateway_saying_what_to_fix(tmp_path):
    result = gateway_exit(tmp_path, '--ResourceQuotas.per_group={"gpu-team": {"gpu": 2}}')
    assert result.returncode != 0
    assert "ResourceQuotas.per_group['gpu-team']: unknown resource 'gpu'; known: cpus, memory, gpus" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


async def test_kernels_adopted_after_a_gateway_restart_count_again(gateway_factory, tmp_path):
    import signal

    store = tmp_path / "store"
    args = ("--Gateway.availability_mode=standalone", f"--FileSessionStore.persistence_root={store}",
            '--ResourceQuotas.per_user={"cpus": 2}')
    first = gateway_factory(*args)
    async with first.client() as http:
        held = await http.post("/api/kernels", json={"name": "tiny", "env": {"KERNEL_USERNAME": "dana", "KERNEL_CPUS": "2"}})
        assert held.status_code == 201, held.text
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    second = gateway_factory(*args)
    async with second.client() as http:
        assert [k["id"] for k in (await http.get("/api/kernels")).json()] == [held.json()["id"]]  # adopted
        r = await http.post("/api/kernels", json={"name": "tiny", "env": {"KERNEL_USERNAME": "dana", "KERNEL_CPUS": "1"}})
        assert r.status_code == 403 and "user 'dana' holds 2 CPUs" in r.json()["message"], r.text
        await http.delete(f"/api/kernels/{held.json()['id']}")
