"""Configuration mistakes stop the gateway: it exits non-zero with one line that names the file,
option or variable and says what to fix (a real eg-gateway process each time)."""

from __future__ import annotations

import pytest

from eg_core.testing import GatewayProcess, gateway_exit

CASES = [
    # (id, files to write in the config dir, extra args, env, words the line must contain)
    ("python-syntax", {"eg_gateway_config.py": "c.Gateway.port = (\n"}, [], {}, ["eg_gateway_config.py, line 1", "fix the Python syntax"]),
    ("python-error", {"eg_gateway_config.py": "c.Gateway.port = 1\nc.Gateway.ip = undefined_name\n"}, [], {},
     ["eg_gateway_config.py, line 2", "NameError", "undefined_name"]),
    ("bad-json", {"eg_gateway_config.json": '{"Gateway": {"port": 1,}}'}, [], {}, ["eg_gateway_config.json", "not valid JSON"]),
    ("missing-config-path", {}, ["--config=/no/such/eg_config.py"], {}, ["--config /no/such/eg_config.py", "no such file"]),
    ("unknown-option-file", {"eg_gateway_config.py": "c.Gateway.max_kernel = 3\n"}, [], {},
     ["eg_gateway_config.py", "Gateway.max_kernel is not an option", "did you mean"]),
    ("unknown-section-file", {"eg_gateway_config.py": "c.Gatway.port = 3\n"}, [], {}, ["c.Gatway is not an eg configuration section", "did you mean Gateway?"]),
    ("unknown-option-cli", {}, ["--Gateway.prot=9"], {}, ["command line: Gateway.prot is not an option", "did you mean Gateway.port?"]),
    ("misspelt-alias", {}, ["--prot", "18892"], {}, ["command line: --prot is not an option of eg-gateway", "did you mean --port?"]),
    ("misspelt-alias-equals", {}, ["--prot=18892"], {}, ["--prot is not an option of eg-gateway", "did you mean --port?"]),
    ("stray-argument", {}, ["18892"], {}, ["'18892' is not an option", "remove it"]),
    ("disabled-plugin-other-name", {}, [], {"EG_DISABLED_PLUGINS": "kubernetes"},
     ["EG_DISABLED_PLUGINS", "'kubernetes' is not the name of a plugin", "did you mean 'k8s'?"]),
    ("disabled-plugin-typo", {}, ["--Gateway.disabled_plugins=['dokcer']"], {}, ["'dokcer' is not the name of a plugin", "did you mean 'docker'?"]),
    ("wrong-type-file", {"eg_gateway_config.py": "c.Gateway.port = 'http'\n"}, [], {}, ["eg_gateway_config.py", "expected an int", "fix this value"]),
    ("env-port", {}, [], {"EG_PORT": "abc"}, ["EG_PORT='abc'", "Gateway.port expects an int", "fix or unset EG_PORT"]),
    ("env-plugin-setting", {}, [], {"EG_MAX_KERNELS": "lots"}, ["EG_MAX_KERNELS='lots'", "KernelLimits.max_kernels", "fix or unset"]),
    ("kernel-spec-dir", {}, ['--Gateway.kernel_spec_dirs=["/no/such/kernels"]'], {}, ["Gateway.kernel_spec_dirs", "/no/such/kernels", "is not a directory"]),
    ("certfile", {}, ["--certfile=/no/such/cert.pem"], {}, ["Gateway.certfile", "does not exist"]),
    ("users-file-json", {"users.json": "{alice: x}"}, ["--Gateway.users_file={dir}/users.json"], {}, ["Gateway.users_file", "not valid JSON"]),
]


@pytest.mark.parametrize("files,args,env,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_config_mistake_stops_the_gateway_with_one_line(tmp_path, files, args, env, words):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = gateway_exit(tmp_path, "--no-auth", *(a.format(dir=tmp_path) for a in args), env=env)
    assert result.returncode != 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("eg-gateway: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


EG_CONFIG_WITH_MISTAKES = """\
c.EnterpriseGatewayApp.port = 9999
c.EnterpriseGatewayApp.max_kernel = 3
c.EnterpriseGatewayApp.kernel_manager_class = 'x.Y'
c.EnterpriseGatewayAp.port = 9999
c.RemoteMappingKernelManager.cull_idle_timout = 600
c.Gateway.max_kernels = 3
c.Gatway.port = 3
"""


def test_every_mistake_of_a_config_is_reported_at_once(tmp_path):
    (tmp_path / "jupyter_enterprise_gateway_config.py").write_text(EG_CONFIG_WITH_MISTAKES)
    (tmp_path / "eg_gateway_config.py").write_text("c.KernelLimits.max_kernel = 3\n")
    result = gateway_exit(tmp_path, "--no-auth", "--Gateway.prot=1")
    assert result.returncode != 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("eg-gateway: ")]
    expected = [
        "command line: Gateway.prot is not an option of eg: did you mean Gateway.port?",
        "c.EnterpriseGatewayApp.max_kernel is not an Enterprise Gateway option eg knows: did you mean c.EnterpriseGatewayApp.max_kernels?",
        "c.EnterpriseGatewayApp.kernel_manager_class has no eg equivalent",
        "c.EnterpriseGatewayAp is not an eg configuration section: did you mean EnterpriseGatewayApp?",
        "c.RemoteMappingKernelManager.cull_idle_timout is not an Enterprise Gateway option eg knows: "
        "did you mean c.RemoteMappingKernelManager.cull_idle_timeout?",
        "Gateway.max_kernels is not an option of eg",
        "c.Gatway is not an eg configuration section: did you mean Gateway?",
        "eg_gateway_config.py: KernelLimits.max_kernel is not an option of eg: did you mean KernelLimits.max_kernels?",
    ]
    for words in expected:
        assert sum(words in line for line in lines) == 1, (words, result.stderr)
    assert len(lines) == len(expected), result.stderr
    assert "Traceback" not in result.stderr


async def test_a_misspelt_variable_is_named_with_the_one_meant(tmp_path):
    gw = GatewayProcess(tmp_path, env={"EG_MAX_KERNEL_PER_USER": "3", "EG_SOMETHING_OF_ENTERPRISE_GATEWAY": "1"})
    try:
        output = await gw.wait_for_output("is serving on")
    finally:
        gw.stop()
    assert "EG_MAX_KERNEL_PER_USER is set, but eg reads no such variable: did you mean EG_MAX_KERNELS_PER_USER?" in output
    assert "EG_SOMETHING_OF_ENTERPRISE_GATEWAY" not in output


def test_a_half_installed_plugin_stops_the_gateway_with_one_line(tmp_path):
    site = tmp_path / "site"
    dist_info = site / "eg_half-0.3.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: eg-half\nVersion: 0.3\n")
    (dist_info / "entry_points.txt").write_text("[eg.plugins]\nhalf = eg_half_missing_module.plugin\n")
    result = gateway_exit(tmp_path, "--no-auth", env={"PYTHONPATH": str(site)})
    assert result.returncode != 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "eg-gateway: plugin 'half' (eg-half 0.3) cannot be loaded: ModuleNotFoundError: No module named "
        "'eg_half_missing_module': reinstall eg-half, or disable it with EG_DISABLED_PLUGINS=half"
    ], result.stderr
