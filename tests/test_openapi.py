"""The OpenAPI description stays true: valid, every route documented, real answers match it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec

from eg_core._server.handlers import api_routes
from eg_core._server.websocket import websocket_route


@pytest.fixture(scope="module")
def spec():
    import json
    from pathlib import Path

    import eg_core

    return json.loads((Path(eg_core.__file__).parent / "api" / "swagger.json").read_text())


def _route_regexes():
    from eg_core._runtime.plugins import get_plugin_manager

    builtin_routes = [r for routes in get_plugin_manager(load_entrypoints=False).hook.eg_web_handlers() for r in routes]
    return [re.compile("/" + pattern.rstrip("?").rstrip("/") + "/?$") for pattern, *_ in [*api_routes(), websocket_route(), *builtin_routes]]


def test_spec_is_valid(spec):
    validate_spec(spec)


def test_every_route_is_documented_and_every_path_served(spec):
    routes = _route_regexes()
    documented = list(spec["paths"])
    for path in documented:
        concrete = re.sub(r"\{[^}]+\}", "x-1", path)
        assert any(r.match(concrete) for r in routes), f"documented but not served: {path}"
    for route in routes:
        assert any(route.match(re.sub(r"\{[^}]+\}", "x-1", p)) for p in documented), f"served but not documented: {route.pattern}"


def check(spec, path: str, method: str, response) -> None:
    answer = spec["paths"][path][method]["responses"].get(str(response.status_code))
    assert answer is not None, f"{method.upper()} {path} answered {response.status_code}, which is not documented"
    content = answer.get("content", {}).get("application/json")
    if content:
        schema = {**content["schema"], "components": spec["components"]}
        OAS30Validator(schema).validate(response.json())


async def test_answers_match_the_description(spec, http, kernel):
    kid = kernel["id"]
    check(spec, "/api", "get", await http.get("/api"))
    check(spec, "/api/kernelspecs", "get", await http.get("/api/kernelspecs"))
    check(spec, "/api/kernelspecs/{kernel_name}", "get", await http.get("/api/kernelspecs/python3"))
    check(spec, "/api/kernelspecs/{kernel_name}", "get", await http.get("/api/kernelspecs/nope"))
    check(spec, "/api/kernels", "get", await http.get("/api/kernels"))
    check(spec, "/api/kernels", "post", await http.post("/api/kernels", json={"env": []}))
    check(spec, "/api/kernels/{kernel_id}", "get", await http.get(f"/api/kernels/{kid}"))
    check(spec, "/api/kernels/{kernel_id}", "get", await http.get("/api/kernels/nope"))
    check(spec, "/api/kernels/{kernel_id}/interrupt", "post", await http.post(f"/api/kernels/{kid}/interrupt"))
    check(spec, "/api/kernels/{kernel_id}/restart", "post", await http.post(f"/api/kernels/{kid}/restart"))
    created = await http.post("/api/sessions", json={"path": "s.ipynb", "type": "notebook", "kernel": {"id": kid}})
    check(spec, "/api/sessions", "post", created)
    check(spec, "/api/sessions", "get", await http.get("/api/sessions"))
    sid = created.json()["id"]
    check(spec, "/api/sessions/{session_id}", "get", await http.get(f"/api/sessions/{sid}"))
    check(spec, "/api/sessions/{session_id}", "patch", await http.patch(f"/api/sessions/{sid}", json={"name": "n"}))
    check(spec, "/api/sessions/{session_id}", "delete", await http.delete(f"/api/sessions/{sid}"))


async def announced_body(gateway, path: str, size: int):
    """The answer to a POST announcing a body of ``size`` bytes, without sending it."""
    import asyncio

    import httpx

    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: token {gateway.token}\r\nContent-Length: {size}\r\n\r\n".encode())
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)).decode()
        length = int(re.search(r"(?i)content-length: (\d+)", head).group(1))
        body = await reader.readexactly(length)
    finally:
        writer.close()
    return httpx.Response(int(head.split()[1]), content=body)


async def test_refusals_are_documented(spec, gateway, http):
    import httpx

    async with httpx.AsyncClient(base_url=gateway.url) as anonymous:
        check(spec, "/api/swagger.json", "get", await anonymous.get("/api/swagger.json"))
        check(spec, "/api/kernels", "post", await anonymous.post("/api/kernels", json={}))
    too_big = await announced_body(gateway, "/api/kernels", 9 * 1024 * 1024)
    check(spec, "/api/kernels", "post", too_big)
    assert too_big.status_code == 413
    check(spec, "/api/sessions", "post", await http.post("/api/sessions", json={"type": "notebook"}))
    env = spec["components"]["schemas"]["KernelStart"]["properties"]["env"]
    name = re.compile(env["x-propertyNames"]["pattern"])
    assert name.match("KERNEL_USERNAME") and not name.match("1BAD") and not name.match("A-B")
    bad = await http.post("/api/kernels", json={"env": {"A-B": "x"}})
    assert bad.status_code == 400
    check(spec, "/api/kernels", "post", bad)
    session = spec["components"]["schemas"]["SessionCreate"]
    assert session["anyOf"] == [{"required": ["path"]}, {"required": ["notebook"]}]


PARAMETERS_PLUGIN = '''
from eg_core import hookimpl


@hookimpl
def eg_launch_parameters(kernel):
    return {"KERNEL_LEVEL": {"type": "integer", "minimum": 1, "maximum": 3}} if kernel.kernel_name == "tiny" else None
'''


async def test_launch_parameters_are_described(spec, gateway_factory, tmp_path):
    """``metadata.parameters`` as the description says: the kernelspec's own properties, with
    every plugin's answer to ``eg_launch_parameters`` over them; none where nobody answers."""
    import json
    import shutil

    from eg_core.testing import plugin_site

    specs = tmp_path / "specs"
    shutil.copytree(Path(__file__).parent / "kernelspecs" / "tiny", specs / "tiny")
    kernel_json = specs / "tiny" / "kernel.json"
    own = {"properties": {"KERNEL_LEVEL": {"type": "string"}, "KERNEL_NOTE": {"type": "string"}}, "title": "Tiny"}
    kernel_json.write_text(json.dumps({**json.loads(kernel_json.read_text()), "metadata": {
        "kernel_provisioner": {"provisioner_name": "eg-local"}, "parameters": own}}))
    gw = gateway_factory(env=plugin_site(tmp_path / "site", {"levels": PARAMETERS_PLUGIN}), kernel_spec_dirs=[str(specs)])
    async with gw.client() as http:
        listed = await http.get("/api/kernelspecs")
        one = await http.get("/api/kernelspecs/tiny")
    check(spec, "/api/kernelspecs", "get", listed)
    check(spec, "/api/kernelspecs/{kernel_name}", "get", one)
    parameters = one.json()["spec"]["metadata"]["parameters"]
    assert parameters == listed.json()["kernelspecs"]["tiny"]["spec"]["metadata"]["parameters"]
    assert parameters == {"title": "Tiny", "$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": {
        "KERNEL_LEVEL": {"type": "integer", "minimum": 1, "maximum": 3}, "KERNEL_NOTE": {"type": "string"}}}
    assert "parameters" not in listed.json()["kernelspecs"]["python3"]["spec"]["metadata"]
