"""asyncssh stays out of a gateway that logs in to no host: importing the plugin does not load
it, nor does the startup sweep without ``remote_hosts``; when no host answers the sweep, it
reports ssh unreachable. Fresh interpreters, real imports; no sshd needed."""

from __future__ import annotations

import os

from eg_core.testing import free_port, fresh_python, startup_sweep

SDK = ("asyncssh",)


def sweep_env(home, **values: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("EG_")}, "HOME": str(home), **values}


def test_importing_the_plugin_loads_no_sdk():
    assert fresh_python("import eg_ssh.plugin", SDK).loaded == []


def test_startup_sweep_without_hosts_loads_no_sdk(tmp_path):
    swept = startup_sweep("eg_ssh.plugin", SDK, sweep_env(tmp_path))
    assert (swept.answer, swept.loaded) == ({}, [])


def test_startup_sweep_reaching_no_host_reports_ssh_unreachable(tmp_path):
    port = free_port()  # no sshd there
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    env = sweep_env(tmp_path, EG_REMOTE_HOSTS=f"127.0.0.1:{port}", EG_SSH_KNOWN_HOSTS=str(known_hosts))
    swept = startup_sweep("eg_ssh.plugin", SDK, env)
    assert f"@127.0.0.1:{port}: cannot connect to 127.0.0.1:{port}" in swept.answer["ssh"], swept
