"""Coming from Enterprise Gateway: its config file and option names carry over (mapped, each
logged once) or are refused naming what to do; --generate-config writes a commented config."""

from __future__ import annotations

import pytest

from eg_core.testing import GatewayProcess, gateway_exit

EG_CONFIG = """\
c.EnterpriseGatewayApp.max_kernels = 1
c.EnterpriseGatewayApp.list_kernels = False
c.RemoteMappingKernelManager.cull_idle_timeout = 600
"""


async def test_enterprise_gateway_config_file_is_read_with_eg_names(tmp_path):
    (tmp_path / "jupyter_enterprise_gateway_config.py").write_text(EG_CONFIG)
    gw = GatewayProcess(tmp_path, "--MappingKernelManager.cull_interval=30", env={"JUPYTER_CONFIG_DIR": str(tmp_path)})
    try:
        async with gw.client() as http:
            assert (await http.get("/api/kernels")).status_code == 403  # list_kernels = False
            first = await http.post("/api/kernels", json={"name": "python3"})
            assert first.status_code == 201
            second = await http.post("/api/kernels", json={"name": "python3"})
            assert second.status_code == 403 and "max kernels limit has been set to 1" in second.json()["message"]
            await http.delete(f"/api/kernels/{first.json()['id']}")
        output = gw.output()
        for eg_name, ours in (
            ("c.EnterpriseGatewayApp.max_kernels", "c.KernelLimits.max_kernels"),
            ("c.EnterpriseGatewayApp.list_kernels", "c.Gateway.list_kernels"),
            ("c.RemoteMappingKernelManager.cull_idle_timeout", "c.KernelCuller.cull_idle_timeout"),
            ("c.MappingKernelManager.cull_interval", "c.KernelCuller.cull_interval"),
        ):
            assert output.count(f"Enterprise Gateway's {eg_name} read as {ours}") == 1, output
        assert "culling kernels idle for more than 600 s, checked every 30 s" in output
    finally:
        gw.stop()


@pytest.mark.parametrize(
    "line,words",
    [
        ("c.EnterpriseGatewayApp.kernel_manager_class = 'x.Y'", ["c.EnterpriseGatewayApp.kernel_manager_class has no eg equivalent", "plugins"]),
        ("c.EnterpriseGatewayApp.conductor_endpoint = 'http://x'", ["conductor_endpoint has no eg equivalent"]),
        ("c.EnterpriseGatewayApp.no_such_thing = 1", ["c.EnterpriseGatewayApp.no_such_thing is not an Enterprise Gateway option eg knows"]),
    ],
)
def test_enterprise_gateway_options_without_equivalent_are_refused(tmp_path, line, words):
    (tmp_path / "jupyter_enterprise_gateway_config.py").write_text(line + "\n")
    result = gateway_exit(tmp_path, "--no-auth")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("eg-gateway: ") and "jupyter_enterprise_gateway_config.py" in last
    for word in words:
        assert word in last, last


async def test_eg_spelling_wins_over_enterprise_gateway_spelling(tmp_path):
    (tmp_path / "eg_gateway_config.py").write_text(
        "c.KernelLimits.max_kernels_per_user = 0\nc.EnterpriseGatewayApp.max_kernels_per_user = 5\n"
    )
    gw = GatewayProcess(tmp_path, env={"JUPYTER_CONFIG_DIR": str(tmp_path)})
    try:
        async with gw.client() as http:
            r = await http.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 403 and "max kernels per user limit has been set to 0" in r.json()["message"]
    finally:
        gw.stop()
    assert "read as c.KernelLimits.max_kernels_per_user" not in gw.output()


async def test_generate_config_writes_a_config_that_changes_nothing_uncommented(tmp_path):
    import re

    import httpx

    result = gateway_exit(tmp_path, "--generate-config")
    assert result.returncode == 0, result.stderr
    path = tmp_path / "eg_gateway_config.py"
    text = path.read_text()
    for option in ("# c.Gateway.port = 8888", "# c.KernelLimits.max_kernels = 0",
                   "# c.ResponseListener.response_address = '127.0.0.1:8877'", "EG_PORT"):
        assert option in text
    # Lines that only an unset value means are left out (a token, the listener's bind address).
    assert "c.Gateway.auth_token =" not in text and "c.ResponseListener.bind_ip =" not in text
    assert "# c.ResponseListener.port_retries = 10" in text  # the computed default, as in effect
    gw = GatewayProcess(tmp_path, env={"JUPYTER_CONFIG_DIR": str(tmp_path)})
    gw.stop()
    assert "eg-gateway:" not in gw.output()

    path.write_text(re.sub(r"^# (c\.\w+\.\w+ = )", r"\1", text, flags=re.M))  # every line uncommented
    gw = GatewayProcess(tmp_path, token="", env={"JUPYTER_CONFIG_DIR": str(tmp_path), "EG_AUTH_TOKEN": "the-operators-token"})
    try:
        async with httpx.AsyncClient(base_url=gw.url) as http:
            assert (await http.get("/api/kernels", headers={"Authorization": "token the-operators-token"})).status_code == 200
        output = await gw.wait_for_output("Response listener on")
    finally:
        gw.stop()
    assert "Response listener on 127.0.0.1:" in output, output
    assert "generated one for this run" not in output


