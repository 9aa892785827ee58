"""How eg uses the Hub's answers, against a stand-in of the Hub's ``GET /hub/api/user`` that the
test serves over real HTTP (it counts questions and can hang): one question per token however
many requests bring it, and a Hub that hangs costs only the requests that need it (a 503 after
``request_timeout``), not those with known tokens, users-file tokens or the service token."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from tornado import httpserver, web

from eg_core.testing import free_port, run_doctor

pytestmark = pytest.mark.timeout(120)


class StandInHub:
    def __init__(self) -> None:
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/hub/api"
        self.asked: list[str] = []
        self.hanging = asyncio.Event()
        hub = self

        class User(web.RequestHandler):
            async def get(self):
                token = self.request.headers.get("Authorization", "").removeprefix("token ")
                hub.asked.append(token)
                if token == "hangs":
                    hub.hanging.set()
                    await asyncio.Event().wait()
                if token != "alice-hub-token":
                    raise web.HTTPError(403)
                self.write({"kind": "user", "name": "alice", "groups": ["staff"]})

        class Root(web.RequestHandler):
            def get(self):
                self.write({"version": "6.1.1"})

        self.server = httpserver.HTTPServer(web.Application([("/hub/api/user", User), ("/hub/api/", Root)]))
        self.server.listen(self.port, "127.0.0.1")


@pytest.fixture
async def stand_in():
    hub = StandInHub()
    yield hub
    hub.server.stop()


def client(gw, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gw.url, headers={"Authorization": f"token {token}"}, timeout=60)


async def test_the_hub_is_asked_once_per_token(gateway_factory, stand_in):
    gw = gateway_factory(f"--JupyterHubIdentity.hub_api_url={stand_in.api_url}")
    async with client(gw, "alice-hub-token") as alice, client(gw, "unknown") as stranger:
        answers = await asyncio.gather(*(alice.get("/api/kernels") for _ in range(8)))
        assert [r.status_code for r in answers] == [200] * 8
        for _ in range(5):
            assert (await alice.get("/api/kernels")).status_code == 200
            assert (await stranger.get("/api/kernels")).status_code == 401
    assert stand_in.asked == ["alice-hub-token", "unknown"]


async def test_a_hub_that_hangs_holds_up_only_the_requests_that_need_it(gateway_factory, stand_in, tmp_path):
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"bob": "bob-file-token"}))
    gw = gateway_factory(f"--JupyterHubIdentity.hub_api_url={stand_in.api_url}", "--JupyterHubIdentity.request_timeout=3",
                         f"--Gateway.users_file={users}")
    async with client(gw, "alice-hub-token") as alice, client(gw, "hangs") as hung, client(gw, "bob-file-token") as bob, \
            gw.client() as service:
        assert (await alice.get("/api/kernels")).status_code == 200  # known from now on
        waiting = asyncio.ensure_future(hung.get("/api/kernels"))
        await stand_in.hanging.wait()
        for http in (alice, bob, service):
            assert (await http.get("/api/kernels")).status_code == 200
        assert not waiting.done()  # the others were answered while the Hub still hangs
        r = await waiting
        assert r.status_code == 503, r.text
        assert r.json()["message"].startswith(f"JupyterHub at {stand_in.api_url} could not say who the token belongs to")


async def test_doctor_checks_the_hub_and_eg_s_token(stand_in):
    async def doctor(*args: str) -> str:
        result = await asyncio.to_thread(run_doctor, *args)
        return next(line for line in result.stdout.splitlines() if "jupyterhub:" in line)

    assert (await doctor(f"--JupyterHubIdentity.hub_api_url={stand_in.api_url}")).startswith("ok")
    line = await doctor(f"--JupyterHubIdentity.hub_api_url={stand_in.api_url}", "--JupyterHubIdentity.api_token=not-eg-s")
    assert line.startswith("FAIL") and "does not know JupyterHubIdentity.api_token" in line, line
    line = await doctor(f"--JupyterHubIdentity.hub_api_url=http://127.0.0.1:{free_port()}/hub/api")
    assert line.startswith("FAIL") and "fix: start the Hub" in line, line
