"""The ``yarn`` resource manager's settings, and what one launch asks for.

Three layers, lowest first: the gateway's :class:`YarnSettings` (config file, ``--YarnSettings.*``,
Enterprise Gateway's ``EG_*`` variables); the kernelspec's ``config`` for the settings tagged
``kernelspec=True``, each checked by its trait (:func:`eg_core.config.kernelspec_settings`; EG's
``process_proxy.config`` keys ``yarn_endpoint``, ``alt_yarn_endpoint``,
``yarn_endpoint_security_enabled`` work unchanged); and the request's ``KERNEL_QUEUE``,
``KERNEL_NODE_LABEL``, ``KERNEL_DRIVER_MEMORY``, ``KERNEL_EXECUTOR_MEMORY``, only those the
operator allows (``request_overrides``) and only within the allowed values. :func:`resolve` checks
everything before anything is submitted: 400 for a malformed value, 403 for one not allowed.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass
from typing import Any

from traitlets import Bool, Enum, Float, Integer, List, TraitError, Unicode, validate
from traitlets.config import SingletonConfigurable

from eg_core import BadRequest, KernelContext, LaunchRefused
from eg_core import remote
from eg_core.config import EnvDefaults, kernelspec_settings, launch_parameter

SUBMISSION_MODES = ("spark-submit", "rest")
# setting -> the request variable that may set it
REQUEST_VARIABLES = {
    "queue": "KERNEL_QUEUE",
    "node_label": "KERNEL_NODE_LABEL",
    "driver_memory": "KERNEL_DRIVER_MEMORY",
    "executor_memory": "KERNEL_EXECUTOR_MEMORY",
}
# YARN queue and node-label names (letters, digits, '_', '-', '.' for queue paths).
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_MEMORY = re.compile(r"(\d{1,9})([kmgt]?)b?\Z", re.IGNORECASE)
_MB = {"k": 1 / 1024, "": 1, "m": 1, "g": 1024, "t": 1024 * 1024}


class YarnSettings(EnvDefaults, SingletonConfigurable):
    """Gateway-wide settings of the ``yarn`` resource manager (kernelspecs may override them)."""

    yarn_endpoint = Unicode(
        "", config=True,
        help="The ResourceManager's web address (http[s]://host:8088). Empty: read "
        "yarn.resourcemanager.webapp.address (HA: every rm-id) from $HADOOP_CONF_DIR/yarn-site.xml.",
    ).tag(env=("EG_YARN_ENDPOINT",), kernelspec=True)
    alt_yarn_endpoint = Unicode(
        "", config=True, help="The second ResourceManager of an HA pair; the active one is used.",
    ).tag(env=("EG_ALT_YARN_ENDPOINT",), kernelspec=True)
    yarn_endpoint_security_enabled = Bool(
        False, config=True,
        help="Authenticate to the ResourceManager with Kerberos (SPNEGO, the gateway's ticket cache "
        "or KRB5CCNAME); otherwise Hadoop's pseudo authentication (user.name).",
    ).tag(env=("EG_YARN_ENDPOINT_SECURITY_ENABLED",), kernelspec=True)
    mutual_authentication = Enum(
        ("REQUIRED", "OPTIONAL", "DISABLED"), "REQUIRED", config=True,
        help="Kerberos mutual authentication of the ResourceManager.",
    ).tag(env=("EG_YARN_MUTUAL_AUTHENTICATION",))
    cert_bundle = Unicode(
        "", config=True, help="CA bundle (PEM) to verify an https ResourceManager with (default: the system's).",
    ).tag(env=("EG_YARN_CERT_BUNDLE",))
    request_timeout = Float(30.0, config=True, help="Seconds one ResourceManager request may take.")
    impersonation_enabled = Bool(
        False, config=True,
        help="Submit each kernel's application as the request's KERNEL_USERNAME (spark-submit "
        "--proxy-user; REST: user.name, or doAs with Kerberos); otherwise as the gateway's user.",
    ).tag(env=("EG_IMPERSONATION_ENABLED",))
    prohibited_users = List(Unicode(), ["root", "yarn", "hdfs"], config=True,
                            help="Users applications may never be submitted as through impersonation.")
    queue = Unicode("", config=True, help="Queue for kernels that name none (empty: the RM's default queue).").tag(kernelspec=True)
    node_label = Unicode("", config=True, help="Node label (partition) for kernels that name none.").tag(kernelspec=True)
    driver_memory = Unicode("", config=True, help="Driver (application master) memory, e.g. 2g, for kernels that name none.").tag(kernelspec=True)
    executor_memory = Unicode("", config=True, help="Executor memory, e.g. 2g, for kernels that name none.").tag(kernelspec=True)
    request_overrides = List(
        Unicode(), list(REQUEST_VARIABLES), config=True,
        help="Settings a request may set through its KERNEL_* values: queue (KERNEL_QUEUE), node_label "
        "(KERNEL_NODE_LABEL), driver_memory (KERNEL_DRIVER_MEMORY), executor_memory (KERNEL_EXECUTOR_MEMORY).",
    )
    allowed_queues = List(Unicode(), [], config=True, help="Queues requests may ask for (empty: any queue the cluster has).")
    allowed_node_labels = List(Unicode(), [], config=True, help="Node labels requests may ask for (empty: any).")
    max_memory = Unicode("", config=True, help="The most driver or executor memory a request may ask for, e.g. 8g (empty: no limit).")
    check_queue = Bool(True, config=True, help="Check the queue has room before submitting (503 when it has none).")
    partition_threshold = Float(
        95.0, config=True,
        help="A queue partition whose used capacity (percent of the queue's capacity) is above this has no room.",
    ).tag(env=("YARN_PARTITION_THRESHOLD",))
    submission = Enum(
        SUBMISSION_MODES, "spark-submit", config=True,
        help="How kernelspecs that do not say (config 'submission') are submitted: 'spark-submit' runs "
        "the kernelspec's argv (e.g. run.sh calling spark-submit --deploy-mode cluster); 'rest' submits "
        "the argv itself as the application master through the RM's REST API.",
    ).tag(kernelspec=True)
    am_memory = Integer(1024, config=True, help="REST submissions: the application master's memory (MB).")
    am_vcores = Integer(1, config=True, help="REST submissions: the application master's vcores.")
    application_type = Unicode("JUPYTER", config=True, help="REST submissions: the application type.")
    node_python = Unicode(
        "python3", config=True, help="REST submissions: the Python on the cluster's nodes; replaces 'python' as argv[0].",
    )
    key_dir = Unicode(
        "", config=True,
        help="REST submissions: directory the NodeManagers read as file:// URLs, where the gateway writes each "
        "kernel's launch key (a file only its owner may read; localized into the application master's container "
        "as eg-launch.key, removed once the launcher read it). Default: the system's temporary directory.",
    )
    node_launcher = Unicode(
        "", config=True,
        help="REST submissions: the kernel launcher's path on the nodes ({launcher} in argv). Default: "
        "this gateway's launcher path (nodes that share the installation).",
    )
    gateway_id = Unicode(
        "eg", config=True,
        help="Tag (eg_gateway=<id>) on this gateway's applications; gateways sharing a cluster need "
        "different ids, so orphan sweeps see only their own applications.",
    )
    orphans_at_startup = Enum(
        ("log", "remove", "ignore"), "log", config=True,
        help="What to do at startup with running applications of this gateway_id that it does not know.",
    )
    @validate("gateway_id")
    def _check_gateway_id(self, proposal):
        if not _NAME.match(proposal["value"]):
            raise TraitError("YarnSettings.gateway_id must be letters, digits, '_', '.', '-'")
        return proposal["value"]

    startup_poll_max = Float(1.0, config=True, help="Longest wait between two RM queries while a kernel starts (s).")
    watch_interval = Float(
        5.0, config=True,
        help="Longest wait between two queries of the RM's live applications, one query for every running kernel "
        "(it backs off to this from 0.1 s, and asks at once after a kill or shutdown request).",
    )
    shutdown_wait_time = Float(
        15.0, config=True, help="Seconds to wait for an application to reach a final state after a kill.",
    ).tag(env=("EG_YARN_SHUTDOWN_WAIT_TIME",))


def settings() -> YarnSettings:
    return YarnSettings.instance()


def gateway_tag() -> str:
    """The tag on this gateway's applications (YARN keeps tags in lower case)."""
    return f"eg_gateway={settings().gateway_id}".lower()


