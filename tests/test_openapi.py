"""The OpenAPI description stays true: valid, every route documented, real answers match it."""

from __future__ import annotations

import re

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec

from eg_core.handlers import api_routes
from eg_core.websocket import websocket_route


@pytest.fixture(scope="module")
def spec():
    import json
    from pathlib import Path

    import eg_core

    return json.loads((Path(eg_core.__file__).parent / "api" / "swagger.json").read_text())


def _route_regexes():
    from eg_core.plugins import get_plugin_manager

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
