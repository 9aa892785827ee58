"""The plugin is discovered through its entry points; its settings (Enterprise Gateway's env
names, config, kernelspec overrides); the host policies. No sshd needed."""

from __future__ import annotations

import subprocess
import sys

import pytest
from jupyter_client.provisioning.factory import KernelProvisionerFactory
from traitlets.config import Config

from eg_core import BadRequest, KernelContext, LaunchRefused
from eg_core.testing import plugin_manager, resource_manager_of, resource_managers
from eg_ssh import SSHResourceManager
from eg_ssh._hosts import HostTable
from eg_ssh._remote import prepare_argv
from eg_ssh._settings import remote_user, resolve, split_host


def test_entry_points_discovered():
    pm = plugin_manager()
    assert pm.has_plugin("ssh") and "ssh" in resource_managers(pm)
    assert "eg-ssh" in KernelProvisionerFactory.instance().get_provisioner_entries()
    out = subprocess.run([sys.executable, "-m", "eg_core", "plugins"], capture_output=True, text=True, check=True).stdout
    assert "ssh  (resource manager; eg-ssh" in out


def test_help_all_lists_settings_with_env_names():
    out = subprocess.run([sys.executable, "-m", "eg_core", "--help-all"], capture_output=True, text=True, check=True).stdout
    for option, env in [
        ("--SSHResourceManager.remote_hosts", "EG_REMOTE_HOSTS"),
        ("--SSHResourceManager.load_balancing_algorithm", "EG_LOAD_BALANCING_ALGORITHM"),
        ("--SSHResourceManager.remote_user", "EG_REMOTE_USER"),
        ("--SSHResourceManager.ssh_port", "EG_SSH_PORT"),
        ("--SSHResourceManager.impersonation_enabled", "EG_IMPERSONATION_ENABLED"),
        ("--SSHResourceManager.kernel_log_dir", "EG_KERNEL_LOG_DIR"),
        ("--SSHResourceManager.known_hosts", "EG_SSH_KNOWN_HOSTS"),
    ]:
        assert option in out
        assert env in out.split(option, 1)[1].split("--", 1)[0]


def test_kernelspec_forms_map_to_ssh():
    assert resource_manager_of({"metadata": {"kernel_provisioner": {"provisioner_name": "eg-ssh", "config": {"a": 1}}}}) == ("ssh", {"a": 1})
    proxy = "enterprise_gateway.services.processproxies.distributed.DistributedProcessProxy"
    assert resource_manager_of({"metadata": {"process_proxy": {"class_name": proxy}}}) == ("ssh", {})


@pytest.fixture
def settings(monkeypatch):
    def make(env=None, **config):
        for name in ("EG_REMOTE_HOSTS", "EG_LOAD_BALANCING_ALGORITHM", "EG_REMOTE_USER", "EG_SSH_PORT",
                     "EG_IMPERSONATION_ENABLED", "EG_KERNEL_LOG_DIR"):
            monkeypatch.delenv(name, raising=False)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        SSHResourceManager.clear_instance()
        c = Config()
        for k, v in config.items():
            setattr(c.SSHResourceManager, k, v)
        return SSHResourceManager.instance(config=c)

    yield make
    SSHResourceManager.clear_instance()


def ctx(config=None, env=None, user="") -> KernelContext:
    return KernelContext(
        kernel_id="k", kernel_name="spec", resource_manager="ssh", config=config or {}, env=env or {}, user=user, user_from_request=bool(user)
    )


def test_enterprise_gateway_environment_names(settings):
    rm = settings(
        {
            "EG_REMOTE_HOSTS": "a, b,c",
            "EG_LOAD_BALANCING_ALGORITHM": "least-connection",
            "EG_REMOTE_USER": "kernels",
            "EG_SSH_PORT": "2222",
            "EG_IMPERSONATION_ENABLED": "True",
            "EG_KERNEL_LOG_DIR": "/var/log/k",
        }
    )
    assert rm.remote_hosts == ["a", "b", "c"] and rm.load_balancing_algorithm == "least-connection"
    assert (rm.remote_user, rm.ssh_port, rm.impersonation_enabled, rm.kernel_log_dir) == ("kernels", 2222, True, "/var/log/k")


def test_config_beats_environment(settings):
    rm = settings({"EG_REMOTE_HOSTS": "a,b", "EG_SSH_PORT": "2222"}, remote_hosts=["x"])
    assert rm.remote_hosts == ["x"] and rm.ssh_port == 2222