@dataclass(frozen=True)
class Launch:
    """What one launch uses: RM access, placement and resources, all checked."""

    endpoints: tuple[str, ...]
    kerberos: bool
    mutual_authentication: str
    verify: bool | str
    timeout: float
    submission: str
    user: str
    impersonate: bool
    queue: str
    node_label: str
    driver_memory_mb: int
    executor_memory_mb: int
    legacy_launcher: bool


def memory_mb(value: str, what: str) -> int:
    """``2g``, ``512m``, ``512`` (MB) to MB (at least 1); :class:`BadRequest` when malformed or 0."""
    match = _MEMORY.match(str(value).strip())
    if not match or int(match.group(1)) == 0:
        raise BadRequest(f"{what} must be a size such as 2g, 512m or 1024 (MB), not {str(value)[:40]!r}")
    return max(int(int(match.group(1)) * _MB[match.group(2).lower()]), 1)


def launch_parameters(kernel: KernelContext) -> dict[str, dict[str, Any]]:
    """The kernelspec's launch parameters (``eg_launch_parameters``): the settings of
    :data:`REQUEST_VARIABLES` that ``request_overrides`` lets a request set, with the values
    :func:`resolve` accepts (``allowed_queues``, ``allowed_node_labels``, ``max_memory``) and
    the kernelspec's own values as defaults."""
    s = settings()
    ks = kernelspec_settings(kernel, s)
    names = {"pattern": "^" + _NAME.pattern.removesuffix("\\Z") + "$"}
    limit = memory_mb(s.max_memory, "YarnSettings.max_memory") if s.max_memory else None
    properties = {
        "queue": launch_parameter("string", "YARN queue", default=ks.queue or None,
                                  **({"enum": list(dict.fromkeys([*filter(None, [ks.queue]), *s.allowed_queues]))} if s.allowed_queues else names)),
        "node_label": launch_parameter("string", "YARN node label (partition)", default=ks.node_label or None,
                                       **({"enum": list(dict.fromkeys([*filter(None, [ks.node_label]), *s.allowed_node_labels]))}
                                          if s.allowed_node_labels else names)),
    }
    for name, what in (("driver_memory", "Driver (application master) memory"), ("executor_memory", "Executor memory")):
        default = memory_mb(getattr(ks, name), REQUEST_VARIABLES[name]) if getattr(ks, name) else None
        properties[name] = launch_parameter("integer", f"{what} in MB (2g, 512m are accepted too)", minimum=1, maximum=limit, default=default)
    return {REQUEST_VARIABLES[name]: prop for name, prop in properties.items() if name in s.request_overrides}


