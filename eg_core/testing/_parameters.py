"""Launch parameters (a kernelspec's ``metadata.parameters``): the schema checked, and requests
generated from it, each accepted or refused through the real API."""

from __future__ import annotations

from typing import Any


def check_parameters_schema(schema: dict) -> None:
    """Assert that ``schema`` (a kernelspec's ``metadata.parameters``) is a valid JSON Schema
    (draft-07, checked with ``jsonschema`` where it is installed, as with eg-core's ``test``
    extra) of an object whose properties are typed."""
    try:
        import jsonschema
    except ImportError:  # the structural part below still holds
        jsonschema = None
    if jsonschema is not None:
        jsonschema.Draft7Validator.check_schema(schema)
    assert schema["type"] == "object" and schema["properties"], schema
    for name, prop in schema["properties"].items():
        assert "type" in prop or "anyOf" in prop, f"{name}: no type"
        for branch in prop.get("anyOf", [prop]):
            assert branch.get("type", prop.get("type")) in ("string", "number", "integer", "boolean"), f"{name}: {branch}"
            if "minimum" in branch and "maximum" in branch:
                assert branch["minimum"] <= branch["maximum"], f"{name}: no value between minimum and maximum"


def _outside_number(prop: dict) -> list[Any]:
    outside: list[Any] = []
    if "maximum" in prop:
        outside.append(prop["maximum"] + 1)
    if "minimum" in prop and prop["minimum"] > 0:
        outside.append(prop["minimum"] - 1 if prop["minimum"] >= 1 else prop["minimum"] / 2)
    if "exclusiveMinimum" in prop:
        outside.append(prop["exclusiveMinimum"])
    return outside


def launch_parameter_cases(schema: dict) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """``(accepted, refused)``: ``(variable, value)`` pairs from a kernelspec's launch
    parameters. Accepted: each enum value, the minimum, the maximum and the default of every
    property (of each ``anyOf`` branch). Refused: a value just outside each bound, a value in
    no enum, each ``not.enum`` value, a string matching no ``pattern``, text for a number."""
    accepted: list[tuple[str, Any]] = []
    refused: list[tuple[str, Any]] = []
    for name, prop in schema["properties"].items():
        branches = [{**prop, **b} for b in prop.get("anyOf", [prop])]
        takes_text = any(b.get("type") == "string" and not ("enum" in b or "pattern" in b) for b in branches)
        for branch in branches:
            accepted += [(name, v) for v in branch.get("enum", [])]
            excluded = branch.get("not", {}).get("enum", [])
            accepted += [(name, branch[k]) for k in ("minimum", "maximum") if k in branch and branch[k] not in excluded]
            refused += [(name, v) for v in excluded]
            if branch.get("type") in ("number", "integer") and len(branches) == 1:
                refused += [(name, v) for v in _outside_number(branch)]
            if branch.get("type") == "string" and "enum" in branch and len(branches) == 1:
                refused.append((name, "not-one-of-them"))
            if branch.get("type") == "string" and "pattern" in branch:
                refused.append((name, "no such value!"))
        if "default" in prop:
            accepted.append((name, prop["default"]))
        if not takes_text and any(b.get("type") in ("number", "integer") for b in branches):
            refused.append((name, "lots"))
    accepted = list(dict.fromkeys(accepted))
    return accepted, [case for case in dict.fromkeys(refused) if case not in accepted]


async def check_launch_parameters(http, kernel_name: str, accept=None, env: dict | None = None) -> dict:
    """Read ``kernel_name``'s launch parameters from ``GET /api/kernelspecs/{name}`` (the same
    as in the listing), check the schema, and start a kernel with each value of
    :func:`launch_parameter_cases` (with ``env`` besides): each refused one must answer 400 or
    403 naming its variable; each accepted one must pass validation, which ``accept(response,
    variable, value)`` asserts (default: 201, and the kernel is shut down). Returns the schema."""
    one = await http.get(f"/api/kernelspecs/{kernel_name}")
    assert one.status_code == 200, one.text
    schema = one.json()["spec"]["metadata"]["parameters"]
    listed = (await http.get("/api/kernelspecs")).json()["kernelspecs"][kernel_name]
    assert listed["spec"]["metadata"]["parameters"] == schema
    check_parameters_schema(schema)
    accepted, refused = launch_parameter_cases(schema)
    for variable, value in accepted + refused:
        r = await http.post("/api/kernels", json={"name": kernel_name, "env": {**(env or {}), variable: str(value)}})
        if (variable, value) in refused:
            assert r.status_code in (400, 403), (variable, value, r.text)
            assert variable in r.json()["message"], (variable, value, r.text)
        elif accept is not None:
            accept(r, variable, value)
        else:
            assert r.status_code == 201, (variable, value, r.text)
            await http.delete(f"/api/kernels/{r.json()['id']}")
    return schema
