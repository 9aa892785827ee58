"""``eg-gateway new-plugin NAME`` writes a package that installs and passes its own tests."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from eg_core._server.new_plugin import write

pytestmark = pytest.mark.timeout(900)


def test_generated_plugin_installs_and_passes_its_tests(tmp_path):
    made = subprocess.run([sys.executable, "-m", "eg_core", "new-plugin", "demo", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    package = tmp_path / "eg_demo"
    assert f"pip install -e {package}" in made.stdout
    files = sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file())
    assert files == [
        "README.md", "eg_demo/__init__.py", "eg_demo/_kernels.py", "eg_demo/_settings.py",
        "eg_demo/kernelspecs/python_demo/kernel.json", "eg_demo/plugin.py", "pyproject.toml",
        "tests/conftest.py", "tests/test_conformance.py", "tests/test_doctor.py", "tests/test_launch_key.py",
    ]
    assert not [f for f in files if "hostproc" in (package / f).read_text().lower()]

    # A fresh venv that sees this test environment's packages (eg-core, pytest) but not the
    # generated plugin until it is installed there: the shared test venv stays as it is.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (site / "eg-test-env.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(package)],
        capture_output=True, text=True, timeout=300,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    listed = subprocess.run([str(python), "-m", "eg_core", "plugins"], capture_output=True, text=True, timeout=60)
    assert "demo  (resource manager; eg-demo 0.1.0)" in listed.stdout, listed.stdout + listed.stderr

    tested = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                            cwd=package, capture_output=True, text=True, timeout=850)
    assert tested.returncode == 0, tested.stdout[-6000:] + tested.stderr[-3000:]
    assert " passed" in tested.stdout and "skipped" not in tested.stdout, tested.stdout[-2000:]


def test_bad_names_and_existing_directories_are_refused(tmp_path):
    with pytest.raises(ValueError, match="lower-case letters"):
        write("My-Plugin", tmp_path)
    write("ok_name", tmp_path)
    with pytest.raises(FileExistsError):
        write("ok_name", tmp_path)
    refused = subprocess.run([sys.executable, "-m", "eg_core", "new-plugin", "ok_name", "--dir", str(tmp_path)],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "exists" in refused.stderr
