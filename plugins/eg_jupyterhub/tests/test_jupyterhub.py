"""JupyterHub users as eg's users, with a real Hub, a real proxy and real single-user Jupyter
Servers using eg as their gateway with each user's own Hub token: each user's kernel runs as
that user, neither sees nor reaches the other's, the Hub's groups take part in policy, and a Hub
that is gone or hangs gets a clear 503 without holding up anyone else."""

from __future__ import annotations

import asyncio
import types

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from eg_core.testing import KernelSocket

pytestmark = pytest.mark.timeout(600)

WHOAMI = "import os; print(os.environ['KERNEL_USERNAME'])"


def eg_client(gw, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gw.url, headers={"Authorization": f"token {token}"}, timeout=60)


async def run_cell_through_server(hub, user: str, token: str, kernelspec: str = "python3") -> str:
    """Start a notebook session on ``user``'s server and run WHOAMI in it through the server's
    websocket (the server relays to eg); returns the kernel id and what the cell printed."""
    async with hub.user_client(user, token) as server:
        r = await server.post("/api/sessions", json={"path": f"{user}.ipynb", "type": "notebook", "kernel": {"name": kernelspec}})
        assert r.status_code == 201, r.text
        kernel_id = r.json()["kernel"]["id"]
    via_server = types.SimpleNamespace(ws_url=f"{hub.url.replace('http', 'ws')}/user/{user}", headers={"Authorization": f"token {token}"})
    ks = await KernelSocket.connect(via_server, kernel_id)
    try:
        reply = await ks.execute(WHOAMI)
    finally:
        await ks.close()
    assert reply["reply"]["status"] == "ok", reply
    return kernel_id, reply["stdout"].strip()


async def test_each_hub_user_owns_their_kernels_and_sees_no_one_elses(gateway_factory, hub):
    gw = gateway_factory(f"--JupyterHubIdentity.hub_api_url={hub.api_url}", f"--JupyterHubIdentity.api_token={hub.eg_token}")
    await hub.start(gw.url)
    alice_token, bob_token = await hub.start_server("alice"), await hub.start_server("bob")

    alice_kernel, printed = await run_cell_through_server(hub, "alice", alice_token)
    assert printed == "alice"
    bob_kernel, printed = await run_cell_through_server(hub, "bob", bob_token)
    assert printed == "bob"

    # each user's server lists only their own kernel (it asks eg with the user's Hub token)
    for user, token, mine in (("alice", alice_token, alice_kernel), ("bob", bob_token, bob_kernel)):
        async with hub.user_client(user, token) as server:
            assert [k["id"] for k in (await server.get("/api/kernels")).json()] == [mine]

    # straight to eg with bob's Hub token: alice's kernel is not there
    async with eg_client(gw, bob_token) as bob, gw.client() as service:
        assert [k["id"] for k in (await bob.get("/api/kernels")).json()] == [bob_kernel]
        assert (await bob.get(f"/api/kernels/{alice_kernel}")).status_code == 404
        assert (await bob.post(f"/api/kernels/{alice_kernel}/interrupt")).status_code == 404
        assert (await bob.delete(f"/api/kernels/{alice_kernel}")).status_code == 404
        owners = {k["id"] for k in (await service.get("/api/kernels")).json()}
        assert owners == {alice_kernel, bob_kernel}  # the service token sees both
    with pytest.raises(InvalidStatus) as refused:
        await KernelSocket.connect(gw, alice_kernel, headers={"Authorization": f"token {bob_token}"})
    assert refused.value.response.status_code == 404

    # the Hub's groups take part in policy: staff_python is for the group staff (alice) only
    async with hub.user_client("alice", alice_token) as alice, hub.user_client("bob", bob_token) as bob:
        assert "staff_python" in (await alice.get("/api/kernelspecs")).json()["kernelspecs"]
        assert "staff_python" not in (await bob.get("/api/kernelspecs")).json()["kernelspecs"]
    async with eg_client(gw, bob_token) as bob:
        r = await bob.post("/api/kernels", json={"name": "staff_python"})
        assert r.status_code == 403 and "bob" in r.json()["message"], r.text

    # a token the Hub does not know is refused; a revoked one once eg's cache forgets it
    async with eg_client(gw, "not-a-hub-token") as stranger:
        assert (await stranger.get("/api/kernels")).status_code == 401


async def test_a_revoked_hub_token_stops_working_and_a_hub_that_is_down_gets_503(gateway_factory, hub):
    gw = gateway_factory(f"--JupyterHubIdentity.hub_api_url={hub.api_url}", "--Gateway.identity_cache_seconds=0")
    await hub.start(gw.url)
    await hub.admin.post("/users/carol")
    r = await hub.admin.post("/users/carol/tokens", json={"note": "to revoke"})
    token, token_id = r.json()["token"], r.json()["id"]
    async with eg_client(gw, token) as carol:
        assert (await carol.get("/api/kernels")).status_code == 200
        assert (await hub.admin.delete(f"/users/carol/tokens/{token_id}")).status_code == 204
        assert (await carol.get("/api/kernels")).status_code == 401  # no cache: the Hub's answer counts at once
        await hub.stop()
        r = await carol.get("/api/kernels")
        assert r.status_code == 503, r.text
        assert "JupyterHub at" in r.json()["message"] and "try again" in r.json()["message"]
    async with gw.client() as service:  # the service token never asks the Hub
        assert (await service.get("/api/kernels")).status_code == 200
