"""The ``ssh`` resource manager's settings: gateway-wide traits, overridden per kernelspec.

Gateway-wide values come from :class:`SSHResourceManager` (config file, CLI flags such as
``--SSHResourceManager.remote_hosts``, or Enterprise Gateway's environment variables); a
kernelspec's provisioner ``config`` (or EG's ``process_proxy.config``) overrides the traits
tagged ``kernelspec=True``. :func:`resolve` merges the two once per launch, before anything is
created (:func:`eg_core.config.kernelspec_settings`).
"""

from __future__ import annotations

import getpass
import re
from types import SimpleNamespace

from traitlets import Bool, Enum, Float, Int, List, Unicode
from traitlets.config import SingletonConfigurable

from eg_core import BadRequest, KernelContext, LaunchRefused, orphans, remote
from eg_core.config import EnvDefaults, kernelspec_settings, launch_parameter

from ._ssh import Target

ALGORITHMS = ("round-robin", "least-connection")
# POSIX portable user names (useradd's default rule), at most 32 characters.


class SSHResourceManager(EnvDefaults, SingletonConfigurable):
    """Settings of the ``ssh`` resource manager (kernels on remote hosts over SSH).

    The gateway instantiates it once at startup with its config; the plugin reads it with
    ``SSHResourceManager.instance()``. Each trait tagged with ``env`` takes its default from the
    first of those environment variables that is set; the config file and CLI flags win.
    """

    remote_hosts = List(
        Unicode(), ["localhost"], config=True,
        help="Hosts kernels may run on ('host' or 'host:port'). Kernelspec config: remote_hosts "
        "(a comma string or a list).",
    ).tag(kernelspec=True, env=("EG_REMOTE_HOSTS",))
    load_balancing_algorithm = Enum(
        ALGORITHMS, "round-robin", config=True,
        help="How a host is chosen: round-robin, or least-connection (fewest kernels of this gateway).",
    ).tag(kernelspec=True, env=("EG_LOAD_BALANCING_ALGORITHM",))
    remote_user = Unicode(
        config=True, help="The user kernels run as on the remote hosts (default: the gateway's user)."
    ).tag(kernelspec=True, env=("EG_REMOTE_USER",))
    ssh_port = Int(22, config=True, help="The SSH port of hosts listed without one.").tag(kernelspec=True, env=("EG_SSH_PORT",))
    client_keys = List(
        Unicode(), [], config=True,
        help="Private key files to log in with (default: ssh-agent and ~/.ssh/id_* of the gateway's user).",
    ).tag(kernelspec=True, env=("EG_SSH_CLIENT_KEYS",))
    remote_password = Unicode(
        "", config=True,
        help="Password of remote_user, for hosts that accept password logins (tried after the keys). "
        "Never logged; prefer keys.",
    ).tag(env=("EG_REMOTE_PWD",))
    known_hosts = Unicode(
        "~/.ssh/known_hosts", config=True,
        help="The known_hosts file host keys are verified against; an unknown or changed key fails the launch.",
    ).tag(kernelspec=True, env=("EG_SSH_KNOWN_HOSTS",))
    remote_python = Unicode(
        "python3", config=True,
        help="The Python on the remote hosts (with ipykernel). It runs eg-ssh's bootstrap and replaces "
        "'python'/'python3' as the first word of a kernelspec's argv.",
    ).tag(kernelspec=True, env=("EG_SSH_REMOTE_PYTHON",))
    kernel_log_dir = Unicode(
        "/tmp", config=True,
        help="Directory on the remote host for kernel-<id>.log (the launcher's and kernel's output).",
    ).tag(kernelspec=True, env=("EG_KERNEL_LOG_DIR",))
    keep_kernel_logs = Bool(
        False, config=True, help="Keep the remote log of kernels that ended cleanly (others are always kept)."
    ).tag(kernelspec=True, env=("EG_SSH_KEEP_KERNEL_LOGS",))
    launcher_dir = Unicode(
        "~/.cache/eg-ssh", config=True,
        help="Directory on the remote host (of the remote user) where the kernel launcher is cached, "
        "keyed by its hash.",
    ).tag(kernelspec=True, env=("EG_SSH_LAUNCHER_DIR",))
    replace_eg_launcher = Bool(
        True, config=True,
        help="Run eg's own launcher where a kernelspec's argv names a launch_ipykernel.py (as Enterprise "
        "Gateway's kernelspecs do), so remote hosts need only Python and ipykernel.",
    ).tag(kernelspec=True)
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
        kernelspec=True, env=("EG_SSH_CONNECT_TIMEOUT",)
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
    gateway_id = orphans.GatewayId(
        config=True,
        help="Marks this gateway's launchers (in their environment). At startup, kernels of this id on "
        "remote_hosts that the session store does not know, and whose gateway process is not alive on "
        "this host, are orphans. Gateways sharing remote hosts need different ids; the default names "
        "this host, so set one where the host name changes between restarts (a container).",
    )
    orphans_at_startup = Enum(
        orphans.POLICIES, "log", config=True,
        help="What to do at startup with orphaned kernels of this gateway_id on remote_hosts: 'log', "
        "'remove' (kill their process group over SSH) or 'ignore'.",
    )


def resolve(kernel: KernelContext) -> SimpleNamespace:
    """The settings of one launch: the gateway's, with the kernelspec's overrides. Called at
    each launch; raises :class:`eg_core.BadRequest` naming the kernelspec key that is wrong."""
    settings = kernelspec_settings(kernel, SSHResourceManager)
    settings.remote_hosts = tuple(settings.remote_hosts)
    settings.client_keys = tuple(settings.client_keys)
    settings.remote_user = settings.remote_user or getpass.getuser()
    settings.max_sessions_per_connection = max(settings.max_sessions_per_connection, 1)
    if not settings.remote_hosts:
        raise BadRequest(f"kernelspec {kernel.kernel_name!r}: no remote hosts are configured (remote_hosts)")
    return settings


def launch_parameters(kernel: KernelContext) -> dict[str, dict]:
    """The kernelspec's launch parameters (``eg_launch_parameters``): ``KERNEL_REMOTE_HOST``,
    one of the ``remote_hosts`` the launch chooses among (:meth:`._hosts.HostTable.candidates`
    refuses any other)."""
    hosts = list(resolve(kernel).remote_hosts)
    return {"KERNEL_REMOTE_HOST": launch_parameter(
        "string", "The remote host to run the kernel on (without it, the load balancer chooses)", enum=hosts)}


def target(settings: SimpleNamespace, host: str, port: int, user: str) -> Target:
    """Where and how to log in for a kernel on ``host``, with one launch's ``settings``."""
    return Target(
        host, port, user, settings.client_keys, settings.known_hosts, settings.connect_timeout,
        settings.keepalive_interval, password=settings.remote_password, gss=settings.gss_auth,
    )


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


def remote_user(kernel: KernelContext, settings: SimpleNamespace) -> str:
    """The user a kernel runs as: the configured one, or with impersonation the request's
    ``KERNEL_USERNAME``. Called at each launch.

    Raises :class:`eg_core.LaunchRefused` for a prohibited user and :class:`eg_core.BadRequest`
    for a name that is not a valid user name.
    """
    rm = SSHResourceManager.instance()
    requested = remote.requested_user(kernel, enabled=rm.impersonation_enabled, prohibited=rm.prohibited_users,
                                      setting="SSHResourceManager.prohibited_users")
    return requested or settings.remote_user


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