def refuse_spark_r(kernel: KernelContext) -> None:
    """Refuse a Spark R kernelspec (Enterprise Gateway's ``spark_R_yarn_cluster``) whose
    ``SPARK_HOME`` has no SparkR: pyspark's package, the Spark eg installs, ships none, and
    Enterprise Gateway's ``launch_IRkernel.R`` needs it for the Spark context."""
    if str(kernel.spec.get("language", "")).lower() != "r":
        return
    spark_home = kernel.env.get("SPARK_HOME") or (kernel.spec.get("env") or {}).get("SPARK_HOME") or ""
    if spark_home and os.path.isdir(os.path.join(spark_home, "R", "lib", "SparkR")):
        return
    raise BadRequest(
        f"kernelspec {kernel.kernel_name!r} is a Spark R kernel, but SPARK_HOME ({spark_home or 'unset'}) has no "
        "SparkR (R/lib/SparkR): pyspark's package, the Spark eg installs, does not include it. Use an R kernel "
        "without Spark (eg-yarn's R_yarn_rest), or point SPARK_HOME at a full Spark distribution built with SparkR."
    )


def resolve(kernel: KernelContext) -> Launch:
    """Merge the layers for one launch and check every value; called before submitting."""
    s = settings()
    ks = kernelspec_settings(kernel, s)  # the gateway's settings with the kernelspec's overrides
    if ks.submission == "spark-submit":
        refuse_spark_r(kernel)
    values: dict[str, Any] = {name: getattr(ks, name) for name in REQUEST_VARIABLES}
    for name, variable in REQUEST_VARIABLES.items():
        requested = kernel.env.get(variable)
        if requested is None or requested == str(values[name]):
            continue
        if name not in s.request_overrides:
            raise LaunchRefused(f"{variable} may not be set by requests here (YarnSettings.request_overrides)")
        values[name] = requested
        _check_allowed(name, variable, requested, s)
    for name in ("queue", "node_label"):
        if values[name] and not _NAME.match(str(values[name])):
            raise BadRequest(f"{REQUEST_VARIABLES[name]} must be a YARN {name.replace('_', ' ')} name (letters, digits, '_', '.', '-')")
    driver = memory_mb(values["driver_memory"], "KERNEL_DRIVER_MEMORY") if values["driver_memory"] else 0
    executor = memory_mb(values["executor_memory"], "KERNEL_EXECUTOR_MEMORY") if values["executor_memory"] else 0
    user, impersonate = _user(kernel, s)
    return Launch(
        endpoints=tuple(e for e in (ks.yarn_endpoint, ks.alt_yarn_endpoint if ks.yarn_endpoint else "") if e),
        kerberos=ks.yarn_endpoint_security_enabled,
        mutual_authentication=s.mutual_authentication,
        verify=s.cert_bundle or True,
        timeout=s.request_timeout,
        submission=ks.submission,
        user=user,
        impersonate=impersonate,
        queue=str(values["queue"] or ""),
        node_label=str(values["node_label"] or ""),
        driver_memory_mb=driver,
        executor_memory_mb=executor,
        legacy_launcher=remote.legacy_launcher(kernel),
    )


