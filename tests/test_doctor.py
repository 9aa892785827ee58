"""``eg-gateway doctor``: one line per check with the fix for each failure, exit status 1 on any
failure. The local resource manager here; each plugin tests its own checks against its backend."""

from __future__ import annotations

import json
import logging

from jupyter_client.kernelspec import KernelSpecManager

from eg_core import hookimpl
from eg_core._runtime.catalog import KernelSpecCatalog
from eg_core._server.doctor_command import run_checks
from eg_core.doctor import Check
from eg_core._runtime.plugins import get_plugin_manager
from eg_core.testing import run_doctor

ONLY_LOCAL = {"EG_DISABLED_PLUGINS": "ssh,docker,slurm,k8s,yarn"}


def write_spec(root, name, argv, provisioner=None):
    spec = {"display_name": name, "language": "python", "argv": argv}
    if provisioner:
        spec["metadata"] = {"kernel_provisioner": {"provisioner_name": provisioner}}
    (root / name).mkdir()
    (root / name / "kernel.json").write_text(json.dumps(spec))


def test_local_kernelspecs_ok(tmp_path):
    result = run_doctor(env=ONLY_LOCAL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok    local: kernelspec python3: " in result.stdout and "runs -m ipykernel_launcher" in result.stdout
    assert result.stdout.rstrip().endswith("0 failed")


def test_failures_name_the_fix_and_fail_the_command(tmp_path):
    write_spec(tmp_path, "no_program", ["/nonexistent/kernel-program", "{connection_file}"])
    write_spec(tmp_path, "no_module", ["python", "-m", "no_such_kernel_launcher", "-f", "{connection_file}"])
    write_spec(tmp_path, "no_rm", ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"], provisioner="eg-nosuchrm")
    (tmp_path / "bad_json").mkdir()
    (tmp_path / "bad_json" / "kernel.json").write_text('{"argv": ["python",], }')
    result = run_doctor(env=ONLY_LOCAL, kernel_spec_dirs=[str(tmp_path)])
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    by_spec = {name: [line for line in lines if f"kernelspec {name}:" in line]
               for name in ("no_program", "no_module", "no_rm", "bad_json", "python3")}
    assert all(len(found) == 1 for found in by_spec.values()), lines
    assert by_spec["no_program"][0].startswith("FAIL  local:")
    assert "'/nonexistent/kernel-program' does not exist; fix: install the kernel's program there, or fix argv[0] in " in by_spec["no_program"][0]
    assert by_spec["no_module"][0].startswith("FAIL  local:") and "fix: " in by_spec["no_module"][0]
    assert "pip install no_such_kernel" in by_spec["no_module"][0]
    assert by_spec["no_rm"][0].startswith("FAIL  kernelspecs:") and "'nosuchrm' resource manager" in by_spec["no_rm"][0]
    assert "; fix: " in by_spec["no_rm"][0] and "plugins/eg_nosuchrm" not in by_spec["no_rm"][0]
    assert by_spec["bad_json"][0].startswith("FAIL  kernelspecs:") and "cannot be read" in by_spec["bad_json"][0]
    assert "bad_json/kernel.json: JSONDecodeError" in by_spec["bad_json"][0] and "; fix: correct its kernel.json" in by_spec["bad_json"][0]
    assert by_spec["python3"][0].startswith("ok    local:")
    assert lines[-1] == f"{len(lines) - 1} checks, 4 failed"


async def test_a_plugin_that_raises_or_hangs_is_a_failed_check(tmp_path, monkeypatch):
    monkeypatch.setattr("eg_core._server.doctor_command.PLUGIN_TIMEOUT", 0.5)

    class Broken:
        @hookimpl
        def eg_doctor(self, kernels):
            raise RuntimeError("backend library missing")

    class Hangs:
        @hookimpl
        async def eg_doctor(self, kernels):
            import asyncio

            await asyncio.sleep(30)

    class Fine:
        @hookimpl
        def eg_doctor(self, kernels):
            return [Check("thing", True, f"{len(kernels)} kernelspecs")]

    pm = get_plugin_manager(load_entrypoints=False)
    for name, plugin in (("broken", Broken()), ("hangs", Hangs()), ("fine", Fine())):
        pm.register(plugin, name=name)
    write_spec(tmp_path, "tiny", ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"])
    catalog = KernelSpecCatalog(KernelSpecManager(kernel_dirs=[str(tmp_path)], ensure_native_kernel=False), {"local"}, logging.getLogger("test"))
    found = {name: check for name, check in await run_checks(pm, catalog)}
    assert not found["broken"].ok and "RuntimeError: backend library missing" in found["broken"].detail
    assert not found["hangs"].ok and "no answer within 0.5s" in found["hangs"].detail
    assert found["fine"].ok and found["fine"].detail == "0 kernelspecs"  # only its own kernelspecs
    assert found["local"].ok and found["local"].line("local").startswith("ok    local: kernelspec tiny")


def test_slurm_commands_missing_say_install_them(tmp_path):
    import pytest

    if "slurm" not in {ep.name for ep in __import__("importlib.metadata").metadata.entry_points(group="eg.plugins")}:
        pytest.skip("eg-slurm is not installed")
    result = run_doctor(env={"EG_DISABLED_PLUGINS": "ssh,docker,k8s,yarn", "PATH": str(tmp_path)})
    line = next(line for line in result.stdout.splitlines() if "slurm: controller" in line)
    assert line.startswith("FAIL  slurm: controller: scontrol is not found on the gateway's PATH"), line
    assert "fix: install Slurm's client commands" in line and "slurmctld" not in line
