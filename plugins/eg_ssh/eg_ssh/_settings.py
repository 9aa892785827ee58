"""The ``ssh`` resource manager's settings: gateway-wide traits, overridden per kernelspec.

Gateway-wide values come from :class:`SSHResourceManager` (config file, CLI flags such as
``--SSHResourceManager.remote_hosts``, or Enterprise Gateway's environment variables); a
kernelspec's provisioner ``config`` (or EG's ``process_proxy.config``) overrides them for its
kernels. :func:`resolve` merges the two once per launch, before anything is created.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass, field
from typing import Any

from traitlets import Bool, Enum, Float, Int, List, Unicode
from traitlets.config import SingletonConfigurable

from eg_core import BadRequest, KernelContext, LaunchRefused

from ._ssh import Target

ALGORITHMS = ("round-robin", "least-connection")
# POSIX portable user names (useradd's default rule), at most 32 characters.
_USER_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\Z")


class SSHResourceManager(SingletonConfigurable):
    """Settings of the ``ssh`` resource manager (kernels on remote hosts over SSH).

    The gateway instantiates it once at startup with its config; the plugin reads it with
    ``SSHResourceManager.instance()``. Each trait tagged with ``env`` takes its default from the
    first of those environment variables that is set; the config file and CLI flags win.
    """

    remote_hosts = List(
        Unicode(), ["localhost"], config=True,
        help="Hosts kernels may run on ('host' or 'host:port'). Kernelspec config: remote_hosts "
        "(a comma string or a list).",
    ).tag(env=("EG_REMOTE_HOSTS",))
    load_balancing_algorithm = Enum(
        ALGORITHMS, "round-robin", config=True,
        help="How a host is chosen: round-robin, or least-connection (fewest kernels of this gateway).",
    ).tag(env=("EG_LOAD_BALANCING_ALGORITHM",))
    remote_user = Unicode(
        config=True, help="The user kernels run as on the remote hosts (default: the gateway's user)."
    ).tag(env=("EG_REMOTE_USER",))
    ssh_port = Int(22, config=True, help="The SSH port of hosts listed without one.").tag(env=("EG_SSH_PORT",))
    client_keys = List(
        Unicode(), [], config=True,
        help="Private key files to log in with (default: ssh-agent and ~/.ssh/id_* of the gateway's user).",
    ).tag(env=("EG_SSH_CLIENT_KEYS",))
    remote_password = Unicode(
        "", config=True,
        help="Password of remote_user, for hosts that accept password logins (tried after the keys). "
        "Never logged; prefer keys.",
    ).tag(env=("EG_REMOTE_PWD",))
    known_hosts = Unicode(
        "~/.ssh/known_hosts", config=True,
        help="The known_hosts file host keys are verified against; an unknown or changed key fails the launch.",
    ).tag(env=("EG_SSH_KNOWN_HOSTS",))
    remote_python = Unicode(
        "python3", config=True,
        help="The Python on the remote hosts (with ipykernel). It runs eg-ssh's bootstrap and replaces "
        "'python'/'python3' as the first word of a kernelspec's argv.",
    ).tag(env=("EG_SSH_REMOTE_PYTHON",))
    kernel_log_dir = Unicode(
        "/tmp", config=True,
        help="Directory on the remote host for kernel-<id>.log (the launcher's and kernel's output).",
    ).tag(env=("EG_KERNEL_LOG_DIR",))
    keep_kernel_logs = Bool(
        False, config=True, help="Keep the remote log of kernels that ended cleanly (others are always kept)."
    ).tag(env=("EG_SSH_KEEP_KERNEL_LOGS",))
    launcher_dir = Unicode(
        "~/.cache/eg-ssh", config=True,
        help="Directory on the remote host (of the remote user) where the kernel launcher is cached, "
        "keyed by its hash.",
    ).tag(env=("EG_SSH_LAUNCHER_DIR",))
    replace_eg_launcher = Bool(
        True, config=True,
        help="Run eg's own launcher where a kernelspec's argv names a launch_ipykernel.py (as Enterprise "
        "Gateway's kernelspecs do), so remote hosts need only Python and ipykernel.",
    )
    impersonation_enabled = Bool(
        False, config=True,
        help="Run each kernel as the request's KERNEL_USERNAME on the remote host; otherwise always as "
        "remote_user.",
    ).tag(env=("EG_IMPERSONATION_ENABLED",))
    prohibited_users = List(
        Unicode(), ["root"], config=True, help="Users kernels may never run as through impersonation."
    ).tag(env=("EG_SSH_PROHIBITED_USERS",))
    gss_auth = Bool(
        False, config=True,
        help="Log in with Kerberos (GSSAPI) using the gateway's tickets (KRB5CCNAME), not keys or a "
        "password; host keys are still verified against known_hosts. Needs pip install 'eg-ssh[gssapi]'.",
    ).tag(env=("EG_REMOTE_GSS_SSH",))
    enable_tunneling = Bool(
        False, config=True,
        help="Reach kernels' ports through SSH tunnels (local port forwards to the kernel's host), so "
        "only the hosts' SSH port must be reachable from the gateway.",
    ).tag(env=("EG_ENABLE_TUNNELING",))
    connect_timeout = Float(10.0, config=True, help="Seconds to open and authenticate an SSH connection.").tag(
        env=("EG_SSH_CONNECT_TIMEOUT",)
    )
    keepalive_interval = Float(30.0, config=True, help="Seconds between SSH keepalives (0: none).")
    down_host_retry_interval = Float(
        30.0, config=True, help="Seconds a host that could not be reached is tried only after the others."
    )
    max_sessions_per_connection = Int(
        8, config=True,
        help="Kernels per SSH connection before another connection is opened (keep it below sshd's "
        "MaxSessions, 10 by default).",
    )
    connection_idle_timeout = Float(
        300.0, config=True, help="Seconds an SSH connection without kernels stays open for reuse."
    )

    def __init__(self, **kwargs: Any):
        _apply_env(self)  # before the config is loaded, so the config file and CLI win
        super().__init__(**kwargs)


def _apply_env(obj: SSHResourceManager) -> None:
    for name, trait in obj.traits(config=True).items():
        for var in trait.metadata.get("env", ()):
            raw = os.environ.get(var)
            if raw is None:
                continue
            if isinstance(trait, List):
                setattr(obj, name, [v.strip() for v in raw.split(",") if v.strip()])
            elif isinstance(trait, Bool):
                setattr(obj, name, raw.strip().lower() in ("1", "true", "yes", "on"))
            else:
                setattr(obj, name, trait.from_string(raw.strip()))
            break


for _trait in SSHResourceManager.class_traits(config=True).values():
    if _trait.metadata.get("env"):
        _trait.help += f" Environment: {', '.join(_trait.metadata['env'])}."


@dataclass(frozen=True)
class Settings:
    """The settings of one launch: gateway-wide values with the kernelspec's overrides."""

    hosts: tuple[str, ...]
    algorithm: str
    user: str
    port: int
    client_keys: tuple[str, ...]
    known_hosts: str
    remote_python: str
    log_dir: str
    keep_logs: bool
    launcher_dir: str
    replace_eg_launcher: bool
    connect_timeout: float
    keepalive_interval: float
    down_host_retry_interval: float
    max_sessions: int
    idle_timeout: float
    password: str = field(default="", repr=False)
    tunneling: bool = False
    gss: bool = False

    def target(self, host: str, port: int, user: str) -> Target:
        """Where and how to log in for a kernel on ``host``."""
        return Target(
            host, port, user, self.client_keys, self.known_hosts, self.connect_timeout, self.keepalive_interval,
            password=self.password, gss=self.gss,
        )