def gateway_launch() -> Launch:
    """RM access with the gateway's own settings and identity (for startup checks)."""
    s = settings()
    return Launch(
        endpoints=tuple(e for e in (s.yarn_endpoint, s.alt_yarn_endpoint if s.yarn_endpoint else "") if e),
        kerberos=s.yarn_endpoint_security_enabled, mutual_authentication=s.mutual_authentication,
        verify=s.cert_bundle or True, timeout=s.request_timeout, submission=s.submission, user=getpass.getuser(),
        impersonate=False, queue="", node_label="", driver_memory_mb=0, executor_memory_mb=0, legacy_launcher=False,
    )


def _check_allowed(name: str, variable: str, value: str, s: YarnSettings) -> None:
    if name == "queue" and s.allowed_queues and value not in s.allowed_queues:
        raise LaunchRefused(f"{variable} {value!r} is not allowed; allowed queues: {', '.join(s.allowed_queues)}")
    if name == "node_label" and s.allowed_node_labels and value not in s.allowed_node_labels:
        raise LaunchRefused(f"{variable} {value!r} is not allowed; allowed node labels: {', '.join(s.allowed_node_labels)}")
    if name.endswith("_memory") and s.max_memory:
        asked, limit = memory_mb(value, variable), memory_mb(s.max_memory, "YarnSettings.max_memory")
        if asked > limit:
            raise LaunchRefused(f"{variable} asks for {asked} MB; at most {limit} MB ({s.max_memory}) is allowed")


def _user(kernel: KernelContext, s: YarnSettings) -> tuple[str, bool]:
    """The user the application is submitted as, and whether that is impersonation."""
    own = getpass.getuser()
    requested = remote.requested_user(kernel, enabled=s.impersonation_enabled, prohibited=s.prohibited_users,
                                      setting="YarnSettings.prohibited_users")
    return (own, False) if requested in (None, own) else (requested, True)
