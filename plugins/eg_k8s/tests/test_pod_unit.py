"""The pod a kernel gets, from settings, kernelspec, overlay, template and request (no cluster)."""

from __future__ import annotations

import pytest
import yaml

from eg_core import BadRequest, KernelContext, LaunchRefused
from eg_k8s._manifest import build, merge, render_template, yaml_safe
from eg_k8s._request import quantity, resolve
from eg_k8s._settings import KubernetesSettings


def kernel(config=None, env=None, user="alice", spec_env=None):
    return KernelContext(
        kernel_id="0b7a6d4e-6f5a-4c47-9a0e-2f8a1c9b3d21", kernel_name="k", resource_manager="k8s",
        spec={"env": spec_env or {}, "resource_dir": "/nonexistent"}, config={"image_name": "eg/kernel-py:local"} if config is None else config,
        env=env or {}, user=user,
    )


def settings(**kw):
    return KubernetesSettings(**kw)


def test_default_pod_is_enterprise_gateways():
    k = kernel()
    kp = resolve(k, settings(namespace="kernels"))
    objects = build(k, kp, ["python", "x"], {"KERNEL_ID": k.kernel_id}, "s")
    pod = objects["Pod"]
    assert set(objects) == {"Pod"}
    assert pod["metadata"]["name"] == f"alice-{k.kernel_id}" and pod["metadata"]["namespace"] == "kernels"
    assert pod["metadata"]["labels"] == {"kernel_id": k.kernel_id, "app": "enterprise-gateway", "component": "kernel", "eg.jupyter.org/gateway": "eg"}
    assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["serviceAccountName"] == "default"
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["python", "x"] and container["image"] == "eg/kernel-py:local"
    assert {"name": "KERNEL_ID", "value": k.kernel_id} in container["env"]
    assert container["env"][-1]["valueFrom"]["secretKeyRef"] == {"name": "s", "key": "launch-key", "optional": True}


def test_merge_rules():
    base = {"a": {"b": 1}, "volumes": [{"name": "x", "emptyDir": {}}], "args": ["1"]}
    over = {"a": {"c": 2}, "volumes": [{"name": "x", "emptyDir": {"medium": "Memory"}}, {"name": "y"}], "args": ["2"]}
    assert merge(base, over) == {"a": {"b": 1, "c": 2}, "volumes": [{"name": "x", "emptyDir": {"medium": "Memory"}}, {"name": "y"}], "args": ["1", "2"]}


def test_overlay_cannot_change_the_kernels_identity():
    k = kernel({"image_name": "i", "pod_overlay": {"metadata": {"name": "other", "labels": {"kernel_id": "x"}}, "spec": {"restartPolicy": "Always"}}})
    pod = build(k, resolve(k, settings()), None, {}, "s")["Pod"]
    assert pod["metadata"]["name"] == f"alice-{k.kernel_id}"
    assert pod["metadata"]["labels"]["kernel_id"] == k.kernel_id
    assert pod["spec"]["restartPolicy"] == "Never"


def test_a_kernel_pod_gets_no_token_unless_it_is_meant_to_use_the_api():
    def token(config=None, env=None, **kw):
        k = kernel({"image_name": "i", **(config or {})}, env=env)
        return build(k, resolve(k, settings(**kw)), None, {}, "s")["Pod"]["spec"]["automountServiceAccountToken"]

    assert token() is False  # shared namespace: the gateway's namespace, no role bound for the kernel
    assert token({"namespace_mode": "per-kernel"}) is True  # its own namespace, kernel_cluster_role bound
    assert token({"namespace_mode": "per-user"}, kernel_cluster_role="") is False
    assert token({"namespace_mode": "per-kernel", "namespace": "theirs"}) is False  # not created by the launch
    assert token(service_account_token="mount") is True
    assert token({"namespace_mode": "per-kernel"}, service_account_token="none") is False
    assert token({"pod_overlay": {"spec": {"automountServiceAccountToken": True}}}) is True  # the operator's own
    with pytest.raises(BadRequest, match="service_account_token must be auto, mount, none"):
        token({"service_account_token": "yes"})