# kernelspec config key -> (Settings field, type)
_OVERRIDES = {
    "remote_hosts": ("hosts", "list"),
    "load_balancing_algorithm": ("algorithm", str),
    "remote_user": ("user", str),
    "ssh_port": ("port", int),
    "client_keys": ("client_keys", "list"),
    "known_hosts": ("known_hosts", str),
    "remote_python": ("remote_python", str),
    "kernel_log_dir": ("log_dir", str),
    "keep_kernel_logs": ("keep_logs", bool),
    "launcher_dir": ("launcher_dir", str),
    "replace_eg_launcher": ("replace_eg_launcher", bool),
    "connect_timeout": ("connect_timeout", float),
}


def resolve(kernel: KernelContext) -> Settings:
    """Merge the gateway's settings with the kernelspec's ``config``; called at each launch.

    Raises :class:`eg_core.BadRequest` naming the kernelspec key that is wrong.
    """
    rm = SSHResourceManager.instance()
    values: dict[str, Any] = dict(
        hosts=tuple(rm.remote_hosts),
        algorithm=rm.load_balancing_algorithm,
        user=rm.remote_user or getpass.getuser(),
        port=rm.ssh_port,
        client_keys=tuple(rm.client_keys),
        known_hosts=rm.known_hosts,
        remote_python=rm.remote_python,
        log_dir=rm.kernel_log_dir,
        keep_logs=rm.keep_kernel_logs,
        launcher_dir=rm.launcher_dir,
        replace_eg_launcher=rm.replace_eg_launcher,
        connect_timeout=rm.connect_timeout,
        keepalive_interval=rm.keepalive_interval,
        down_host_retry_interval=rm.down_host_retry_interval,
        max_sessions=max(rm.max_sessions_per_connection, 1),
        idle_timeout=rm.connection_idle_timeout,
        password=rm.remote_password,
        tunneling=rm.enable_tunneling,
        gss=rm.gss_auth,
    )
    for key, (field, kind) in _OVERRIDES.items():
        if key in kernel.config:
            values[field] = _convert(kernel, key, kernel.config[key], kind)
    if not values["hosts"]:
        raise BadRequest(f"kernelspec {kernel.kernel_name!r}: no remote hosts are configured (remote_hosts)")
    if values["algorithm"] not in ALGORITHMS:
        raise BadRequest(
            f"kernelspec {kernel.kernel_name!r}: load_balancing_algorithm must be one of {', '.join(ALGORITHMS)}"
        )
    return Settings(**values)


