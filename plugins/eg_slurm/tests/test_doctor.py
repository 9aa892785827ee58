"""``eg-gateway doctor`` against the real Slurm cluster: the controller, each kernelspec's
settings and partition; and a controller that does not answer."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from eg_core.testing import run_doctor

ONLY_SLURM = {"EG_DISABLED_PLUGINS": "ssh,docker,k8s,yarn"}


def test_cluster_and_kernelspecs_ok(kernel_spec_dirs):
    result = run_doctor(env={**ONLY_SLURM, "EG_ALLOWED_KERNELS": "python3,python_slurm_test"}, kernel_spec_dirs=kernel_spec_dirs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^ok    slurm: controller: Slurmctld\(primary\) at \S+ is UP$", result.stdout, re.M), result.stdout
    assert "ok    slurm: kernelspec python_slurm_test: partition (default) is up" in result.stdout


def test_bad_kernelspecs_fail_with_the_fix(kernel_spec_dirs):
    result = run_doctor(env=ONLY_SLURM, kernel_spec_dirs=kernel_spec_dirs)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = {line.split(":")[1].strip(): line for line in result.stdout.splitlines() if line.startswith(("ok", "FAIL"))}
    assert lines["kernelspec slurm_bad_partition"].startswith("FAIL  slurm:")
    assert "partition nosuchpartition is unknown; fix: use a partition that is up (debug)" in lines["kernelspec slurm_bad_partition"]
    assert lines["kernelspec slurm_bad_config"].startswith("FAIL  slurm:") and "partition" in lines["kernelspec slurm_bad_config"]
    assert lines["kernelspec python_slurm_test"].startswith("ok")
    assert result.stdout.rstrip().endswith("2 failed")


def test_controller_down(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = Path("/etc/slurm/slurm.conf").read_text()
    (tmp_path / "slurm.conf").write_text(conf + f"SlurmctldPort={port}\n")
    result = run_doctor(env={**ONLY_SLURM, "SLURM_CONF": str(tmp_path / "slurm.conf")})
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if "slurm: controller" in line)
    assert line.startswith("FAIL  slurm: controller:") and "is DOWN" in line and "; fix: start slurmctld" in line
