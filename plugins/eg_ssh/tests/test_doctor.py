"""``eg-gateway doctor`` against the test sshd: a host that accepts the login with a known host
key and runs ipykernel; a host key missing from known_hosts; a host that does not answer."""

from __future__ import annotations

from eg_core.testing import run_doctor

ONLY_SSH = {"EG_DISABLED_PLUGINS": "docker,slurm,k8s,yarn", "EG_ALLOWED_KERNELS": "python3,python_ssh"}


def doctor_with(sshd, tmp_path, **settings):
    (tmp_path / "eg_gateway_config.py").write_text(sshd.gateway_config(**settings))
    return run_doctor(env={**ONLY_SSH, "JUPYTER_CONFIG_DIR": str(tmp_path)})


def test_reachable_host_with_known_key(sshd, tmp_path):
    result = doctor_with(sshd, tmp_path, hosts=["127.0.0.1"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok    ssh: host egtest@127.0.0.1:{sshd.port} (kernelspecs python_ssh): login ok, host key known; " in result.stdout
    assert "imports ipykernel" in result.stdout


def test_unknown_host_key_and_unreachable_host(sshd, tmp_path):
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    result = doctor_with(sshd, tmp_path, hosts=["127.0.0.1", "127.0.0.3"], known_hosts=str(empty))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(("ok", "FAIL  ssh"))]
    key = next(line for line in lines if "127.0.0.1" in line)
    assert key.startswith("FAIL  ssh: host egtest@127.0.0.1") and f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> {empty}" in key
    assert "; fix: " in key
    down = next(line for line in lines if "127.0.0.3" in line)
    assert down.startswith("FAIL  ssh: host egtest@127.0.0.3") and f"; fix: start sshd on 127.0.0.3:{sshd.port}" in down