def test_invalid_algorithm_is_refused(settings):
    with pytest.raises(Exception, match="round-robin"):
        settings({"EG_LOAD_BALANCING_ALGORITHM": "random"})


def test_kernelspec_config_overrides(settings):
    settings(remote_hosts=["a"], ssh_port=22, remote_user="u")
    s = resolve(ctx({"remote_hosts": "h1, h2", "ssh_port": "2200", "remote_user": "v", "port_range": "x", "keep_kernel_logs": "true"}))
    assert (s.remote_hosts, s.ssh_port, s.remote_user, s.keep_kernel_logs) == (("h1", "h2"), 2200, "v", True)
    with pytest.raises(BadRequest, match="config.impersonation_enabled is a gateway-wide setting"):
        resolve(ctx({"impersonation_enabled": True}))
    with pytest.raises(BadRequest, match="config.ssh_port"):
        resolve(ctx({"ssh_port": "twenty"}))
    with pytest.raises(BadRequest, match="load_balancing_algorithm"):
        resolve(ctx({"load_balancing_algorithm": "random"}))
    with pytest.raises(BadRequest, match="no remote hosts"):
        resolve(ctx({"remote_hosts": ""}))


def test_split_host():
    assert split_host("h", 22) == ("h", 22)
    assert split_host("h:2222", 22) == ("h", 2222)
    assert split_host("[::1]:2200", 22) == ("::1", 2200)
    assert split_host("::1", 22) == ("::1", 22)
    with pytest.raises(BadRequest):
        split_host("h:x", 22)


def test_remote_user_and_impersonation(settings):
    settings(remote_user="svc")
    s = resolve(ctx())
    assert remote_user(ctx(env={"KERNEL_USERNAME": "alice"}, user="alice"), s) == "svc"
    settings(remote_user="svc", impersonation_enabled=True)
    s = resolve(ctx())
    assert remote_user(ctx(env={"KERNEL_USERNAME": "alice"}, user="alice"), s) == "alice"
    with pytest.raises(LaunchRefused):
        settings(remote_user="svc", impersonation_enabled=True, prohibited_users=["alice"])
        remote_user(ctx(env={"KERNEL_USERNAME": "alice"}, user="alice"), s)
    with pytest.raises(BadRequest):
        remote_user(ctx(env={"KERNEL_USERNAME": "Bad Name"}, user="Bad Name"), s)


def test_prepare_argv():
    argv, at = prepare_argv(["python", "{launcher}", "--kernel-id", "k"], "/opt/py", True)
    assert argv == ["/opt/py", "{launcher}", "--kernel-id", "k"] and at == [1]
    argv, at = prepare_argv(["python", "/usr/local/share/x/scripts/launch_ipykernel.py", "--a"], "py3", True)
    assert at == [1]
    argv, at = prepare_argv(["python", "/usr/local/share/x/scripts/launch_ipykernel.py"], "py3", False)
    assert at == []
    argv, at = prepare_argv(["/usr/bin/env", "R", "launch_IRkernel.R"], "py3", True)
    assert argv[0] == "/usr/bin/env" and at == []


def test_round_robin_order_and_down_hosts():
    table = HostTable()
    hosts = ("a", "b", "c")
    assert [table.candidates(hosts, "round-robin")[0] for _ in range(4)] == ["a", "b", "c", "a"]
    table.mark_down("b", "refused", 30)
    assert table.candidates(hosts, "round-robin") == ["c", "a", "b"]  # b: tried last
    table.mark_up("b")
    assert table.candidates(hosts, "round-robin", previous="a")[0] == "a"  # a restart keeps its host


def test_least_connection_order():
    table = HostTable()
    hosts = ("a", "b")
    table.assign("a", "k1")
    assert table.candidates(hosts, "least-connection") == ["b", "a"]
    table.assign("b", "k2")
    table.assign("b", "k3")
    assert table.candidates(hosts, "least-connection") == ["a", "b"]
    table.release("k2")
    table.release("k3")
    assert table.candidates(hosts, "least-connection") == ["b", "a"]


def test_requested_host_must_be_configured():
    table = HostTable()
    assert table.candidates(("a", "b"), "round-robin", requested="b") == ["b"]
    with pytest.raises(BadRequest, match="not one of the remote hosts"):
        table.candidates(("a", "b"), "round-robin", requested="evil")
