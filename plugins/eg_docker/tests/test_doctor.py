"""``eg-gateway doctor`` against the test Docker engine: engine and image present; an image
missing; an engine that does not answer."""

from __future__ import annotations

from eg_core.testing import run_doctor

ONLY_DOCKER = {"EG_DISABLED_PLUGINS": "ssh,slurm,k8s,yarn"}


def test_engine_and_image_present(docker_host):
    result = run_doctor(env={**ONLY_DOCKER, "DOCKER_HOST": docker_host, "EG_ALLOWED_KERNELS": "python3,python_docker"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok    docker: engine {docker_host}: Docker " in result.stdout
    assert "ok    docker: kernelspec python_docker: image eg/kernel-py:local is present" in result.stdout


def test_missing_image(docker_host, kernel_spec_dirs):
    env = {**ONLY_DOCKER, "DOCKER_HOST": docker_host, "EG_ALLOWED_KERNELS": "python_docker,docker_missing_image"}
    result = run_doctor(env=env, kernel_spec_dirs=kernel_spec_dirs)
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if "docker_missing_image" in line)
    assert line.startswith("FAIL  docker: kernelspec docker_missing_image: image eg/no-such-image:never-built is not on the engine")
    assert "; fix: docker pull eg/no-such-image:never-built" in line
    assert "ok    docker: kernelspec python_docker" in result.stdout


def test_engine_not_answering(tmp_path):
    host = f"unix://{tmp_path}/no-docker.sock"
    result = run_doctor(env={**ONLY_DOCKER, "DOCKER_HOST": host, "EG_ALLOWED_KERNELS": "python_docker"})
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if "engine" in line)
    assert line.startswith(f"FAIL  docker: engine {host}: ") and "; fix: start the Docker engine" in line
    assert "kernelspec python_docker" not in result.stdout  # nothing more to check without an engine
