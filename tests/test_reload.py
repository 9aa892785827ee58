"""Changing limits and allow-lists without a restart: SIGHUP, or Enterprise Gateway's interval."""

from __future__ import annotations

import asyncio
import json
import signal

from eg_core.testing import KernelSocket


async def kernel_env(gw, kid: str) -> dict:
    ks = await KernelSocket.connect(gw, kid)
    out = await ks.execute("import os, json; print(json.dumps(dict(os.environ)))")
    await ks.close()
    return json.loads(out["stdout"])


async def test_sighup_reloads_limits_and_allow_lists(gateway_factory, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "eg_gateway_config.py").write_text("c.KernelLimits.max_kernels = 1\n")
    gw = gateway_factory(env={"JUPYTER_CONFIG_DIR": str(config)})
    async with gw.client() as http:
        first = await http.post("/api/kernels", json={"env": {"EXTRA_ALLOWED": "yes"}})
        assert first.status_code == 201
        assert "EXTRA_ALLOWED" not in await kernel_env(gw, first.json()["id"])
        assert (await http.post("/api/kernels", json={})).status_code == 403
        (config / "eg_gateway_config.py").write_text(
            "c.KernelLimits.max_kernels = 2\nc.Gateway.client_envs = ['EXTRA_ALLOWED']\n"
        )
        gw.proc.send_signal(signal.SIGHUP)
        for _ in range(50):
            if "Reloading configuration" in gw.output():
                break
            await asyncio.sleep(0.1)
        second = await http.post("/api/kernels", json={"env": {"EXTRA_ALLOWED": "yes"}})
        assert second.status_code == 201, second.text
        assert (await kernel_env(gw, second.json()["id"]))["EXTRA_ALLOWED"] == "yes"
        assert (await http.post("/api/kernels", json={})).status_code == 403
        for r in (first, second):
            await http.delete(f"/api/kernels/{r.json()['id']}")


async def test_interval_reload_and_cli_values_stay(gateway_factory, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "eg_gateway_config.py").write_text("c.KernelLimits.max_kernels = 1\n")
    gw = gateway_factory(
        "--Gateway.dynamic_config_interval=1", "--Gateway.default_kernel_name=python3",
        env={"JUPYTER_CONFIG_DIR": str(config)},
    )
    async with gw.client() as http:
        first = await http.post("/api/kernels", json={})
        assert (await http.post("/api/kernels", json={})).status_code == 403
        (config / "eg_gateway_config.py").write_text(
            "c.KernelLimits.max_kernels = 0\nc.Gateway.default_kernel_name = 'nope'\n"
        )
        for _ in range(60):
            if "Reloading configuration" in gw.output():
                break
            await asyncio.sleep(0.1)
        second = await http.post("/api/kernels", json={})  # the CLI's default_kernel_name stays
        assert second.status_code == 201, second.text
        for r in (first, second):
            await http.delete(f"/api/kernels/{r.json()['id']}")


async def test_broken_config_file_keeps_the_gateway_serving(gateway_factory, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "eg_gateway_config.py").write_text("c.KernelLimits.max_kernels = 1\n")
    gw = gateway_factory(env={"JUPYTER_CONFIG_DIR": str(config)})
    (config / "eg_gateway_config.py").write_text("this is not python(\n")
    gw.proc.send_signal(signal.SIGHUP)
    await asyncio.sleep(0.5)
    async with gw.client() as http:
        assert (await http.get("/api")).status_code == 200


async def test_sighup_says_what_changed_and_what_needs_a_restart(gateway_factory, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "eg_gateway_config.py").write_text("c.KernelLimits.max_kernels = 1\n")
    gw = gateway_factory(env={"JUPYTER_CONFIG_DIR": str(config)})
    # (the test's gateway has its port on the command line, which a config file does not change)
    (config / "eg_gateway_config.py").write_text("c.KernelLimits.max_kernels = 3\nc.Gateway.port_retries = 5\n")
    gw.proc.send_signal(signal.SIGHUP)
    output = await gw.wait_for_output("Configuration reloaded:")
    assert "Configuration reloaded: KernelLimits.max_kernels 1 -> 3" in output, output
    assert "Gateway.port_retries changed (0 -> 5), which takes effect only when the gateway restarts" in output
    async with gw.client() as http:  # still serving where it was
        assert (await http.get("/api/kernelspecs")).status_code == 200


def test_a_reload_logs_no_secret():
    from eg_core._server.app import Gateway, loggable

    traits = Gateway.class_traits()
    assert loggable("auth_token", traits["auth_token"], "s3cret") == "[secret]"
    assert loggable("port", traits["port"], 8888) == "8888"
    from traitlets import Unicode

    assert loggable("webhook_password", Unicode(), "pw") == "[secret]"
