"""The launch parameters a ``k8s`` kernelspec publishes (``metadata.parameters``) are what its
request validation accepts: every value the schema offers passes it, every value just outside
is refused with a 4xx naming the variable. The gateway is real; its kubeconfig names an API
server that answers nothing, so a request that passes validation fails only where the launch
first asks the cluster (5xx), and nothing is created."""

from __future__ import annotations

import json

import pytest

from eg_core.testing import check_launch_parameters

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: none, user: {token: not-a-token}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


def passed_validation(r, variable, value):
    assert r.status_code >= 500, (variable, value, r.text)
    assert "port=1" in r.json()["message"] and variable not in r.json()["message"], (variable, value, r.text)


@pytest.fixture
def unreachable_cluster(gateway_factory, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)

    def start(*args):
        return gateway_factory(f"--KubernetesSettings.kubeconfig={kubeconfig}", *args)

    return start


async def test_every_published_value_is_accepted_and_every_value_outside_refused(unreachable_cluster):
    gw = unreachable_cluster(
        "--KubernetesSettings.max_cpus=2", "--KubernetesSettings.max_memory=1Gi", "--KubernetesSettings.max_gpus=2",
        "--KubernetesSettings.prohibited_uids=[0, 7]",
        "--KubernetesSettings.allowed_images=" + json.dumps(["eg/kernel-py:*"]),
        "--KubernetesSettings.allowed_namespaces=" + json.dumps(["team-a", "team-b"]),
    )
    async with gw.client() as http:
        schema = await check_launch_parameters(http, "python_kubernetes", accept=passed_validation)
    props = schema["properties"]
    assert props["KERNEL_CPUS"]["maximum"] == 2 and props["KERNEL_CPUS"]["exclusiveMinimum"] == 0
    assert props["KERNEL_MEMORY"]["maximum"] == 1024**3 and props["KERNEL_GPUS"]["maximum"] == 2 and "KERNEL_GPUS_LIMIT" not in props
    assert props["KERNEL_UID"]["not"] == {"enum": [0, 7]}
    assert props["KERNEL_NAMESPACE"]["enum"] == ["team-a", "team-b"]
    assert "KERNEL_IMAGE" in props and "KERNEL_POD_NAME" not in props  # patterns open it; pod_name is not allowed


async def test_spark_executor_parameters_are_what_validation_accepts(unreachable_cluster):
    gw = unreachable_cluster(
        "--KubernetesSettings.request_overrides=" + json.dumps(["executors", "executor_memory", "executor_cores"]),
        "--KubernetesSettings.max_executors=4", "--KubernetesSettings.max_executor_memory=2g", "--KubernetesSettings.max_executor_cores=2",
    )
    async with gw.client() as http:
        schema = await check_launch_parameters(http, "spark_python_kubernetes", accept=passed_validation)
    props = schema["properties"]
    assert props["KERNEL_EXECUTORS"] == {"type": "integer", "description": props["KERNEL_EXECUTORS"]["description"],
                                         "minimum": 1, "maximum": 4, "default": 2}
    assert props["KERNEL_EXECUTOR_CORES"]["maximum"] == 2 and props["KERNEL_EXECUTOR_MEMORY"]["default"] == "1g"
