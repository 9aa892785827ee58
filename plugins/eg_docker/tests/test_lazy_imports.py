"""The ``docker`` package stays out of a gateway that runs no Docker kernel: importing the plugin
does not load it, nor does the startup sweep when there is plainly no engine (the engine is
reported unreachable instead). Fresh interpreters, real imports; no engine needed."""

from __future__ import annotations

import os

from eg_core.testing import fresh_python, startup_sweep

SDK = ("docker", "requests")


def test_importing_the_plugin_loads_no_sdk():
    assert fresh_python("import eg_docker.plugin", SDK).loaded == []


def test_startup_sweep_without_an_engine_reports_it_without_the_sdk(tmp_path):
    host = f"unix://{tmp_path}/docker.sock"  # no engine there
    swept = startup_sweep("eg_docker.plugin", SDK, {**os.environ, "DOCKER_HOST": host, "HOME": str(tmp_path)})
    assert (swept.answer, swept.loaded, swept.stderr) == ({"docker": f"no Docker engine at {host}"}, [], "")
