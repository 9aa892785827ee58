"""eg_core's rooms hold: no import circle, each room imports only the rooms below it, and public
is a spelling rule (no name part starting with ``_``). See docs/contributors/layout.md."""

from __future__ import annotations

import ast
from pathlib import Path

import eg_core

CORE = Path(eg_core.__file__).resolve().parent
# Who may import whom, room by room (a room always imports itself). The public kit is the
# top-level modules without a leading underscore; the rooms below it are private by name.
ROOMS = {
    "kit": {"runtime"},
    "runtime": {"kit"},
    "builtin": {"kit"},
    "server": {"kit", "runtime", "builtin"},
    "testing": {"kit", "runtime", "server", "builtin"},
}
# Doors through a wall, each for one reason: the warm pools start kernels outside any request,
# as part of the kernel registry; eg_core.web hands plugins the server's base handler class.
DOORS = {
    ("eg_core._builtin._pools", "runtime"),
    ("eg_core._builtin.pools", "runtime"), ("eg_core.web", "server"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in CORE.rglob("*.py") if "plugin_template" not in p.parts}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every eg_core module ``name`` imports, at any depth (functions and TYPE_CHECKING blocks too)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _room(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "kit"
    return {"_runtime": "runtime", "_server": "server", "__main__": "server", "_builtin": "builtin", "testing": "testing"}.get(
        parts[1], "kit" if not parts[1].startswith("_") else "unknown"
    )


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_no_import_circle_inside_eg_core():
    assert _circles(_graph()) == []


def test_the_scan_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_module_is_in_a_room():
    assert [m for m in _graph() if _room(m) == "unknown"] == []


def test_each_room_imports_only_the_rooms_below_it():
    bad = []
    for module, imported in sorted(_graph().items()):
        room = _room(module)
        for target in sorted(imported):
            other = _room(target)
            if other != room and other not in ROOMS[room] and (module, other) not in DOORS:
                bad.append(f"{module} ({room}) imports {target} ({other})")
    assert bad == []


def test_public_is_a_spelling_rule():
    """The public modules are exactly eg_core's top-level modules without a leading underscore
    (``kernelspecs`` holds the kernelspecs and the launcher, which kernels run, not plugins)."""
    top = {_module_name(p) for p in CORE.glob("*.py")} | {_module_name(p.parent) for p in CORE.glob("*/__init__.py")}
    spelled = {m for m in top if not any(part.startswith("_") for part in m.split(".")[1:])}
    assert spelled - {"eg_core"} and set(eg_core.PUBLIC_MODULES) == spelled


def test_every_directory_the_wheel_holds_is_a_listed_package():
    """setuptools warns on install about a directory inside a package that is not listed itself
    (eg's data: the API spec, kernelspecs, the plugin template), and the operator sees it."""
    import tomllib

    setuptools = tomllib.loads((CORE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    roots = {"eg_core": CORE, **{name: CORE.parent / path for name, path in setuptools["package-dir"].items()}}
    found = set()
    for name, root in roots.items():
        for directory in [root, *(p for p in root.rglob("*") if p.is_dir())]:
            rel = directory.relative_to(root).parts
            if "__pycache__" in rel or not any(f.is_file() for f in directory.iterdir()):
                continue
            found.add(".".join((name, *rel)))
    assert sorted(found - listed) == []


def test_plugins_wheels_hold_no_unlisted_directory():
    """The same for each plugin: its kernelspec directories are packages (``packages.find`` with
    ``namespaces``) or listed, so ``pip install ./plugins/eg_x`` prints no setuptools warning."""
    import tomllib

    bad = []
    for pyproject in sorted((CORE.parent / "plugins").glob("*/pyproject.toml")):
        setuptools = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]
        find = setuptools.get("packages", {}).get("find") if isinstance(setuptools.get("packages"), dict) else None
        find = find or setuptools.get("packages.find")
        if find is not None:
            if not find.get("namespaces", True):
                bad.append(f"{pyproject.parent.name}: packages.find without namespaces")
            continue
        listed = set(setuptools["packages"])
        for package in listed:
            root = pyproject.parent / package.replace(".", "/")
            for directory in (p for p in root.rglob("*") if p.is_dir() and "__pycache__" not in p.parts):
                name = ".".join((package, *directory.relative_to(root).parts))
                if name not in listed and any(f.is_file() for f in directory.iterdir()):
                    bad.append(f"{pyproject.parent.name}: {name} is not listed")
    assert bad == []
