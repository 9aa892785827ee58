"""Spark kernels: the kernel pod is the Spark driver, in client mode; executors are pods.

A kernelspec is a Spark kernelspec when its config names ``executor_image_name`` (Enterprise
Gateway's key). Its pod runs eg's launcher, whose Spark context (``eg_spark_context``) makes the
session with ``SparkSession.builder.getOrCreate()``; the session's settings come from
``PYSPARK_SUBMIT_ARGS``, which :func:`driver_env` builds: a ``k8s://`` master, the kernel's
namespace, ``spark.kubernetes.driver.pod.name`` (so executors are owned by the kernel pod and
the garbage collector removes them with it), the executors' labels (the kernel's and the
gateway's: ``kernel_id``, ``app``, ``component=worker``, ``eg.jupyter.org/gateway``), count,
memory and cores, and the operator's ``spark_conf``. Spark 4 in cluster mode reaches its driver
through a Service's DNS name; in client mode the driver's address is the pod's IP
(``SPARK_LOCAL_IP`` and ``SPARK_LOCAL_HOSTNAME`` from the downward API, so
``spark.driver.host`` is that IP, not the pod's hostname), so executors need no cluster DNS,
on the pod network as on the node's.

The driver authenticates as the pod's service account. Unless the operator names one
(``spark_service_account`` empty), eg-k8s makes ``eg-spark-driver`` in the kernel's namespace
(:func:`ensure_driver_account`): a ServiceAccount, a Role with exactly :data:`DRIVER_RULES`
(executor pods: create, get, list, watch, delete, deletecollection) and their RoleBinding.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from eg_core import BadRequest, KernelContext, LaunchRefused

from . import _manifest as manifest  # its names are read at call time: _manifest imports _request, which imports this

# setting -> the request variable that may override it
SPARK_VARIABLES = {"executors": "KERNEL_EXECUTORS", "executor_memory": "KERNEL_EXECUTOR_MEMORY", "executor_cores": "KERNEL_EXECUTOR_CORES"}
EXECUTOR_COMPONENT = "worker"
EXECUTOR_ROLE_LABEL = "spark-role=executor"
SPARK_DIR = "/var/run/eg-spark"
EXECUTOR_TEMPLATE_KEY = "executor-pod.yaml"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
LAUNCHER = "/usr/local/share/eg/launch_ipykernel.py"
# the kernel eg's launcher runs for a Scala kernelspec: Apache Toree in eg's Toree image, whose
# run.sh runs $SPARK_HOME's spark-submit with __TOREE_SPARK_OPTS__ (Spark 3.5, Toree's Scala 2.12)
TOREE_COMMAND = '["/opt/toree/bin/run.sh", "--profile", "{connection_file}"]'
# the driver's address, from the downward API: SPARK_LOCAL_IP is the address it binds,
# SPARK_LOCAL_HOSTNAME the one it gives executors (spark.driver.host's default); without the
# latter Spark names the pod's hostname, which nothing resolves on a cluster without DNS for pods
ADDRESS_VARIABLES = ("SPARK_LOCAL_IP", "SPARK_LOCAL_HOSTNAME")
DRIVER_RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list", "watch", "delete", "deletecollection"]},
]
# what eg sets for every Spark kernel, before the operator's spark_conf
BASE_CONF = {
    "spark.submit.deployMode": "client",
    "spark.blockManager.port": "0",  # with host_network, executors share the node's ports: a fixed one fits one per node
    "spark.shuffle.readHostLocalDisk": "false",  # another executor's disk is in its own pod
    "spark.kubernetes.executor.disableConfigMap": "true",  # the driver needs no ConfigMap rights
    "spark.kubernetes.driver.ownPersistentVolumeClaim": "false",
    "spark.kubernetes.driver.reusePersistentVolumeClaim": "false",
    "spark.kubernetes.authenticate.caCertFile": f"{SA_DIR}/ca.crt",
    "spark.kubernetes.authenticate.oauthTokenFile": f"{SA_DIR}/token",
}
_MEMORY = re.compile(r"(\d+)([kmgt]?)b?\Z", re.IGNORECASE)
_SCALE = {"": 2**20, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}  # Spark's: a bare number is MiB


@dataclass
class SparkDriver:
    """The checked Spark values of one kernel."""

    executor_image: str
    master: str
    service_account: str  # '' when the operator's service account is used as it is
    executors: int
    executor_memory: str
    executor_cores: int
    conf: dict[str, str] = field(default_factory=dict)


def is_spark(kernel: KernelContext) -> bool:
    """Whether the kernelspec runs a Spark driver (its config names ``executor_image_name``)."""
    return bool(kernel.config.get("executor_image_name"))


def memory_bytes(text: str) -> int:
    """A Spark memory amount ('512m', '2g', '1024') in bytes; ValueError when malformed."""
    match = _MEMORY.match(str(text).strip())
    if not match:
        raise ValueError(text)
    return int(match.group(1)) * _SCALE[match.group(2).lower()]


def _count(layers: Any, setting: str, default: int, cap: int, minimum: int) -> int:
    value, from_request = layers.get(setting, setting, getattr(layers.gateway, setting, default))
    variable = SPARK_VARIABLES[setting]
    try:
        number = int(str(value).strip())
    except ValueError:
        raise BadRequest(f"{variable} must be a whole number, not {str(value)[:40]!r}") from None
    if number < minimum:
        raise BadRequest(f"{variable} must be at least {minimum}")
    if from_request and cap and number > cap:
        raise LaunchRefused(f"{variable}={number} exceeds the per-kernel limit of {cap}")
    return number


def _memory(layers: Any) -> str:
    value, from_request = layers.get("executor_memory", "executor_memory", layers.gateway.executor_memory)
    from ._request import checked_amount  # _request imports this module

    text = str(value).strip()
    amount = checked_amount("KERNEL_EXECUTOR_MEMORY", text, memory_bytes, "a Spark memory amount such as 512m or 2g")
    cap = layers.gateway.max_executor_memory
    if from_request and cap and amount > memory_bytes(cap):
        raise LaunchRefused(f"KERNEL_EXECUTOR_MEMORY={text} exceeds the per-kernel limit of {cap}")
    return text


def _conf(*layers: Any) -> dict[str, str]:
    result: dict[str, str] = {}
    for layer in layers:
        if not layer:
            continue
        if not isinstance(layer, dict):
            raise BadRequest("spark_conf must be an object of Spark settings (name: value)")
        result.update({str(k): str(v) for k, v in layer.items()})
    return result


def resolve(kernel: KernelContext, layers: Any, image: str, configured_image: str) -> SparkDriver | None:
    """The Spark values of ``kernel`` (None for other kernelspecs), checked like the pod's:
    malformed 400, over the operator's caps 403. Executors run the kernel's image unless the
    kernelspec names another ``executor_image_name``."""
    if not is_spark(kernel):
        return None
    gateway = layers.gateway
    executor_image = str(kernel.config["executor_image_name"])
    if executor_image == configured_image:
        executor_image = image
    return SparkDriver(
        executor_image=executor_image,
        master=str(layers.cfg("spark_master")),
        service_account=str(layers.cfg("spark_service_account", "")),
        executors=_count(layers, "executors", 2, gateway.max_executors, 1),
        executor_memory=_memory(layers),
        executor_cores=_count(layers, "executor_cores", 1, gateway.max_executor_cores, 1),
        conf=_conf(gateway.spark_conf, kernel.config.get("spark_conf")),
    )


def executor_requests(driver: SparkDriver) -> dict[str, float]:
    """What one executor pod of ``driver`` requests of the cluster, as Spark sets it: ``cpus``
    (``spark.kubernetes.executor.request.cores``, else ``spark.executor.cores``) and ``memory`` in
    bytes (``spark.executor.memory`` plus its overhead, ``spark.executor.memoryOverhead`` or else
    the larger of ``spark.executor.memoryOverheadFactor`` (0.1) of it and
    ``spark.executor.minMemoryOverhead`` (384m), plus ``spark.executor.pyspark.memory``), whole
    MiB. Read for resource quotas (``eg_requested_resources``); BadRequest for a setting that is
    no amount."""
    from ._request import quantity  # _request imports this module

    conf = driver.conf
    try:
        cores = conf.get("spark.kubernetes.executor.request.cores")
        cpus = quantity(cores) if cores else float(driver.executor_cores)
        mib = memory_bytes(driver.executor_memory) // 2**20
        if "spark.executor.memoryOverhead" in conf:
            overhead = memory_bytes(conf["spark.executor.memoryOverhead"]) // 2**20
        else:
            factor = float(conf.get("spark.executor.memoryOverheadFactor", conf.get("spark.kubernetes.memoryOverheadFactor", "0.1")))
            overhead = max(int(factor * mib), memory_bytes(conf.get("spark.executor.minMemoryOverhead", "384m")) // 2**20)
        pyspark = memory_bytes(conf["spark.executor.pyspark.memory"]) // 2**20 if "spark.executor.pyspark.memory" in conf else 0
    except ValueError as exc:
        raise BadRequest(f"spark_conf: an executor amount is malformed ({exc})") from None
    return {"cpus": cpus, "memory": float((mib + overhead + pyspark) * 2**20)}


def executor_template(host_network: bool) -> str:
    """Spark's executor pod template: on the node's network when the kernel pod is."""
    spec = "  hostNetwork: true\n  dnsPolicy: ClusterFirstWithHostNet\n" if host_network else "  {}\n"
    return f"apiVersion: v1\nkind: Pod\nspec:\n{spec}"


def spark_conf(kernel: KernelContext, driver: SparkDriver, pod: str, namespace: str, gateway_id: str, pull_policy: str) -> dict[str, str]:
    """Every Spark setting of the kernel's session."""
    prefix = "spark.kubernetes.executor.label."
    conf = {
        **BASE_CONF,
        "spark.master": driver.master,
        "spark.app.name": f"{kernel.user or 'kernel'}-{kernel.kernel_id}",
        "spark.kubernetes.namespace": namespace,
        "spark.kubernetes.driver.pod.name": pod,
        "spark.kubernetes.container.image": driver.executor_image,
        "spark.kubernetes.container.image.pullPolicy": pull_policy,
        "spark.kubernetes.executor.podTemplateFile": f"{SPARK_DIR}/{EXECUTOR_TEMPLATE_KEY}",
        "spark.executor.instances": str(driver.executors),
        "spark.executor.memory": driver.executor_memory,
        "spark.executor.cores": str(driver.executor_cores),
        **driver.conf,
    }
    conf.update({
        prefix + manifest.LABEL_KERNEL_ID: kernel.kernel_id, prefix + manifest.LABEL_APP: manifest.APP,
        prefix + manifest.LABEL_COMPONENT: EXECUTOR_COMPONENT, prefix + manifest.LABEL_GATEWAY: gateway_id,
    })
    return conf


