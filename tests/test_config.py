"""Configuration: Enterprise Gateway's EG_* environment names, CLI flags and config files."""

from __future__ import annotations

import subprocess
import sys

from eg_core._server.app import Gateway


def make(monkeypatch, env: dict[str, str], argv=()) -> Gateway:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    Gateway.clear_instance()
    app = Gateway()
    app.initialize(list(argv))
    return app


def test_eg_environment_names(monkeypatch, tmp_path):
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))
    app = make(
        monkeypatch,
        {
            "EG_IP": "127.0.0.2",
            "EG_PORT": "9999",
            "EG_AUTH_TOKEN": "tok",
            "EG_BASE_URL": "fake/path",
            "EG_LIST_KERNELS": "false",
            "EG_DEFAULT_KERNEL_NAME": "other",
            "EG_KERNEL_LAUNCH_TIMEOUT": "12.5",
            "EG_CLIENT_ENVS": "A,B",
            "EG_INHERITED_ENVS": "C",
            "EG_ALLOW_ORIGIN": "*",
            "EG_PORT_RANGE": "40000..41000",
            "EG_ALLOWED_KERNELS": "python3",
        },
    )
    assert (app.ip, app.port, app.auth_token, app.base_url) == ("127.0.0.2", 9999, "tok", "/fake/path/")
    assert app.list_kernels is False and app.default_kernel_name == "other"
    assert app.launch_timeout == 12.5
    assert (app.client_envs, app.inherited_envs) == (["A", "B"], ["C"])
    assert app.allow_origin == "*" and app.port_range == "40000..41000"
    assert app.allowed_kernelspecs == {"python3"}


def test_kg_fallback_and_cli_beats_env(monkeypatch, tmp_path):
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))
    app = make(monkeypatch, {"KG_PORT": "7777", "EG_IP": "127.0.0.3"}, ["--ip=127.0.0.4"])
    assert app.port == 7777 and app.ip == "127.0.0.4"


def test_config_file(monkeypatch, tmp_path):
    (tmp_path / "eg_gateway_config.py").write_text("c.Gateway.port = 6543\nc.Gateway.client_envs = ['X']\n")
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))
    app = make(monkeypatch, {"EG_PORT": "1111"})
    assert app.port == 6543 and app.client_envs == ["X"]


def test_help_all_lists_options_with_env_names():
    out = subprocess.run([sys.executable, "-m", "eg_core", "--help-all"], capture_output=True, text=True, check=True).stdout
    for option in ("--Gateway.port", "--Gateway.auth_token", "--Gateway.client_envs", "--Gateway.launch_timeout"):
        assert option in out
    assert "EG_PORT" in out and "EG_CLIENT_ENVS" in out


def test_bad_port_range_is_refused_at_start(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "eg_core", "--Gateway.port_range=10..20", "--no-auth"],
        capture_output=True, text=True, env={"JUPYTER_CONFIG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=60,
    )
    assert r.returncode != 0
    assert "port range '10..20' must satisfy" in r.stderr
