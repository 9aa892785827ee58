"""``eg-gateway doctor`` with eg-yarn: the RM answering and each kernelspec's queue and submit
command checked against the emulated ResourceManager; an RM that is down is a failed check."""

from __future__ import annotations

from eg_core.testing import run_doctor


def test_doctor_checks_the_resource_manager_and_kernelspecs(rm, kernel_spec_dirs, hadoop_conf):
    result = run_doctor(f"--YarnSettings.yarn_endpoint={rm.url}", kernel_spec_dirs=kernel_spec_dirs,
                        env={"HADOOP_CONF_DIR": str(hadoop_conf), "EG_DISABLED_PLUGINS": "docker,ssh,slurm"})
    lines = result.stdout.splitlines()
    assert f"ok    yarn: ResourceManager {rm.url}: answers" in lines, result.stdout
    assert "ok    yarn: kernelspec python_yarn_rest: rest to queue 'default'" in lines, result.stdout
    assert "ok    yarn: kernelspec spark_python_yarn_cluster: spark-submit to queue 'default'" in lines, result.stdout
    assert any(line.startswith("FAIL  yarn: ResourceManager http://127.0.0.1:") and "fix: start the ResourceManager" in line
               for line in lines), result.stdout  # yarn_rest_unreachable's endpoint
    assert result.returncode == 1