def driver_env(conf: dict[str, str]) -> dict[str, str]:
    """The driver container's environment: the session's settings for pyspark's ``spark-submit``
    (Python kernels) and for Toree's ``run.sh`` (Scala kernels), which reads ``__TOREE_SPARK_OPTS__``."""
    args = " ".join(f"--conf {shlex.quote(f'{k}={v}')}" for k, v in conf.items())
    return {"PYSPARK_SUBMIT_ARGS": f"{args} pyspark-shell", "__TOREE_SPARK_OPTS__": args}


def driver_command(cmd: list[str] | None, language: str = "") -> list[str] | None:
    """Enterprise Gateway's ``bin/run.sh`` (which runs spark-submit from the gateway's host) is,
    in the pod, eg's launcher with the same arguments; other commands are kept. The launcher of a
    Scala kernelspec (``language`` ``scala``) runs Toree (:data:`TOREE_COMMAND`) unless the
    kernelspec names its own ``--kernel-command``."""
    if cmd and cmd[0].endswith("/bin/run.sh"):
        cmd = ["python", LAUNCHER, *cmd[1:]]
    if cmd and language.lower() == "scala" and LAUNCHER in cmd and "--kernel-command" not in cmd:
        cmd = [*cmd, "--kernel-command", TOREE_COMMAND]
    return cmd


