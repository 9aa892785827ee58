"""The gateway-wide settings of the ``k8s`` resource manager (``--KubernetesSettings.*``).

Kernelspecs override most of them in their resource-manager ``config`` (the same names), and
requests override only what the operator allow-lists (:mod:`._request`).
"""

from __future__ import annotations

import os

from traitlets import Bool, Dict, Float, Integer, List, Unicode, default, validate
from traitlets.config import SingletonConfigurable

from eg_core.config import EnvDefaults

NAMESPACE_MODES = ("shared", "per-user", "per-kernel")
TOKEN_CHOICES = ("auto", "mount", "none")
PULL_POLICIES = ("IfNotPresent", "Always", "Never")


class KubernetesSettings(EnvDefaults, SingletonConfigurable):
    """Where and how kernel pods run."""

    kubeconfig = Unicode(
        "", config=True,
        help="kubeconfig file of the gateway's cluster; empty: in-cluster config inside a pod, else ~/.kube/config. "
        "A kernelspec may name another cluster with `kubeconfig` and/or `context` in its config.",
    ).tag(env=("KUBECONFIG",))
    context = Unicode("", config=True, help="kubeconfig context of the gateway's cluster (empty: its current context).")
    namespace = Unicode("default", config=True, help="Namespace of kernel pods in the 'shared' namespace mode.").tag(
        env=("EG_NAMESPACE",)
    )
    namespace_mode = Unicode(
        "shared", config=True,
        help="'shared': every kernel in `namespace` (needs only a namespace-scoped Role); 'per-user': "
        "one namespace per user, created on demand and deleted with the user's last kernel; 'per-kernel': "
        "a namespace per kernel (Enterprise Gateway's default), deleted at shutdown. The last two create "
        "a RoleBinding of `kernel_cluster_role` for the kernel's service account. Default: 'shared', or "
        "Enterprise Gateway's EG_SHARED_NAMESPACE: 'true' is 'shared', any other value 'per-kernel'.",
    ).tag(env_default=("EG_SHARED_NAMESPACE",))

    @default("namespace_mode")
    def _namespace_mode_default(self) -> str:
        shared = os.environ.get("EG_SHARED_NAMESPACE")
        return "shared" if shared is None or shared.strip().lower() == "true" else "per-kernel"
    namespace_prefix = Unicode("eg-", config=True, help="Prefix of the namespaces the 'per-user' mode creates.")
    kernel_cluster_role = Unicode(
        "edit", config=True, help="ClusterRole bound to the kernel's service account in namespaces the gateway creates.",
    ).tag(env=("EG_KERNEL_CLUSTER_ROLE",))
    service_account_name = Unicode("default", config=True, help="Service account of kernel pods.").tag(
        env=("EG_DEFAULT_KERNEL_SERVICE_ACCOUNT_NAME",)
    )
    service_account_token = Unicode(
        "auto", config=True,
        help="Whether a kernel pod gets its service account's token (automountServiceAccountToken): 'auto' only "
        "in a namespace the launch creates and binds kernel_cluster_role in (per-user, per-kernel), where the "
        "kernel is meant to use the API, and for Spark drivers (their service account manages executor pods); 'mount' always; 'none' never. A pod template or pod_overlay that sets "
        "automountServiceAccountToken itself wins.",
    )
    image_name = Unicode("", config=True, help="Image for kernelspecs that name none.").tag(env=("EG_KERNEL_IMAGE",))
    image_pull_policy = Unicode("IfNotPresent", config=True, help="The kernel container's imagePullPolicy.")
    image_pull_secrets = List(Unicode(), config=True, help="Names of Secrets used to pull kernel images.")
    host_network = Bool(False, config=True, help="Run kernel pods on the node's network (hostNetwork).")
    kernel_host = Unicode(
        "", config=True, help="Address the gateway dials to reach kernels; empty: the pod's IP (status.podIP).",
    )
    kernel_bind_ip = Unicode("0.0.0.0", config=True, help="Address kernels bind inside their pod.")
    pod_template = Unicode(
        "", config=True,
        help="An Enterprise Gateway kernel-pod.yaml.j2 style template (path; relative paths are under the "
        "kernelspec's directory). Empty: eg's built-in pod, the same as Enterprise Gateway's default template.",
    )
    pod_overlay = Dict(
        config=True,
        help="Merged into every kernel pod (kernelspecs add their own `pod_overlay`): a Pod manifest fragment; "
        "`spec.containers[0]` merges into the kernel container. Shortcuts: see the README.",
    )
    request_overrides = List(
        Unicode(), ["cpus", "memory", "gpus", "uid", "gid"], config=True,
        help="Settings a request may set with KERNEL_* values (see the README for the names).",
    )
    mirror_working_dirs = Bool(
        False, config=True, help="Let requests set the kernel container's working dir (KERNEL_WORKING_DIR).",
    ).tag(env=("EG_MIRROR_WORKING_DIRS",))
    ignored_overrides = List(
        Unicode(), ["working_dir"], config=True,
        help="Settings whose KERNEL_* request values are dropped (logged at DEBUG) rather than refused (403) "
        "when request_overrides does not allow them. Default: working_dir, because Jupyter Server sends "
        "KERNEL_WORKING_DIR with every request (Enterprise Gateway drops it too unless mirror_working_dirs "
        "is on); make it [] to refuse such requests instead.",
    )
    allowed_images = List(Unicode(), config=True, help="fnmatch patterns of images KERNEL_IMAGE may name.")
    allowed_namespaces = List(Unicode(), config=True, help="fnmatch patterns of namespaces KERNEL_NAMESPACE may name.")
    allowed_service_accounts = List(Unicode(), config=True, help="Service accounts KERNEL_SERVICE_ACCOUNT_NAME may name.")
    allowed_volume_types = List(
        Unicode(), ["configMap", "secret", "persistentVolumeClaim", "emptyDir"], config=True,
        help="Volume sources a request's KERNEL_VOLUMES may use (hostPath is never allowed from a request).",
    )
    max_cpus = Float(0.0, config=True, help="Most CPUs a request may ask for (0: no limit).")
    max_memory = Unicode("", config=True, help="Most memory a request may ask for, e.g. '8Gi' (empty: no limit).")
    max_gpus = Integer(0, config=True, help="Most GPUs a request may ask for (0: no limit).")
    spark_master = Unicode(
        "k8s://https://kubernetes.default.svc:443", config=True,
        help="Spark master of Spark kernels' drivers (the kernel pod), as the pod reaches the API server.",
    )
    spark_service_account = Unicode(
        "eg-spark-driver", config=True,
        help="Service account of Spark kernel pods, which eg-k8s makes in the kernel's namespace with a Role "
        "allowing only what Spark's driver does with executor pods; empty: the kernel's own service account, "
        "as the operator set it up. A service account the kernelspec or request names is used as it is.",
    )
    executors = Integer(2, config=True, help="Spark executors per Spark kernel (spark.executor.instances).")
    executor_memory = Unicode("1g", config=True, help="Memory of each Spark executor (spark.executor.memory: 512m, 2g).")
    executor_cores = Integer(1, config=True, help="Cores of each Spark executor (spark.executor.cores).")
    max_executors = Integer(0, config=True, help="Most executors a request may ask for (KERNEL_EXECUTORS; 0: no limit).")
    max_executor_memory = Unicode("", config=True, help="Most memory per executor a request may ask for, e.g. '4g' (empty: no limit).")
    max_executor_cores = Integer(0, config=True, help="Most cores per executor a request may ask for (0: no limit).")
    spark_conf = Dict(config=True, help="Spark settings of every Spark kernel's session (kernelspecs add their own `spark_conf`).")
    default_uid = Unicode("", config=True, help="runAsUser when neither kernelspec nor request sets one (empty: the image's).").tag(
        env=("EG_DEFAULT_KERNEL_UID",)
    )
    default_gid = Unicode("", config=True, help="runAsGroup when neither kernelspec nor request sets one (empty: the image's).").tag(
        env=("EG_DEFAULT_KERNEL_GID",)
    )
    prohibited_uids = List(Integer(), [0], config=True, help="UIDs kernels may not run as (403).").tag(env=("EG_PROHIBITED_UIDS",))
    prohibited_gids = List(Integer(), [0], config=True, help="GIDs kernels may not run as (403).").tag(env=("EG_PROHIBITED_GIDS",))
    gateway_id = Unicode(
        "eg", config=True,
        help="Value of the eg.jupyter.org/gateway label on this gateway's kernel pods; replicas of one "
        "gateway share it, different gateways on one cluster need different ids.",
    )
    orphans_at_startup = Unicode("log", config=True, help="Kernel pods no gateway knows, at startup: 'log', 'remove' or 'ignore'.")
    store_sessions = Bool(
        True, config=True,
        help="Keep kernel sessions in the cluster (pod annotations and a per-kernel Secret) instead of the "
        "gateway's session store, so any gateway replica or a restarted gateway finds them.",
    )
    image_pull_timeout = Float(
        600.0, config=True,
        help="Seconds a kernel image's pull may take (from the kubelet's Pulling event to Pulled; 0: no limit). The "
        "launch timeout does not run meanwhile: it resumes with the time it had left, so a large image is not failed "
        "by it. Kernelspecs may set their own `image_pull_timeout`.",
    )
    fail_unschedulable = Bool(True, config=True, help="Fail a launch as soon as the scheduler says the pod cannot be scheduled.")
    log_tail_lines = Integer(25, config=True, help="Container log lines quoted when a kernel fails or dies.")
    api_threads = Integer(16, config=True, help="Threads running Kubernetes API calls (the client is synchronous).")

    @validate("namespace_mode")
    def _check_mode(self, proposal):
        if proposal["value"] not in NAMESPACE_MODES:
            raise ValueError(f"namespace_mode must be one of {', '.join(NAMESPACE_MODES)}")
        return proposal["value"]

    @validate("service_account_token")
    def _check_token(self, proposal):
        if proposal["value"] not in TOKEN_CHOICES:
            raise ValueError(f"service_account_token must be one of {', '.join(TOKEN_CHOICES)}")
        return proposal["value"]

    @validate("image_pull_policy")
    def _check_pull(self, proposal):
        if proposal["value"] not in PULL_POLICIES:
            raise ValueError(f"image_pull_policy must be one of {', '.join(PULL_POLICIES)}")
        return proposal["value"]

    @validate("orphans_at_startup")
    def _check_orphans(self, proposal):
        if proposal["value"] not in ("log", "remove", "ignore"):
            raise ValueError("orphans_at_startup must be one of log, remove, ignore")
        return proposal["value"]


def settings() -> KubernetesSettings:
    return KubernetesSettings.instance()