def _convert(kernel: KernelContext, key: str, value: Any, kind: Any) -> Any:
    where = f"kernelspec {kernel.kernel_name!r}: config.{key}"
    if kind == "list":
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise BadRequest(f"{where} must be a comma-separated string or a list of strings")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise BadRequest(f"{where} must be true or false")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{where} must be {'a number' if kind in (int, float) else 'a string'}") from None


def split_host(entry: str, default_port: int) -> tuple[str, int]:
    """``"host"``, ``"host:port"`` or ``"[v6]:port"`` to ``(host, port)``."""
    entry = entry.strip()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    else:
        host, port = entry, ""
    if port and not port.isdigit():
        raise BadRequest(f"remote host {entry!r} must look like 'host' or 'host:port'")
    return host, int(port) if port else default_port


def remote_user(kernel: KernelContext, settings: Settings) -> str:
    """The user a kernel runs as: the configured one, or with impersonation the request's
    ``KERNEL_USERNAME``. Called at each launch.

    Raises :class:`eg_core.LaunchRefused` for a prohibited user and :class:`eg_core.BadRequest`
    for a name that is not a valid user name.
    """
    rm = SSHResourceManager.instance()
    requested = kernel.user or kernel.env.get("KERNEL_USERNAME")
    if not rm.impersonation_enabled or not requested:
        return settings.user
    if not kernel.user_from_request:  # the core's fallback (the gateway's own user) is no request
        return settings.user
    if not _USER_NAME.match(requested):
        raise BadRequest(
            "KERNEL_USERNAME must be a valid user name (lower-case letters, digits, '_', '.', '-'; "
            "at most 32 characters) to run a kernel as that user"
        )
    if requested in rm.prohibited_users:
        raise LaunchRefused(f"kernels may not run as user {requested!r} (SSHResourceManager.prohibited_users)")
    return requested


def pool_misfit(pooled: KernelContext, request: KernelContext) -> str | None:
    """Why a waiting pooled kernel cannot serve ``request`` (``eg_pool_fit``): with
    impersonation the request's kernel runs as another remote user; a request naming its host
    (``KERNEL_REMOTE_HOST``) gets one started there. None when it fits."""
    try:
        wanted = remote_user(request, resolve(request))
    except (BadRequest, LaunchRefused) as exc:
        return f"the request's remote user is not accepted: {exc.message}"
    have = pooled.state.get("user") or remote_user(pooled, resolve(pooled))
    if wanted != have:
        return f"the kernel would run as remote user {wanted!r}, the pooled one runs as {have!r}"
    host = request.env.get("KERNEL_REMOTE_HOST")
    if host and host != pooled.state.get("host"):
        return f"the request asks for host {host!r}"
    return None
