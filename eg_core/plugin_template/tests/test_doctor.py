"""``eg-gateway doctor`` runs this plugin's checks."""

from eg_core.testing import run_doctor


def test_doctor_checks_the_kernelspec():
    result = run_doctor(env={"EG_ALLOWED_KERNELS": "python_hostproc"})
    assert "ok    hostproc: kernelspec python_hostproc: " in result.stdout, result.stdout + result.stderr
