"""The launch parameters a ``docker`` kernelspec publishes (``metadata.parameters``) are what
its request validation accepts: every value the schema offers passes it, every value just
outside is refused with a 4xx naming the variable. The gateway is real; its engine address
answers nothing, so a request that passes validation fails only where the container would be
created (502: the engine cannot be reached), and nothing is created."""

from __future__ import annotations

import json
from pathlib import Path

from eg_core.testing import check_launch_parameters

UNREACHABLE = "tcp://127.0.0.1:1"


def passed_validation(r, variable, value):
    assert r.status_code == 502, (variable, value, r.text)
    assert f"cannot reach the Docker engine at {UNREACHABLE}" in r.json()["message"], (variable, value, r.text)


async def test_every_published_value_is_accepted_and_every_value_outside_refused(gateway_factory):
    gw = gateway_factory(
        f"--DockerSettings.docker_host={UNREACHABLE}", "--DockerSettings.max_cpus=2", "--DockerSettings.max_memory=1g",
        "--DockerSettings.prohibited_uids=[0, 7]",
        "--DockerSettings.allowed_images=" + json.dumps(["eg/kernel-py:local", "python:3.12-slim"]),
    )
    async with gw.client() as http:
        schema = await check_launch_parameters(http, "python_docker", accept=passed_validation)
    props = schema["properties"]
    assert props["KERNEL_CPUS"] == {"type": "number", "description": "CPUs of the container", "minimum": 0.01, "maximum": 2.0}
    assert props["KERNEL_MEMORY"]["maximum"] == 1024**3 and props["KERNEL_MEMORY"]["minimum"] == 6 * 1024**2
    assert props["KERNEL_UID"]["not"] == {"enum": [0, 7]} and props["KERNEL_UID"]["default"] == 1000
    assert props["KERNEL_IMAGE"]["enum"] == ["eg/kernel-py:local", "python:3.12-slim"]
    assert set(props) == {"KERNEL_IMAGE", "KERNEL_UID", "KERNEL_GID", "KERNEL_CPUS", "KERNEL_MEMORY", "KERNEL_GPUS"}


async def test_the_kernelspecs_allow_list_and_settings_shape_its_parameters(gateway_factory):
    """docker_settings allows volumes, labels and working_dir, has its own memory and CPUs (the
    defaults) and no image patterns: no KERNEL_IMAGE; no cap set, so the engine's bounds."""
    gw = gateway_factory(f"--DockerSettings.docker_host={UNREACHABLE}")
    async with gw.client() as http:
        schema = await check_launch_parameters(http, "docker_settings", accept=passed_validation)
    props = schema["properties"]
    assert props["KERNEL_CPUS"]["default"] == 0.5 and props["KERNEL_CPUS"]["maximum"] == 1024
    assert props["KERNEL_MEMORY"]["default"] == 256 * 1024**2 and "maximum" not in props["KERNEL_MEMORY"]
    assert {"KERNEL_VOLUMES", "KERNEL_LABELS", "KERNEL_WORKING_DIR"} <= set(props) and "KERNEL_IMAGE" not in props


async def test_a_kernelspec_whose_settings_are_not_valid_lists_without_parameters(gateway_factory, tmp_path):
    spec = json.loads((Path(__file__).parents[1] / "eg_docker" / "kernelspecs" / "python_docker" / "kernel.json").read_text())
    spec["metadata"]["kernel_provisioner"]["config"]["pull_policy"] = "sometimes"
    (tmp_path / "specs" / "docker_bad_policy").mkdir(parents=True)
    (tmp_path / "specs" / "docker_bad_policy" / "kernel.json").write_text(json.dumps(spec))
    gw = gateway_factory(f"--DockerSettings.docker_host={UNREACHABLE}", kernel_spec_dirs=[str(tmp_path / "specs")])
    async with gw.client() as http:
        listed = await http.get("/api/kernelspecs")
        assert listed.status_code == 200, listed.text
        assert "parameters" not in listed.json()["kernelspecs"]["docker_bad_policy"]["spec"]["metadata"]
        r = await http.post("/api/kernels", json={"name": "docker_bad_policy"})
        assert r.status_code == 400 and "config.pull_policy is not valid" in r.json()["message"], r.text
    assert "kernelspec docker_bad_policy: no launch parameters: kernelspec 'docker_bad_policy': config.pull_policy" in gw.output()
