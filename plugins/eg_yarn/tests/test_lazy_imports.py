"""requests and yarn-api-client stay out of a gateway with no YARN cluster: importing the plugin
does not load them, nor does the startup sweep when no ResourceManager is configured; one that
does not answer is reported unreachable. Fresh interpreters, real imports; no cluster needed."""

from __future__ import annotations

import os

from eg_core.testing import free_port, fresh_python, startup_sweep

SDK = ("requests", "yarn_api_client")


def sweep_env(conf_dir, **values: str) -> dict[str, str]:
    """No YARN configuration but ``values``: an empty ``YARN_CONF_DIR``, no ``EG_*`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EG_") and k != "HADOOP_CONF_DIR"}
    return {**env, "YARN_CONF_DIR": str(conf_dir), **values}


def test_importing_the_plugin_loads_no_sdk():
    assert fresh_python("import eg_yarn.plugin", SDK).loaded == []


def test_startup_sweep_without_a_cluster_loads_no_sdk(tmp_path):
    swept = startup_sweep("eg_yarn.plugin", SDK, sweep_env(tmp_path))
    assert (swept.answer, swept.loaded) == ({}, [])


def test_startup_sweep_reports_a_resource_manager_that_does_not_answer(tmp_path):
    endpoint = f"http://127.0.0.1:{free_port()}/ws/v1/cluster"  # nothing listens there
    swept = startup_sweep("eg_yarn.plugin", SDK, sweep_env(tmp_path, EG_YARN_ENDPOINT=endpoint))
    assert endpoint in swept.answer["yarn"], swept