def test_gpus_and_shm_shortcuts():
    k = kernel({"image_name": "i", "pod_overlay": {"gpus": 2, "shm_size": "1Gi"}})
    pod = build(k, resolve(k, settings()), None, {}, "s")["Pod"]
    container = pod["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"nvidia.com/gpu": "2"}, "limits": {"nvidia.com/gpu": "2"}}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]


def test_yaml_safe_keeps_values_one_scalar():
    value = "x\nkind: Secret"
    assert yaml.safe_load("a: " + yaml_safe(value)) == {"a": value}
    assert yaml.safe_load(f"a: {yaml_safe([{'name': 'v'}])}") == {"a": [{"name": "v"}]}


def test_template_escapes_values_without_the_filter(tmp_path):
    (tmp_path / "t.yaml.j2").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ kernel_pod_name }}\n  annotations:\n    who: {{ kernel_username }}\n"
        "spec:\n  containers:\n  - name: k\n    image: {{ kernel_image | yaml_safe }}\n"
    )
    objects = render_template(str(tmp_path / "t.yaml.j2"), {"kernel_pod_name": "p", "kernel_username": "a\nspec: {}", "kernel_image": "i"})
    assert objects["Pod"]["metadata"]["annotations"]["who"] == "a\nspec: {}"


def test_template_kinds_are_limited(tmp_path):
    (tmp_path / "t.yaml.j2").write_text("apiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: ClusterRoleBinding\n")
    with pytest.raises(BadRequest, match="ClusterRoleBinding"):
        render_template(str(tmp_path / "t.yaml.j2"), {})


def test_request_values_need_the_operators_allow_list():
    with pytest.raises(LaunchRefused, match="KERNEL_NAMESPACE may not be set"):
        resolve(kernel(env={"KERNEL_NAMESPACE": "other"}), settings())
    kp = resolve(kernel(env={"KERNEL_NAMESPACE": "team-a"}), settings(allowed_namespaces=["team-*"]))
    assert kp.namespace == "team-a"
    with pytest.raises(LaunchRefused, match="not among"):
        resolve(kernel(env={"KERNEL_NAMESPACE": "kube-system"}), settings(allowed_namespaces=["team-*"]))
    with pytest.raises(LaunchRefused, match="exceeds"):
        resolve(kernel(env={"KERNEL_CPUS": "8"}), settings(max_cpus=2))
    with pytest.raises(BadRequest, match="valid Kubernetes name"):
        resolve(kernel(env={"KERNEL_NAMESPACE": "Bad_Name"}), settings(allowed_namespaces=["*"]))


def test_working_dir_from_jupyter_server_is_dropped_unless_mirrored_or_forbidden():
    """Jupyter Server sends KERNEL_WORKING_DIR with every kernel: dropped (as by Enterprise
    Gateway) unless mirror_working_dirs; refused only when the operator empties ignored_overrides."""
    k = kernel(env={"KERNEL_WORKING_DIR": "/home/alice/notebooks"})
    assert resolve(k, settings()).working_dir is None and "KERNEL_WORKING_DIR" not in k.env
    assert resolve(kernel(env={"KERNEL_WORKING_DIR": "/home/alice"}), settings(mirror_working_dirs=True)).working_dir == "/home/alice"
    with pytest.raises(LaunchRefused, match="KERNEL_WORKING_DIR may not be set"):
        resolve(kernel(env={"KERNEL_WORKING_DIR": "/home/alice"}), settings(ignored_overrides=[]))


def test_a_kernelspec_env_value_is_the_operators_not_the_requests():
    k = kernel(env={"KERNEL_IMAGE": "team/image:1"}, spec_env={"KERNEL_IMAGE": "team/image:1"}, config={})
    assert resolve(k, settings()).image == "team/image:1"


def test_namespace_modes():
    k = kernel(user="Bob.Smith")
    assert resolve(k, settings(namespace_mode="per-user")).namespace == "eg-bob-smith"
    assert resolve(k, settings(namespace_mode="per-kernel")).namespace == f"bob-smith-{k.kernel_id}"
    with pytest.raises(ValueError):
        settings(namespace_mode="everywhere")


def test_quantities():
    assert quantity("500m") == 0.5 and quantity("1Gi") == 2**30 and quantity("2") == 2
    with pytest.raises(ValueError):
        quantity("1 GB")


def test_a_requests_working_dir_is_dropped_unless_mirrored():
    env = {"KERNEL_WORKING_DIR": "/home/alice/work"}
    assert resolve(kernel(env=dict(env)), settings()).working_dir is None
    assert resolve(kernel(env=dict(env)), settings(mirror_working_dirs=True)).working_dir == "/home/alice/work"


def test_enterprise_gateway_kernelspecs_get_the_legacy_launcher_by_default():
    k = kernel()
    assert resolve(k, settings()).legacy_launcher is False
    k.spec["metadata"] = {"process_proxy": {"class_name": "enterprise_gateway.services.processproxies.k8s.KubernetesProcessProxy"}}
    assert resolve(k, settings()).legacy_launcher is True
    k.config["legacy_launcher"] = False
    assert resolve(k, settings()).legacy_launcher is False


