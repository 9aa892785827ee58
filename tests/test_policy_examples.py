"""The README's policy plugins run as written (issue 23, point 4): a culler, a quota and a
launch parameter of an operator's own, each installed as an ``eg.plugins`` entry point into a
real gateway (the builtin culler disabled for the first), with real (tiny) kernels."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import httpx

from eg_core.testing import check_launch_parameters, plugin_site, wait_for_event

ROOT = Path(__file__).parents[1]
TINY = Path(__file__).parent / "kernelspecs" / "tiny"


def example(name: str) -> str:
    """The README's ```python block that starts with ``# <name>.py``."""
    blocks = re.findall(r"```python\n# (\w+)\.py\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return dict(blocks)[name]


async def test_a_culler_of_ones_own_replaces_the_builtin(gateway_factory, tmp_path):
    specs = tmp_path / "specs"
    for name in ("tiny", "gpu_tiny"):
        shutil.copytree(TINY, specs / name)
    env = {**plugin_site(tmp_path / "site", {"my_culler": example("my_culler")}), "MY_CULL_IDLE": "2"}
    gw = gateway_factory('--Gateway.disabled_plugins=["culling"]', env=env, kernel_spec_dirs=[str(specs)])
    async with gw.client() as http:
        cpu = (await http.post("/api/kernels", json={"name": "tiny"})).json()["id"]
        gpu = (await http.post("/api/kernels", json={"name": "gpu_tiny"})).json()["id"]
        assert (await wait_for_event(gw, "shut_down", gpu))["details"]["reason"] == "culled: idle over 0.2 s"
        assert (await wait_for_event(gw, "shut_down", cpu))["details"]["reason"] == "culled: idle over 2 s"
        r = await http.get(f"/api/kernels/{gpu}")
        assert r.status_code == 404 and "culled: idle over 0.2 s" in r.json()["message"], r.text


async def test_a_quota_of_ones_own_holds_one_gpu_kernel_per_user(gateway_factory, tmp_path):
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"alice": "alice-secret", "bob": "bob-secret"}))
    gw = gateway_factory(f"--Gateway.users_file={users}", env=plugin_site(tmp_path / "site", {"one_gpu_kernel": example("one_gpu_kernel")}))

    def client(token):
        return httpx.AsyncClient(base_url=gw.url, headers={"Authorization": f"token {token}"}, timeout=60)

    async with client("alice-secret") as alice, client("bob-secret") as bob:
        first = await alice.post("/api/kernels", json={"name": "tiny", "env": {"KERNEL_GPUS": "1"}})
        assert first.status_code == 201, first.text
        r = await alice.post("/api/kernels", json={"name": "tiny", "env": {"KERNEL_GPUS": "2"}})
        assert r.status_code == 403 and r.json()["message"] == "user 'alice' already holds a kernel with GPUs; shut it down first"
        assert (await bob.post("/api/kernels", json={"name": "tiny", "env": {"KERNEL_GPUS": "1"}})).status_code == 201
        assert (await alice.post("/api/kernels", json={"name": "tiny"})).status_code == 201  # no GPU asked
        assert (await alice.delete(f"/api/kernels/{first.json()['id']}")).status_code == 204
        assert (await alice.post("/api/kernels", json={"name": "tiny", "env": {"KERNEL_GPUS": "1"}})).status_code == 201


async def test_a_launch_parameter_of_ones_own_is_published_and_enforced(gateway_factory, tmp_path):
    gw = gateway_factory(env=plugin_site(tmp_path / "site", {"projects": example("projects")}))
    async with gw.client() as http:
        schema = await check_launch_parameters(http, "tiny")
    assert schema["properties"] == {"KERNEL_PROJECT": {"type": "string", "enum": ["apollo", "gemini"], "default": "apollo"}}
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#" and schema["type"] == "object"
