"""Enterprise Gateway's configuration names, read as eg's.

An Enterprise Gateway operator's ``jupyter_enterprise_gateway_config.py`` (and command-line
options such as ``--RemoteMappingKernelManager.cull_idle_timeout=600``) keep working: each
``c.EnterpriseGatewayApp.*``, ``c.RemoteMappingKernelManager.*`` (or ``MappingKernelManager``)
and ``c.KernelSessionManager.*`` (or its File/Webhook subclasses) option is set on the eg option
that does the same, logged once as ``c.EnterpriseGatewayApp.port -> c.Gateway.port``. An eg
option set under its own name wins. An option eg has no equivalent for is refused with what to
do instead; none is silently ignored. An option that several resource managers take (such as
``impersonation_enabled``) is set on each one installed.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable

from traitlets import Bool
from traitlets.config import Config, DeferredConfig

from ..config import ConfigError

APP_SECTIONS = ("EnterpriseGatewayApp", "KernelGatewayApp")
KERNEL_MANAGER_SECTIONS = ("RemoteMappingKernelManager", "MappingKernelManager", "AsyncMappingKernelManager")
SESSION_SECTIONS = ("KernelSessionManager", "FileKernelSessionManager", "WebhookKernelSessionManager")

_SAME_ON_GATEWAY = (
    "ip", "port", "port_retries", "base_url", "auth_token", "allow_credentials", "allow_headers", "allow_methods",
    "allow_origin", "expose_headers", "max_age", "trust_xheaders", "certfile", "keyfile", "client_ca", "ssl_version",
    "authorized_origin", "default_kernel_name", "list_kernels", "client_envs", "inherited_envs", "kernel_headers",
    "ws_ping_interval", "port_range", "dynamic_config_interval", "availability_mode", "log_level", "log_format",
    "log_datefmt",
)


def _persistence(value: Any) -> str:
    on = value.get_value(Bool()) if isinstance(value, DeferredConfig) else bool(value)
    return "replication" if on else ""


# (Enterprise Gateway section group, option) -> (eg section, eg option, value transform or None),
# or a tuple of such targets: the option is set on each one an installed plugin provides.
Target = tuple[str, str, "Callable[[Any], Any] | None"]
MAPPINGS: dict[tuple[str, str], Target | tuple[Target, ...]] = {
    **{("app", name): ("Gateway", name, None) for name in _SAME_ON_GATEWAY},
    ("app", "env_whitelist"): ("Gateway", "client_envs", None),
    ("app", "env_process_whitelist"): ("Gateway", "inherited_envs", None),
    ("app", "max_kernels"): ("KernelLimits", "max_kernels", None),
    ("app", "max_kernels_per_user"): ("KernelLimits", "max_kernels_per_user", None),
    ("app", "authorized_users"): ("UserAuthorization", "authorized_users", None),
    ("app", "unauthorized_users"): ("UserAuthorization", "unauthorized_users", None),
    ("app", "remote_hosts"): ("SSHResourceManager", "remote_hosts", None),
    ("app", "load_balancing_algorithm"): ("SSHResourceManager", "load_balancing_algorithm", None),
    ("app", "impersonation_enabled"): (
        ("SSHResourceManager", "impersonation_enabled", None), ("YarnSettings", "impersonation_enabled", None),
    ),
    ("app", "yarn_endpoint"): ("YarnSettings", "yarn_endpoint", None),
    ("app", "alt_yarn_endpoint"): ("YarnSettings", "alt_yarn_endpoint", None),
    ("app", "yarn_endpoint_security_enabled"): ("YarnSettings", "yarn_endpoint_security_enabled", None),
    ("km", "cull_idle_timeout"): ("KernelCuller", "cull_idle_timeout", None),
    ("km", "cull_interval"): ("KernelCuller", "cull_interval", None),
    ("km", "cull_connected"): ("KernelCuller", "cull_connected", None),
    ("km", "cull_busy"): ("KernelCuller", "cull_busy", None),
    ("km", "buffer_offline_messages"): ("Gateway", "buffer_offline_messages", None),
    ("km", "kernel_info_timeout"): ("Gateway", "kernel_info_timeout", None),
    ("km", "allowed_message_types"): ("Gateway", "allowed_message_types", None),
    ("km", "default_kernel_name"): ("Gateway", "default_kernel_name", None),
    ("session", "enable_persistence"): ("Gateway", "availability_mode", _persistence),
    ("session", "persistence_root"): ("FileSessionStore", "persistence_root", None),
    ("session", "webhook_url"): ("WebhookSessionStore", "webhook_url", None),
    ("session", "webhook_username"): ("WebhookSessionStore", "webhook_username", None),
    ("session", "webhook_password"): ("WebhookSessionStore", "webhook_password", None),
    ("session", "auth_type"): ("WebhookSessionStore", "auth_type", None),
}

# Enterprise Gateway options eg has no equivalent for, and what to do instead.
REFUSED: dict[tuple[str, str], str] = {
    ("app", "kernel_manager_class"): "eg runs kernels through resource-manager plugins; list them with 'eg-gateway plugins'",
    ("app", "kernel_spec_manager_class"): "eg reads kernelspecs from Gateway.kernel_spec_dirs and the Jupyter paths",
    ("app", "kernel_spec_cache_class"): "eg caches kernelspecs itself (re-read when their kernel.json changes)",
    ("app", "kernel_session_manager_class"): "session stores are plugins: set Gateway.availability_mode and use the "
    "file store (FileSessionStore.*) or the webhook store (WebhookSessionStore.*)",
    ("app", "authorizer_class"): "eg's authorization is a plugin hook (eg_user_allowed); use UserAuthorization.* or write a plugin",
    ("app", "conductor_endpoint"): "eg has no IBM Spectrum Conductor resource manager",
    ("km", "cull_idle_timeout_override"): "use KernelCuller.cull_idle_timeout",
}

# Enterprise Gateway process proxies (and gateway_provisioners' provisioners) that no eg resource
# manager implements, and what they run: a kernelspec naming one is refused by name (unless an
# installed plugin registers the name as an alias, see eg_kernelspec_aliases).
UNIMPLEMENTED_KERNELSPECS: dict[str, str] = {
    "ConductorClusterProcessProxy": "a kernel in IBM Spectrum Conductor",
    "SparkOperatorProcessProxy": "a SparkApplication of the Kubernetes Spark operator (driver and executors)",
    "spark-operator-provisioner": "a SparkApplication of the Kubernetes Spark operator (driver and executors)",
    "CustomResourceProcessProxy": "a Kubernetes custom resource",
    "custom-resource-provisioner": "a Kubernetes custom resource",
}

_GROUPS = {**{s: "app" for s in APP_SECTIONS}, **{s: "km" for s in KERNEL_MANAGER_SECTIONS}, **{s: "session" for s in SESSION_SECTIONS}}
_logged: set[tuple[str, str, str]] = set()


def is_eg_section(section: str) -> bool:
    return section in _GROUPS


def _targets(target: Any) -> tuple[Target, ...]:
    return target if isinstance(target[0], tuple) else (target,)


def _known_options(group: str) -> list[str]:
    return sorted({option for g, option in [*MAPPINGS, *REFUSED] if g == group})


def translate(config: Config, where: str, known: dict[str, type], log: Any) -> tuple[Config, list[str]]:
    """``config`` with Enterprise Gateway's sections replaced by eg's (see the module docstring),
    and one problem line for every Enterprise Gateway option that cannot be honoured (all of
    them, so an operator fixes a migrated file in one pass). Called at startup and on reload,
    for the command line and each config file.

    ``where`` names the file (or "command line") in problems; ``known`` maps eg's section names
    to their classes (a target of a plugin that is not installed is a problem).
    """
    out, problems = Config(), []
    for section, options in config.items():
        group = _GROUPS.get(section)
        if group is None:
            out[section] = options
            continue
        for option, value in options.items():
            name = f"c.{section}.{option}"
            if (group, option) in REFUSED:
                problems.append(f"{where}: {name} has no eg equivalent: {REFUSED[(group, option)]}")
                continue
            target = MAPPINGS.get((group, option))
            if target is None:
                hint = difflib.get_close_matches(option, _known_options(group), n=1)
                fix = f"did you mean c.{section}.{hint[0]}?" if hint else "remove it (see eg-gateway --help-all)"
                problems.append(f"{where}: {name} is not an Enterprise Gateway option eg knows: {fix}")
                continue
            installed = [t for t in _targets(target) if t[0] in known]
            if not installed:
                eg_names = " and ".join(f"c.{t[0]}.{t[1]}" for t in _targets(target))
                problems.append(
                    f"{where}: {name} maps to {eg_names}, which no installed eg plugin provides: "
                    "install the plugin (eg-gateway plugins lists those installed) or remove the option"
                )
                continue
            for eg_section, eg_option, transform in installed:
                if eg_option not in known[eg_section].class_traits(config=True):
                    problems.append(f"{where}: {name} has no eg equivalent yet: remove it")
                    continue
                if any(eg_section in cfg and eg_option in cfg[eg_section] for cfg in (config, out)):
                    continue  # eg's own spelling (or an earlier Enterprise Gateway section) wins
                out[eg_section][eg_option] = transform(value) if transform else value
                if (name, eg_section, where) not in _logged:
                    _logged.add((name, eg_section, where))
                    log.info("%s: Enterprise Gateway's %s read as c.%s.%s", where, name, eg_section, eg_option)
    return out, problems