@pytest.mark.parametrize("value,mode", [("True", "shared"), ("true", "shared"), ("False", "per-kernel"), (None, "shared")])
def test_enterprise_gateways_shared_namespace_variable(monkeypatch, value, mode):
    if value is None:
        monkeypatch.delenv("EG_SHARED_NAMESPACE", raising=False)
    else:
        monkeypatch.setenv("EG_SHARED_NAMESPACE", value)
    assert settings().namespace_mode == mode
    assert settings(namespace_mode="per-user").namespace_mode == "per-user"


def test_requested_resources_are_what_the_pod_will_request():
    from eg_k8s._request import requested_resources

    kp = resolve(kernel(config={"image_name": "eg/kernel-py:local", "cpus": "500m", "memory": "2Gi"}, env={"KERNEL_GPUS": "1"}), settings())
    assert requested_resources(kp) == {"cpus": 0.5, "memory": 2 * 1024**3, "gpus": 1.0}
    assert requested_resources(resolve(kernel(), settings())) == {}


def test_a_spark_kernels_requested_resources_count_its_executors_as_capped():
    """The driver pod's requests plus KERNEL_EXECUTORS executor pods, each as Spark sizes it:
    its cores (or spark.kubernetes.executor.request.cores) and its memory plus overhead."""
    from eg_k8s._request import requested_resources

    spark = {"image_name": "eg/kernel-spark:local", "executor_image_name": "eg/kernel-spark:local", "cpus": "500m", "memory": "1Gi"}
    overrides = ["executors", "executor_memory", "executor_cores"]
    gw = settings(request_overrides=overrides, max_executors=3)
    asked = requested_resources(resolve(kernel(config=spark, env={"KERNEL_EXECUTORS": "3", "KERNEL_EXECUTOR_MEMORY": "512m"}), gw))
    assert asked == {"cpus": 0.5 + 3 * 1, "memory": 2**30 + 3 * (512 + 384) * 2**20}
    asked = requested_resources(resolve(kernel(config={**spark, "spark_conf": {"spark.kubernetes.executor.request.cores": "100m"}},
                                               env={"KERNEL_EXECUTORS": "2", "KERNEL_EXECUTOR_MEMORY": "8g"}), gw))
    assert asked == {"cpus": 0.5 + 2 * 0.1, "memory": 2**30 + 2 * (8192 + 819) * 2**20}
    with pytest.raises(LaunchRefused, match="KERNEL_EXECUTORS=4 exceeds"):
        requested_resources(resolve(kernel(config=spark, env={"KERNEL_EXECUTORS": "4"}), gw))
    with pytest.raises(BadRequest, match="spark_conf"):
        requested_resources(resolve(kernel(config={**spark, "spark_conf": {"spark.executor.memoryOverhead": "lots"}}), gw))


def test_a_scala_spark_kernel_runs_toree_under_eg_launcher():
    """A Scala kernelspec running eg's launcher (or Enterprise Gateway's ``bin/run.sh``) gets
    Toree as the launcher's kernel command, unless it names its own; Toree's run.sh reads the
    session's settings from ``__TOREE_SPARK_OPTS__``, the same ``--conf`` pairs as pyspark's."""
    from eg_k8s._spark import LAUNCHER, TOREE_COMMAND, driver_command, driver_env

    launcher = ["python", LAUNCHER, "--kernel-id", "k"]
    assert driver_command(launcher, "scala") == [*launcher, "--kernel-command", TOREE_COMMAND]
    assert driver_command(["/opt/eg/bin/run.sh", "--kernel-id", "k"], "Scala") == [*launcher, "--kernel-command", TOREE_COMMAND]
    own = [*launcher, "--kernel-command", '["my-scala", "{connection_file}"]']
    assert driver_command(own, "scala") == own
    assert driver_command(launcher, "python") == launcher
    assert driver_command(["java", "-jar", "k.jar"], "scala") == ["java", "-jar", "k.jar"]
    env = driver_env({"spark.master": "k8s://https://10.96.0.1:443", "spark.app.name": "a b"})
    assert env["__TOREE_SPARK_OPTS__"] == "--conf spark.master=k8s://https://10.96.0.1:443 --conf 'spark.app.name=a b'"
    assert env["PYSPARK_SUBMIT_ARGS"] == env["__TOREE_SPARK_OPTS__"] + " pyspark-shell"