def add_to_pod(pod: dict[str, Any], secret: str) -> None:
    """Mount the executor template (a key of the kernel's launch Secret) and give the driver its
    own address; drop Enterprise Gateway's SPARK_HOME/SPARK_OPTS (the image's pyspark is Spark)."""
    spec = pod["spec"]
    container = spec["containers"][0]
    spec.setdefault("volumes", []).append(
        {"name": "eg-spark", "secret": {"secretName": secret, "items": [{"key": EXECUTOR_TEMPLATE_KEY, "path": EXECUTOR_TEMPLATE_KEY}]}}
    )
    container.setdefault("volumeMounts", []).append({"name": "eg-spark", "mountPath": SPARK_DIR, "readOnly": True})
    container["env"] = [e for e in container.get("env") or [] if e.get("name") not in ("SPARK_HOME", "SPARK_OPTS", *ADDRESS_VARIABLES)]
    container["env"] += [{"name": name, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} for name in ADDRESS_VARIABLES]


def executor_selector(gateway_id: str, kernel_id: str) -> str:
    return (f"{manifest.LABEL_KERNEL_ID}={kernel_id},{manifest.LABEL_GATEWAY}={gateway_id},"
            f"{manifest.LABEL_COMPONENT}={EXECUTOR_COMPONENT},{EXECUTOR_ROLE_LABEL}")


__all__ = ["SparkDriver", "is_spark", "resolve", "executor_requests", "spark_conf", "driver_env", "driver_command", "add_to_pod", "executor_template",
           "executor_selector", "memory_bytes", "DRIVER_RULES", "SPARK_VARIABLES"]