async def test_yarn_and_impersonation_options_reach_every_plugin_that_has_them(tmp_path):
    pytest.importorskip("eg_ssh")
    pytest.importorskip("eg_yarn")
    (tmp_path / "jupyter_enterprise_gateway_config.py").write_text(
        "c.EnterpriseGatewayApp.yarn_endpoint = 'http://127.0.0.1:1/ws/v1/cluster'\n"
        "c.EnterpriseGatewayApp.alt_yarn_endpoint = 'http://127.0.0.1:2/ws/v1/cluster'\n"
        "c.EnterpriseGatewayApp.yarn_endpoint_security_enabled = False\n"
        "c.EnterpriseGatewayApp.impersonation_enabled = True\n"
    )
    gw = GatewayProcess(tmp_path, env={"JUPYTER_CONFIG_DIR": str(tmp_path)})
    gw.stop()
    output = gw.output()
    for eg_name, ours in (
        ("yarn_endpoint", "c.YarnSettings.yarn_endpoint"),
        ("alt_yarn_endpoint", "c.YarnSettings.alt_yarn_endpoint"),
        ("yarn_endpoint_security_enabled", "c.YarnSettings.yarn_endpoint_security_enabled"),
        ("impersonation_enabled", "c.SSHResourceManager.impersonation_enabled"),
        ("impersonation_enabled", "c.YarnSettings.impersonation_enabled"),
    ):
        assert f"Enterprise Gateway's c.EnterpriseGatewayApp.{eg_name} read as {ours}" in output, output


def test_an_option_of_several_plugins_is_set_on_each_installed_one():
    import logging

    from traitlets.config import Config

    from eg_core._server.config_files import configurable_classes
    from eg_core._runtime.eg_compat import translate
    SSHResourceManager = pytest.importorskip("eg_ssh._settings").SSHResourceManager
    YarnSettings = pytest.importorskip("eg_yarn._settings").YarnSettings

    config = Config({"EnterpriseGatewayApp": {"impersonation_enabled": True}})
    log = logging.getLogger("test")
    both, problems = translate(config, "f.py", configurable_classes([SSHResourceManager, YarnSettings]), log)
    assert not problems and both.SSHResourceManager.impersonation_enabled and both.YarnSettings.impersonation_enabled
    yarn_only, problems = translate(config, "f.py", configurable_classes([YarnSettings]), log)
    assert not problems and "SSHResourceManager" not in yarn_only and yarn_only.YarnSettings.impersonation_enabled
    _, problems = translate(config, "f.py", {}, log)
    assert problems == ["f.py: c.EnterpriseGatewayApp.impersonation_enabled maps to c.SSHResourceManager.impersonation_enabled "
                        "and c.YarnSettings.impersonation_enabled, which no installed eg plugin provides: install the plugin "
                        "(eg-gateway plugins lists those installed) or remove the option"]


@pytest.mark.parametrize("class_name", [
    "enterprise_gateway.services.processproxies.spark_operator.SparkOperatorProcessProxy",
    "enterprise_gateway.services.processproxies.crd.CustomResourceProcessProxy",
    "enterprise_gateway.services.processproxies.conductor.ConductorClusterProcessProxy",
])
def test_process_proxies_eg_does_not_implement_are_refused_by_name(tmp_path, class_name):
    import json
    import logging

    from jupyter_client.kernelspec import KernelSpecManager

    from eg_core._runtime.catalog import KernelSpecCatalog
    from eg_core._runtime.errors import NotFound
    from eg_core._runtime.plugins import get_plugin_manager, kernelspec_aliases, resource_managers

    (tmp_path / "spark_operator").mkdir()
    (tmp_path / "spark_operator" / "kernel.json").write_text(json.dumps({
        "display_name": "Spark", "language": "python", "argv": ["python", "x"],
        "metadata": {"process_proxy": {"class_name": class_name}},
    }))
    pm = get_plugin_manager()
    ksm = KernelSpecManager(kernel_dirs=[str(tmp_path)])
    catalog = KernelSpecCatalog(ksm, set(resource_managers(pm)), logging.getLogger("test"), kernelspec_aliases(pm))
    assert "spark_operator" not in catalog.available()
    with pytest.raises(NotFound) as refused:
        catalog.get("spark_operator")
    short = class_name.rsplit(".", 1)[-1]
    assert f"asks for {short!r}" in refused.value.message
    assert "which no eg resource manager implements yet" in refused.value.message


async def test_a_spark_operator_kernelspec_is_refused_at_start(tmp_path):
    import json

    specs = tmp_path / "kernels"
    (specs / "spark_python_operator").mkdir(parents=True)
    (specs / "spark_python_operator" / "kernel.json").write_text(json.dumps({
        "display_name": "Spark - Python (Kubernetes Spark operator)", "language": "python", "argv": ["python", "x"],
        "metadata": {"process_proxy": {"class_name": "enterprise_gateway.services.processproxies.spark_operator.SparkOperatorProcessProxy"}},
    }))
    gw = GatewayProcess(tmp_path, kernel_spec_dirs=[str(specs)])
    try:
        async with gw.client() as http:
            assert "spark_python_operator" not in (await http.get("/api/kernelspecs")).json()["kernelspecs"]
            r = await http.post("/api/kernels", json={"name": "spark_python_operator"})
    finally:
        gw.stop()
    assert r.status_code == 404 and "'SparkOperatorProcessProxy'" in r.json()["message"]
    assert "which no eg resource manager implements yet" in r.json()["message"]
