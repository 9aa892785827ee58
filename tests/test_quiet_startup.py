"""A gateway's console says only what the operator needs: a library's Python warnings become
log lines (once each, at DEBUG, in the configured format) and never break "one line naming the
mistake"; with every plugin installed and no backend reachable, startup imports no backend SDK
and says in one line what its sweep could not reach. Real gateway processes."""

from __future__ import annotations

import json
import re

import pytest

from eg_core.testing import gateway_exit

pytestmark = pytest.mark.timeout(120)

# A library that warns as it is imported, twice with the same text (as asyncssh does with a
# newer cryptography) and once with another.
NOISY_LIB = """
import warnings
warnings.warn("noisy-lib: DSA is deprecated", DeprecationWarning, stacklevel=1)
warnings.warn("noisy-lib: DSA is deprecated", DeprecationWarning, stacklevel=1)
warnings.warn("noisy-lib: this API will change", UserWarning, stacklevel=1)
"""
SDKS = ("asyncssh", "docker", "kubernetes", "requests", "httpx",
        "yarn_api_client", "jinja2")


@pytest.fixture
def noisy(tmp_path):
    """A config file that imports the noisy library; env that lets it be found and shown."""
    (tmp_path / "noisy_lib.py").write_text(NOISY_LIB)
    config = tmp_path / "eg_noisy_config.py"
    config.write_text("import noisy_lib\n")
    return config, {"PYTHONPATH": str(tmp_path), "PYTHONWARNINGS": "default"}


async def test_a_librarys_warnings_are_not_on_the_console(gateway_factory, noisy):
    config, env = noisy
    gw = gateway_factory(f"--config={config}", env=env)
    async with gw.client() as http:
        assert (await http.get("/api")).status_code == 200
    assert "noisy-lib" not in gw.output() and "Warning" not in gw.output(), gw.output()


async def test_with_debug_each_warning_is_one_log_line(gateway_factory, noisy):
    config, env = noisy
    gw = gateway_factory(f"--config={config}", "--debug", env=env)
    async with gw.client() as http:
        assert (await http.get("/api")).status_code == 200
    lines = [line for line in gw.output().splitlines() if "noisy-lib" in line]
    assert len(lines) == 2, gw.output()
    assert all(re.match(r"\[D [^\]]* eg\.warnings\] ", line) for line in lines), lines
    assert "DeprecationWarning: noisy-lib: DSA is deprecated" in lines[0]


async def test_json_logs_carry_warnings_as_json(gateway_factory, noisy):
    config, env = noisy
    gw = gateway_factory(f"--config={config}", "--debug", "--log-format=json", env=env)
    async with gw.client() as http:
        assert (await http.get("/api")).status_code == 200
    entries = [json.loads(line) for line in gw.output().splitlines() if line.strip()]
    warned = [e for e in entries if e["logger"] == "eg.warnings" and "noisy-lib" in e["message"]]
    assert [e["level"] for e in warned] == ["DEBUG", "DEBUG"], warned


def test_a_mistake_is_still_one_line_with_a_noisy_library(tmp_path, noisy):
    config, env = noisy
    config.write_text("import noisy_lib\nc.Gateway.max_kernel = 3\n")
    result = gateway_exit(tmp_path, "--no-auth", f"--config={config}", env=env)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert lines[0].startswith("eg-gateway: ") and "Gateway.max_kernel is not an option" in lines[0]


async def test_startup_imports_no_backend_sdk_and_names_unreachable_backends_in_one_line(gateway_factory, tmp_path):
    env = {
        "PYTHONPROFILEIMPORTTIME": "1",  # every module imported, on stderr
        "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
        "KUBERNETES_SERVICE_HOST": "",
        # a Slurm cluster the service tests run beside this one holds their jobs, which this
        # gateway's sweep would report: Slurm is not what this test looks at
        "EG_DISABLED_PLUGINS": "slurm",
    }
    # a gateway id of its own: kernels other tests' killed gateways left are not its orphans
    gw = gateway_factory(f"--LocalResourceManager.gateway_id=eg-quiet-{tmp_path.name[-12:]}", env=env)
    async with gw.client() as http:
        assert (await http.get("/api")).status_code == 200
    output = await gw.wait_for_output("Startup sweep")
    imported = {m.group(1) for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", output, re.M)}
    assert imported, "no import times in the output"
    assert not imported & set(SDKS), sorted(imported & set(SDKS))
    problems = [line for line in output.splitlines() if re.match(r"\[[WE] ", line)]
    assert len(problems) == 1, problems
    assert "Startup sweep for orphaned kernels could not reach: " in problems[0]
    assert f"docker (no Docker engine at unix://{tmp_path}/no-engine.sock)" in problems[0]
    assert "k8s (" in problems[0]
