"""Every kernel has an owner: with per-user tokens (``users_file``) a user sees and acts on only
their own kernels and sessions; another user's answer 404 on every route exactly as an unknown
id does. The gateway's token and ``admin_users`` see and manage all. Real gateways, real
``python3`` kernels, real HTTP and websocket clients."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from eg_core.testing import KernelSocket

pytestmark = pytest.mark.timeout(240)

USERS = {"alice": "alice-secret", "bob": "bob-secret", "root-carol": "carol-secret"}


def client(gw, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gw.url, headers={"Authorization": f"token {token}"}, timeout=90)


@pytest.fixture
def users_gateway(gateway_factory, tmp_path):
    users = tmp_path / "users.json"
    users.write_text(json.dumps(USERS))

    def start(*args: str):
        return gateway_factory(f"--Gateway.users_file={users}", "--Gateway.admin_users=['root-carol']", *args)

    return start


async def answers(http: httpx.AsyncClient, method: str, url: str, **kwargs) -> tuple[int, dict]:
    r = await http.request(method, url, **kwargs)
    return r.status_code, (r.json() if r.content else {})


async def test_another_users_kernel_and_session_are_not_there(users_gateway):
    gw = users_gateway()
    async with client(gw, "alice-secret") as alice, client(gw, "bob-secret") as bob:
        r = await alice.post("/api/sessions", json={"path": "a.ipynb", "type": "notebook", "kernel": {"name": "python3"}})
        assert r.status_code == 201, r.text
        session_a, kernel_a = r.json()["id"], r.json()["kernel"]["id"]
        unknown_kernel, unknown_session = str(uuid.uuid4()), str(uuid.uuid4())

        # bob gets for alice's ids exactly what he gets for ids that do not exist
        for method, url, unknown_url in [
            ("GET", f"/api/kernels/{kernel_a}", f"/api/kernels/{unknown_kernel}"),
            ("DELETE", f"/api/kernels/{kernel_a}", f"/api/kernels/{unknown_kernel}"),
            ("POST", f"/api/kernels/{kernel_a}/interrupt", f"/api/kernels/{unknown_kernel}/interrupt"),
            ("POST", f"/api/kernels/{kernel_a}/restart", f"/api/kernels/{unknown_kernel}/restart"),
            ("GET", f"/api/sessions/{session_a}", f"/api/sessions/{unknown_session}"),
            ("PATCH", f"/api/sessions/{session_a}", f"/api/sessions/{unknown_session}"),
            ("DELETE", f"/api/sessions/{session_a}", f"/api/sessions/{unknown_session}"),
        ]:
            kwargs = {"json": {"path": "b.ipynb"}} if method in ("PATCH",) else {}
            status, body = await answers(bob, method, url, **kwargs)
            unknown_status, unknown_body = await answers(bob, method, unknown_url, **kwargs)
            assert status == unknown_status == 404, (method, url, body)
            assert body == {k: v.replace(unknown_kernel, kernel_a).replace(unknown_session, session_a) for k, v in unknown_body.items()}

        # lists are filtered
        assert (await bob.get("/api/kernels")).json() == []
        assert (await bob.get("/api/sessions")).json() == []

        # a session bound to alice's kernel, or moved onto it: not there either
        status, _ = await answers(bob, "POST", "/api/sessions", json={"path": "b.ipynb", "type": "notebook", "kernel": {"id": kernel_a}})
        assert status == 404
        r = await bob.post("/api/sessions", json={"path": "b.ipynb", "type": "notebook", "kernel": {"name": "python3"}})
        session_b, kernel_b = r.json()["id"], r.json()["kernel"]["id"]
        status, _ = await answers(bob, "PATCH", f"/api/sessions/{session_b}", json={"path": "moved.ipynb", "kernel": {"id": kernel_a}})
        assert status == 404
        assert (await bob.get(f"/api/sessions/{session_b}")).json()["path"] == "b.ipynb"  # a refused change changes nothing
        # the same path as alice's session is bob's own session, not hers
        r = await bob.post("/api/sessions", json={"path": "a.ipynb", "type": "notebook", "kernel": {"id": kernel_b}})
        assert r.status_code == 201 and r.json()["id"] != session_a

        # the websocket is refused as for an unknown kernel
        for kid in (kernel_a, unknown_kernel):
            with pytest.raises(InvalidStatus) as refused:
                await KernelSocket.connect(gw, kid, headers={"Authorization": "token bob-secret"})
            assert refused.value.response.status_code == 404

        # alice's kernel is untouched and hers to use; she does not see bob's
        assert [k["id"] for k in (await alice.get("/api/kernels")).json()] == [kernel_a]
        assert [s["id"] for s in (await alice.get("/api/sessions")).json()] == [session_a]
        assert (await alice.get(f"/api/kernels/{kernel_b}")).status_code == 404
        ks = await KernelSocket.connect(gw, kernel_a, headers={"Authorization": "token alice-secret"})
        out = await ks.execute("import os; print(os.environ['KERNEL_USERNAME'])")
        await ks.close()
        assert out["stdout"] == "alice\n"
        assert (await alice.post(f"/api/kernels/{kernel_a}/interrupt")).status_code == 204
        assert (await alice.patch(f"/api/sessions/{session_a}", json={"path": "a2.ipynb"})).json()["path"] == "a2.ipynb"
        assert (await alice.delete(f"/api/sessions/{session_a}")).status_code == 204
        assert (await bob.delete(f"/api/kernels/{kernel_b}")).status_code == 204


async def test_the_service_token_and_admin_users_see_and_manage_all(users_gateway):
    gw = users_gateway()
    async with client(gw, "alice-secret") as alice, client(gw, "bob-secret") as bob, client(gw, "carol-secret") as carol:
        mine = {}
        for name, http in (("alice", alice), ("bob", bob)):
            r = await http.post("/api/kernels", json={"name": "python3"})
            assert r.status_code == 201, r.text
            mine[name] = r.json()["id"]
        async with gw.client() as service:
            # a kernel the service starts for a user it names belongs to that user
            r = await service.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_USERNAME": "alice"}})
            mine["alice-by-service"] = r.json()["id"]
            assert {k["id"] for k in (await service.get("/api/kernels")).json()} == set(mine.values())
        assert {k["id"] for k in (await carol.get("/api/kernels")).json()} == set(mine.values())
        assert {k["id"] for k in (await alice.get("/api/kernels")).json()} == {mine["alice"], mine["alice-by-service"]}
        assert (await carol.get(f"/api/kernels/{mine['bob']}")).status_code == 200
        for kid in mine.values():
            assert (await carol.delete(f"/api/kernels/{kid}")).status_code == 204
        assert (await bob.get("/api/kernels")).json() == []


async def test_an_adopted_kernel_keeps_its_owner(users_gateway, tmp_path):
    store = tmp_path / "store"
    ha = (f"--FileSessionStore.persistence_root={store}", "--Gateway.availability_mode=standalone")
    first = users_gateway(*ha)
    async with client(first, "alice-secret") as alice:
        kid = (await alice.post("/api/kernels", json={"name": "python3"})).json()["id"]
    first.stop()  # the kernel is left running for the next gateway
    second = users_gateway(*ha, "--Gateway.shutdown_kernels_on_exit=True")
    async with client(second, "alice-secret") as alice, client(second, "bob-secret") as bob:
        assert (await bob.get(f"/api/kernels/{kid}")).status_code == 404
        assert (await bob.get("/api/kernels")).json() == []
        assert (await alice.get(f"/api/kernels/{kid}")).status_code == 200
        assert (await alice.delete(f"/api/kernels/{kid}")).status_code == 204


async def test_one_shared_token_trusts_the_client(gateway_factory):
    """Without per-user tokens every client is the gateway's own: it sees every kernel."""
    gw = gateway_factory()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_USERNAME": "alice"}})
        kid = r.json()["id"]
        assert kid in {k["id"] for k in (await http.get("/api/kernels")).json()}
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204



async def test_replication_adopts_no_kernel_for_another_user(users_gateway, tmp_path):
    store = tmp_path / "store"
    ha = (f"--FileSessionStore.persistence_root={store}", "--Gateway.availability_mode=replication")
    first, second = users_gateway(*ha), users_gateway(*ha)
    async with client(first, "alice-secret") as alice:
        kid = (await alice.post("/api/kernels", json={"name": "python3"})).json()["id"]
    async with client(second, "alice-secret") as alice, client(second, "bob-secret") as bob:
        assert (await bob.get(f"/api/kernels/{kid}")).status_code == 404
        assert (await bob.get("/api/kernels")).json() == []
        assert f"[kernel {kid}] adopted" not in second.output()  # bob's requests took nothing over
        # alice lists her kernel through either gateway (a balancing Service may send her to any)
        assert [k["id"] for k in (await alice.get("/api/kernels")).json()] == [kid]
        assert (await alice.get(f"/api/kernels/{kid}")).status_code == 200  # hers, through either gateway
        assert (await alice.delete(f"/api/kernels/{kid}")).status_code == 204
