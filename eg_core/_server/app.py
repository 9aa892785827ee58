"""``eg-gateway``: configuration (traitlets: CLI, config file, ``EG_*`` env) and the web server."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
import secrets
import signal
import ssl
import sys
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_core.application import JupyterApp
from jupyter_core.paths import jupyter_path
from tornado import httpserver, web
from traitlets import Bool, CaselessStrEnum, Dict, Enum, Float, Int, List, Set, TraitError, Unicode, default, validate

from .. import __version__, orphans, procinfo, remote
from . import pywarnings, redact
from .._runtime.calling import acall, acall_first
from .._builtin import users_file
from .handlers import NotFoundHandler, api_routes
from .._runtime.kernels import KernelRegistry
from .._runtime.logs import JSON, JsonFormatter, one_line
from .._runtime.persistence import SessionPersistence
from ..config import (
    ConfigError, apply_env_defaults, check_finite, document_env, env_names, first_line, misspelt_variables,
    variables_read,
)
from .._runtime.env import SECRET_NAMES
from .._runtime.eg_compat import APP_SECTIONS, KERNEL_MANAGER_SECTIONS, SESSION_SECTIONS, translate
from .config_files import (
    check_command_line, check_options, check_paths, check_tls, config_sources, configurable_classes,
    effective_config_text, tls_minimum,
)
from .._runtime.logs import apply_log_levels
from .banner import banner_lines
from ..gateway import GatewayAPI
from ..identity import Identity, IdentityCache
from .._runtime.catalog import KernelSpecCatalog, packaged_kernelspecs_dir
from .._runtime.plugins import (
    describe, dormant_kernelspec_aliases, get_plugin_manager, kernelspec_aliases, kernelspec_dirs,
    refused_resource_managers, resource_managers, unknown_plugin_names,
)
from .._runtime.ports import PortRange
from .._runtime.callback_listener import ResponseListener
from .sessions import SessionManager
from .websocket import websocket_route


READY_TIMEOUT = 10.0  # seconds every eg_ready together may take


class Gateway(JupyterApp):
    """The eg kernel gateway."""

    name = "eg-gateway"
    version = __version__
    description = "eg: a pluggable Jupyter kernel gateway serving Enterprise Gateway's API."
    examples = "eg-gateway --port 8888\neg-gateway plugins\neg-gateway doctor\neg-gateway --help-all"

    aliases = {
        "ip": "Gateway.ip",
        "port": "Gateway.port",
        "port-retries": "Gateway.port_retries",
        "base-url": "Gateway.base_url",
        "keyfile": "Gateway.keyfile",
        "certfile": "Gateway.certfile",
        "client-ca": "Gateway.client_ca",
        "log-level": "Gateway.log_level",
        "log-format": "Gateway.log_format",
        "config": "JupyterApp.config_file",
    }
    flags = {
        "no-auth": ({"Gateway": {"no_auth": True}}, "Serve without a token (logged loudly)."),
        "list-plugins": ({"Gateway": {"list_plugins": True}}, "Print the plugins found and exit."),
        "generate-config": (
            {"JupyterApp": {"generate_config": True}},
            "Write every option, commented out with its default and help, to eg_gateway_config.py in the "
            "Jupyter config directory (or the --config path) and exit.",
        ),
        "y": ({"JupyterApp": {"answer_yes": True}}, "Answer yes to questions (overwrite a config file)."),
        "doctor": ({"Gateway": {"doctor": True}}, "Check every plugin's backend, print one line per check, exit 1 on a failure."),
        "debug": ({"Gateway": {"log_level": "DEBUG"}}, "Log at DEBUG level."),
    }

    ip = Unicode("127.0.0.1", config=True, help="Address to listen on.").tag(env=("EG_IP", "KG_IP"))
    port = Int(8888, config=True, help="Port to listen on.").tag(env=("EG_PORT", "KG_PORT"))
    port_retries = Int(0, config=True, help="How many following ports to try when the port is busy.").tag(
        env=("EG_PORT_RETRIES", "KG_PORT_RETRIES")
    )
    base_url = Unicode("/", config=True, help="URL prefix of every route.").tag(env=("EG_BASE_URL", "KG_BASE_URL"))
    auth_token = Unicode(
        "", config=True, help="Token clients must send. When empty (and no_auth is off) one is generated and printed."
    ).tag(env=("EG_AUTH_TOKEN", "KG_AUTH_TOKEN"), unset="EG_AUTH_TOKEN, else a token generated and printed at each start")
    auth_token_file = Unicode(
        "", config=True,
        help="File holding the token (its first line), read at startup: keeps the token out of the command line and environment.",
    ).tag(env=("EG_AUTH_TOKEN_FILE",))
    users_file = Unicode(
        "", config=True, help="JSON file of per-user tokens, {\"alice\": \"<token>\", ...}; a client using one acts as that user."
    ).tag(env=("EG_USERS_FILE",))
    admin_users = Set(
        Unicode(), config=True,
        help="With per-user tokens (users_file, JupyterHub, OIDC), the users who see and manage every user's kernels "
        "and sessions, as the gateway's own token does; every other user sees only their own.",
    ).tag(env=("EG_ADMIN_USERS",))
    admin_groups = Set(
        Unicode(), config=True,
        help="Groups (as the identity provider reports them) whose members are admins, as admin_users are.",
    ).tag(env=("EG_ADMIN_GROUPS",))
    identity_cache_seconds = Float(
        60.0, config=True,
        help="Seconds a user's identity (from the users file, JupyterHub or an OIDC token) is kept before the provider "
        "is asked again: a revoked token or a changed group counts within this time (0: ask on every request).",
    ).tag(env=("EG_IDENTITY_CACHE_SECONDS",))
    bind_username = Bool(
        True, config=True, help="With per-user tokens, a kernel's KERNEL_USERNAME is the token's user; asking for another is refused (403)."
    ).tag(env=("EG_BIND_USERNAME",))
    no_auth = Bool(False, config=True, help="Serve without token authentication.").tag(env=("EG_NO_AUTH",))
    list_plugins = Bool(False, config=True, help="Print the plugins found and exit.")
    doctor = Bool(False, config=True, help="Check every plugin's backend (eg-gateway doctor) and exit.")
    allow_origin = Unicode("", config=True, help="Access-Control-Allow-Origin; '*' allows any origin.").tag(
        env=("EG_ALLOW_ORIGIN", "KG_ALLOW_ORIGIN")
    )
    allow_credentials = Unicode("", config=True, help="Access-Control-Allow-Credentials.").tag(
        env=("EG_ALLOW_CREDENTIALS", "KG_ALLOW_CREDENTIALS")
    )
    allow_headers = Unicode("", config=True, help="Access-Control-Allow-Headers.").tag(
        env=("EG_ALLOW_HEADERS", "KG_ALLOW_HEADERS")
    )
    allow_methods = Unicode("", config=True, help="Access-Control-Allow-Methods.").tag(
        env=("EG_ALLOW_METHODS", "KG_ALLOW_METHODS")
    )
    expose_headers = Unicode("", config=True, help="Access-Control-Expose-Headers.").tag(
        env=("EG_EXPOSE_HEADERS", "KG_EXPOSE_HEADERS")
    )
    max_age = Unicode("", config=True, help="Access-Control-Max-Age.").tag(env=("EG_MAX_AGE", "KG_MAX_AGE"))
    trust_xheaders = Bool(False, config=True, help="Trust X-Real-Ip / X-Scheme from a proxy.").tag(
        env=("EG_TRUST_XHEADERS", "KG_TRUST_XHEADERS")
    )
    certfile = Unicode("", config=True, help="TLS certificate file.").tag(env=("EG_CERTFILE", "KG_CERTFILE"))
    keyfile = Unicode("", config=True, help="TLS private key file.").tag(env=("EG_KEYFILE", "KG_KEYFILE"))
    client_ca = Unicode("", config=True, help="CA file: require client certificates signed by it.").tag(
        env=("EG_CLIENT_CA", "KG_CLIENT_CA")
    )
    list_kernels = Bool(True, config=True, help="Allow GET /api/kernels and GET /api/sessions.").tag(
        env=("EG_LIST_KERNELS", "KG_LIST_KERNELS")
    )
    default_kernel_name = Unicode("python3", config=True, help="Kernelspec used when a request names none.").tag(
        env=("EG_DEFAULT_KERNEL_NAME", "KG_DEFAULT_KERNEL_NAME")
    )
    kernel_spec_dirs = List(Unicode(), config=True, help="Directories searched for kernelspecs before the usual Jupyter ones.")
    allowed_kernelspecs = Set(Unicode(), config=True, help="When set, only these kernelspecs are served.").tag(
        env=("EG_ALLOWED_KERNELS",)
    )
    launch_timeout = Float(60.0, config=True, help="Seconds a kernel launch may take; a request's KERNEL_LAUNCH_TIMEOUT may only lower it.").tag(
        env=("EG_KERNEL_LAUNCH_TIMEOUT",)
    )
    client_envs = List(Unicode(), config=True, help="Names besides KERNEL_* a request's env may pass to a kernel ('*': any).").tag(
        env=("EG_CLIENT_ENVS", "EG_ENV_WHITELIST")
    )
    inherited_envs = List(Unicode(), config=True, help="Names copied from the gateway's environment into every kernel's.").tag(
        env=("EG_INHERITED_ENVS", "EG_ENV_PROCESS_WHITELIST")
    )
    port_range = Unicode("0..0", config=True, help="Ports kernels may use, 'lower..upper' ('0..0': any).").tag(
        env=("EG_PORT_RANGE",)
    )
    max_body_size = Int(
        8 * 1024 * 1024, config=True,
        help="Largest request body accepted, in bytes (413 beyond); bodies are read only once the token is checked.",
    ).tag(env=("EG_MAX_BODY_SIZE",))
    ws_client_buffer_size = Int(
        64 * 1024 * 1024, config=True,
        help="Bytes that may wait to be sent to one websocket client; beyond it the client's iopub output is dropped "
        "(it is told how much), and it is disconnected if replies alone exceed four times as much.",
    ).tag(env=("EG_WS_CLIENT_BUFFER_SIZE",))
    heartbeat_interval = Float(
        10.0, config=True,
        help="Seconds between heartbeat pings to each kernel; a kernel that does not echo one before the next is "
        "reported with execution_state 'unresponsive' (0: no heartbeat pings).",
    ).tag(env=("EG_HEARTBEAT_INTERVAL",))
    buffer_offline_messages = Bool(True, config=True, help="Buffer a disconnected session's messages for its reconnection.")
    kernel_info_timeout = Float(
        60.0, config=True,
        help="Seconds a kernel may take to answer kernel_info once started (within the launch timeout), "
        "and an adopted kernel before it is reported unresponsive.",
    ).tag(env=("EG_KERNEL_INFO_TIMEOUT",))
    allowed_message_types = List(
        Unicode(), config=True,
        help="Message types clients may send to kernels (e.g. execute_request, kernel_info_request); "
        "others are dropped with a warning. Empty: all.",
    ).tag(env=("EG_ALLOWED_MESSAGE_TYPES",))
    kernel_headers = List(
        Unicode(), config=True,
        help="Request headers passed to a new kernel's environment as KERNEL_HEADER_<NAME> "
        "(e.g. X-Forwarded-User becomes KERNEL_HEADER_X_FORWARDED_USER).",
    ).tag(env=("EG_KERNEL_HEADERS",))
    authorized_origin = Unicode(
        "", config=True,
        help="Host name every client certificate must match (needs certfile and client_ca); others get 403.",
    ).tag(env=("EG_AUTHORIZED_ORIGIN",))
    ssl_version = Unicode(
        "", config=True,
        help="Lowest TLS version accepted: TLSv1_2 (the default) or TLSv1_3; Enterprise Gateway's "
        "ssl.PROTOCOL_* numbers are accepted too (5: TLSv1_2).",
    ).tag(env=("EG_SSL_VERSION",))
    log_levels = Dict(
        Unicode(), config=True,
        help="Log level per resource manager (or any eg.<name> logger), e.g. {'docker': 'DEBUG', 'ssh': 'WARNING'}; "
        "also Enterprise Gateway's EG_SSH_LOG_LEVEL, EG_DOCKER_LOG_LEVEL, EG_KUBERNETES_LOG_LEVEL, "
        "EG_YARN_LOG_LEVEL (EG_<NAME>_LOG_LEVEL for any plugin).",
    ).tag(env_elsewhere=("EG_SSH_LOG_LEVEL", "EG_DOCKER_LOG_LEVEL", "EG_KUBERNETES_LOG_LEVEL", "EG_YARN_LOG_LEVEL"))
    ws_ping_interval = Float(30.0, config=True, help="Seconds between websocket pings (0: none).").tag(
        env=("EG_WS_PING_INTERVAL_SECS",)
    )
    autorestart = Bool(True, config=True, help="Restart a kernel that died unexpectedly.")
    restart_limit = Int(5, config=True, help="How many times a kernel is restarted automatically.")
    availability_mode = CaselessStrEnum(
        ["", "standalone", "replication"], "", config=True,
        help="Keep kernel sessions in the store: 'standalone' adopts them all at startup; 'replication' lets gateways sharing the store reach each other's kernels.",
    ).tag(env=("EG_AVAILABILITY_MODE",))
    kernel_session_persistence = Bool(
        True, config=True,
        help="Record every kernel in the session store (FileSessionStore.persistence_root, under the Jupyter data dir) "
        "from before its launch, so that the kernels of a gateway that crashed are adopted or removed by the next one "
        "(availability_mode 'standalone' unless set). Off: no store, and kernels end with the gateway process.",
    ).tag(env=("EG_KERNEL_SESSION_PERSISTENCE", "KG_KERNEL_SESSION_PERSISTENCE"))
    shutdown_kernels_on_exit = Bool(
        True, config=True, help="Shut kernels down when the gateway stops (default: yes, unless availability_mode is set)."
    ).tag(env=("EG_SHUTDOWN_KERNELS_ON_EXIT",), unset="yes, unless availability_mode is set")

    @default("shutdown_kernels_on_exit")
    def _shutdown_default(self) -> bool:
        return not self.availability_mode

    @default("availability_mode")
    def _mode_default(self) -> str:
        # Enterprise Gateway: persistence turned on explicitly, without a mode, means replication.
        persistence = os.environ.get("EG_KERNEL_SESSION_PERSISTENCE", "").lower() == "true"
        return "replication" if persistence else ""

    @property
    def session_mode(self) -> str:
        """The availability mode in effect: ``availability_mode``, else ``standalone`` while
        ``kernel_session_persistence`` is on, else "" (no store)."""
        return self.availability_mode or ("standalone" if self.kernel_session_persistence else "")

    dynamic_config_interval = Int(
        0, config=True, help="Seconds between checks of the config files for changes (0: only on SIGHUP)."
    ).tag(env=("EG_DYNAMIC_CONFIG_INTERVAL",))
    disabled_plugins = List(Unicode(), config=True, help="Plugins (by name) not to load.").tag(env=("EG_DISABLED_PLUGINS",))

    log_level = Enum(
        (0, 10, 20, 30, 40, 50, "DEBUG", "INFO", "WARN", "ERROR", "CRITICAL"), "INFO", config=True,
        help="Log level, by value or name.",
    )
    log_format = Unicode(
        "[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s] %(message)s", config=True,
        help="Format of log lines (Python logging's), or 'json': one JSON object per line for log collectors.",
    ).tag(env=("EG_LOG_FORMAT",), example="json")

    @validate("base_url")
    def _valid_base_url(self, proposal: dict) -> str:
        return "/" + proposal["value"].strip("/") + "/" if proposal["value"].strip("/") else "/"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        apply_env_defaults(self)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.auth_token or self.users_file)

    def load_token_file(self) -> None:
        """Read ``auth_token_file`` (at start)."""
        if not self.auth_token_file:
            return
        if self.auth_token:
            raise ConfigError("Gateway.auth_token and Gateway.auth_token_file are both set: keep one")
        try:
            with open(self.auth_token_file) as f:
                token = f.readline().strip()
        except OSError as exc:
            raise ConfigError(f"Gateway.auth_token_file {self.auth_token_file}: {exc.strerror}: fix the path") from None
        if not token:
            raise ConfigError(f"Gateway.auth_token_file {self.auth_token_file}: the file is empty: write the token on its first line")
        self.auth_token = token

    def load_users(self) -> None:
        """Read ``users_file`` (at start and on config reload) and forget every cached identity,
        so a token removed from the file, or a user's changed groups, count at once."""
        users_file.load(self.users_file)
        self.identities.ttl = max(0.0, self.identity_cache_seconds)
        self.identities.clear()

    _not_ready: list[str] = []  # the problems the last readiness check found

    async def readiness_problems(self) -> list[str]:
        """What keeps the gateway from serving kernels now (``GET /api/ready``): every plugin's
        ``eg_ready`` answer; one that raises, or all taking longer than ``READY_TIMEOUT``
        seconds, is a problem too."""
        try:
            answers = await asyncio.wait_for(acall(self.pm.hook.eg_ready), READY_TIMEOUT)
        except asyncio.TimeoutError:
            return [f"the readiness checks gave no answer within {READY_TIMEOUT:g}s"]
        except Exception as exc:  # noqa: BLE001 - a broken check means not ready, not a 500
            self.log.warning("a readiness check raised %s: %s", type(exc).__name__, exc)
            return [f"a readiness check raised {type(exc).__name__}; see the gateway log"]
        problems = [problem for answer in answers for problem in (answer or ())]
        if problems != self._not_ready:  # once per change, not at every probe
            if problems:
                self.log.warning("Not ready: %s", "; ".join(problems))
            elif self._not_ready:
                self.log.info("Ready again")
            self._not_ready = problems
        return problems

    async def identify(self, token: str) -> Identity | None:
        """Who ``token`` (not the service token) belongs to: the ``eg_identify`` providers'
        answer, cached (:mod:`eg_core.identity`)."""
        return await self.identities.identify(token)

    def is_admin(self, identity: Identity) -> bool:
        """Whether ``identity`` sees and manages every user's kernels (``admin_users``,
        ``admin_groups``)."""
        return identity.name in self.admin_users or bool(identity.groups & self.admin_groups)

    def cors_headers(self) -> dict[str, str]:
        values = {
            "Access-Control-Allow-Origin": self.allow_origin,
            "Access-Control-Allow-Credentials": self.allow_credentials,
            "Access-Control-Allow-Headers": self.allow_headers,
            "Access-Control-Allow-Methods": self.allow_methods,
            "Access-Control-Expose-Headers": self.expose_headers,
            "Access-Control-Max-Age": self.max_age,
        }
        return {k: v for k, v in values.items() if v}

    # -- setup -----------------------------------------------------------------------------

    def initialize(self, argv: list[str] | None = None) -> None:
        self.pm = get_plugin_manager(self._disabled_from_env())
        self.classes = [Gateway, ResponseListener, *self._plugin_configurables()]
        for cls in self.classes:
            document_env(cls)
        super().initialize(argv)
        if self.disabled_plugins:
            self.pm = get_plugin_manager(self.disabled_plugins)
        problems = unknown_plugin_names([*self.disabled_plugins, *self._disabled_from_env()], self.pm)
        if problems:
            raise ConfigError("\n".join(problems))
        eg_log = logging.getLogger("eg")
        eg_log.setLevel(self.log_level)
        eg_log.propagate = False
        eg_log.handlers = list(self.log.handlers)
        redact.install(eg_log.handlers)
        pywarnings.release(os.path.dirname(p.__file__) for p in self.pm.get_plugins() if getattr(p, "__file__", None))
        if self.list_plugins or self.generate_config:
            return
        try:
            check_finite(self)
        except ValueError as exc:
            raise ConfigError(f"{exc}: fix this option") from None
        PortRange.parse(self.port_range)
        check_paths(self)
        check_tls(self)
        apply_log_levels(self)
        self.load_token_file()
        self.identities = IdentityCache(lambda token: acall_first(self.pm.hook.eg_identify, token=token), self.identity_cache_seconds)
        self.load_users()
        self.settings_objects = [self._settings_instance(cls) for cls in self._plugin_configurables()]
        self._warn_misspelt_variables()
        ksm = KernelSpecManager(parent=self)
        ksm.kernel_dirs = [*self.kernel_spec_dirs, packaged_kernelspecs_dir(), *kernelspec_dirs(self.pm), *jupyter_path("kernels")]
        if self.allowed_kernelspecs:
            ksm.allowed_kernelspecs = set(self.allowed_kernelspecs)
        self.catalog = KernelSpecCatalog(ksm, set(resource_managers(self.pm)), self.log, kernelspec_aliases(self.pm),
                                          lambda: dormant_kernelspec_aliases(self.pm))
        self.catalog.refused = refused_resource_managers(self.pm)
        self.kernels = KernelRegistry(self, self.catalog, self.pm)
        if self.session_mode:
            self.kernels.persistence = SessionPersistence(self.kernels, self.session_mode)
        self.sessions = SessionManager(self.kernels)
        self.api = GatewayAPI(self)

    def generate_config_file(self, classes: Any = None) -> str:
        """The text ``--generate-config`` writes: traitlets', with each computed default written
        as the value in effect and no line for a setting only an unset value means
        (:func:`eg_core._server.config_files.effective_config_text`)."""
        classes = self.classes if classes is None else classes

        def value_of(cls: type, name: str) -> Any:
            return getattr(self if isinstance(self, cls) else cls(), name)

        return effective_config_text(super().generate_config_file(classes), classes, value_of)

    def get_default_logging_config(self) -> dict:
        config = super().get_default_logging_config()
        if self.log_format == JSON:
            config["formatters"]["console"] = {"()": JsonFormatter}
        return config

    def _settings_instance(self, cls: type) -> Any:
        try:
            return cls.instance(parent=self)
        except (TraitError, ValueError) as exc:
            raise ConfigError(f"{cls.__name__}: {first_line(exc)}: fix this option") from None

    def parse_command_line(self, argv: Any = None) -> None:
        # traitlets only warns about unknown options: refuse them first (check_command_line);
        # unknown --Section.option words are refused with the config files (load_config_file).
        argv = sys.argv[1:] if argv is None else list(argv)
        problems = check_command_line(argv, self.aliases, self.flags)
        if problems:
            raise ConfigError("\n".join(problems))
        quiet = _DropUnrecognized()
        self.log.addFilter(quiet)
        try:
            super().parse_command_line(argv)
        finally:
            self.log.removeFilter(quiet)

    def load_config_file(self, suppress_errors: bool = True) -> None:
        """Read the config files strictly (:mod:`eg_core._server.config_files`): a broken file, a missing
        ``--config`` path, unknown options or wrong values raise :class:`ConfigError`, one line
        for each problem of every file and the command line (all of them, in one run)."""
        if self.generate_config:  # the file to write may not exist yet
            return
        sources = config_sources(self.config_file, self.config_file_paths, self.config_file_name)
        known = configurable_classes(self.classes)
        eg_sections = (*APP_SECTIONS, *KERNEL_MANAGER_SECTIONS, *SESSION_SECTIONS)
        cli_config, problems = translate(self.cli_config, "command line", known, self.log)
        problems += check_options(cli_config, "command line", known, eg_sections)
        for source in sources:
            config = source.config
            if source.checked:
                config, found = translate(source.config, source.path, known, self.log)
                found += check_options(config, source.path, known, eg_sections)
                if found:
                    problems += found
                    continue
            try:
                self.update_config(config)
            except TraitError as exc:
                problems.append(f"{source.path}: {first_line(exc)}: fix this value")
                continue
            if source.path not in self._loaded_config_files:
                self._loaded_config_files.append(source.path)
        if problems:
            raise ConfigError("\n".join(problems))
        self.update_config(cli_config)

    def _config_values(self) -> dict[str, tuple[Any, Any]]:
        """``"Section.option" -> (object, value)`` for every option of the gateway and its
        plugins' settings (what a reload compares)."""
        return {
            f"{type(obj).__name__}.{name}": (obj, getattr(obj, name))
            for obj in (self, *self.settings_objects) for name in obj.traits(config=True)
        }

    def reload_config(self) -> None:
        """Re-read the config files (SIGHUP, or a change seen every ``dynamic_config_interval``):
        limits, allow-lists, user tokens and plugin settings change without a restart; options
        given on the command line keep their values. Logs each option that changed, and keeps
        the running value of one that only a restart applies (``RESTART_OPTIONS``: the port...),
        saying so."""
        self.log.info("Reloading configuration from %s", ", ".join(self.loaded_config_files) or "(no files)")
        before = self._config_values()
        try:
            self.load_config_file()
            if self.cli_config:
                self.update_config(self.cli_config)
            for settings in self.settings_objects:
                settings.update_config(self.config)
            self.load_users()
        except (Exception, SystemExit) as exc:  # a broken file must not take the gateway down
            self.log.error("Configuration not reloaded: %s", exc)
            return
        changed = []
        for key, (obj, old) in before.items():
            name = key.split(".", 1)[1]
            new = getattr(obj, name)
            if new == old:
                continue
            trait = obj.traits()[name]
            was, now = loggable(name, trait, old), loggable(name, trait, new)
            if obj is self and name in RESTART_OPTIONS:
                setattr(obj, name, old)
                self.log.warning("Configuration reload: %s changed (%s -> %s), which takes effect only when the "
                                 "gateway restarts: it keeps %s until then", key, was, now, was)
            else:
                changed.append(f"{key} {was} -> {now}")
        self.log.info("Configuration reloaded: %s", "; ".join(changed) if changed else "nothing else changed")
        before_refused = self.catalog.refused
        self.catalog.refused = refused_resource_managers(self.pm)
        self._log_refusals(before_refused)

    def _log_refusals(self, before: dict[str, str]) -> None:
        """Log each resource manager that refuses to run kernels (``eg_refused_resource_managers``),
        or runs them again, unless ``before`` said the same."""
        for rm, why in sorted(self.catalog.refused.items()):
            if before.get(rm) != why:
                self.log.warning("The %r resource manager runs no kernels: it %s", rm, why)
        for rm in sorted(set(before) - set(self.catalog.refused)):
            self.log.warning("The %r resource manager runs kernels again", rm)

    async def _watch_config_files(self) -> None:
        """Reload when a loaded config file changes (Enterprise Gateway's dynamic config)."""
        def mtimes() -> dict[str, float]:
            return {f: os.stat(f).st_mtime for f in self.loaded_config_files if os.path.exists(f)}

        seen = mtimes()
        while self.dynamic_config_interval > 0:
            await asyncio.sleep(self.dynamic_config_interval)
            now = mtimes()
            if now != seen:
                seen = now
                self.reload_config()

    def _warn_misspelt_variables(self) -> None:
        """At startup: a warning for each ``EG_*`` variable that is set, read by nothing, and
        close to one eg reads (the gateway still starts)."""
        dirs = [os.path.dirname(os.path.dirname(__file__))]  # eg_core/
        dirs += [os.path.dirname(p.__file__) for p in self.pm.get_plugins() if getattr(p, "__file__", None)]
        known = variables_read(self.classes, dict.fromkeys(dirs))
        for name, meant in misspelt_variables(os.environ, known):
            self.log.warning("%s is set, but eg reads no such variable: did you mean %s?", name, meant)

    def _disabled_from_env(self) -> list[str]:
        return [n for n in os.environ.get("EG_DISABLED_PLUGINS", "").split(",") if n]

    def _plugin_configurables(self) -> list[type]:
        return [cls for classes in self.pm.hook.eg_configurables() for cls in classes]

    def make_web_app(self) -> web.Application:
        routes = [*api_routes(), websocket_route()]
        for extra in self.pm.hook.eg_web_handlers():
            routes.extend(extra)
        prefixed = [(self.base_url + route[0], *route[1:]) for route in routes]
        return web.Application(
            prefixed,
            log_function=log_request,
            default_handler_class=NotFoundHandler,
            eg_gateway=self,
            websocket_ping_interval=self.ws_ping_interval or None,
            websocket_max_message_size=256 * 1024 * 1024,
        )

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.certfile:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = tls_minimum(self.ssl_version)
        context.load_cert_chain(self.certfile, self.keyfile or None)
        if self.client_ca:
            context.load_verify_locations(self.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def _listen(self, server: httpserver.HTTPServer) -> int:
        for port in range(self.port, self.port + self.port_retries + 1):
            try:
                server.listen(port, self.ip)
                return port
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise ConfigError(f"cannot listen on {self.ip}:{port}: {exc.strerror}: fix --ip (EG_IP) or --port (EG_PORT)") from None
                self.log.warning("Port %s is in use", port)
        busy = f"{self.port}" if not self.port_retries else f"{self.port}..{self.port + self.port_retries}"
        raise ConfigError(f"port {busy} is in use: choose another with --port (EG_PORT), or let eg try more with --port-retries (EG_PORT_RETRIES)")

    def _settle_auth(self) -> None:
        if self.no_auth:
            self.auth_token = ""
            self.log.warning("Authentication is DISABLED (no_auth): anyone who can reach %s:%s can run code.", self.ip, self.port)
        elif not self.auth_token and not self.users_file:
            self.auth_token = secrets.token_urlsafe(32)
            print(
                f"eg-gateway: no auth_token configured; generated one for this run:\n    {self.auth_token}\n"
                "Clients send it as 'Authorization: token <token>' (jupyter server: --GatewayClient.auth_token=...).\n"
                "Set EG_AUTH_TOKEN (or Gateway.auth_token) to choose one, or --no-auth to disable auth.",
                file=sys.stderr,
                flush=True,
            )

    async def serve(self) -> None:
        """Run until SIGTERM or SIGINT, then stop kernels (per ``shutdown_kernels_on_exit``)."""
        token_generated = not (self.no_auth or self.auth_token or self.users_file)
        self._settle_auth()
        raise_open_files_limit()
        if not procinfo.make_undumpable():
            self.log.warning("Could not make the gateway process non-dumpable; processes of its user can read its memory")
        if set(resource_managers(self.pm)) - {"local"}:
            listener = await remote.start_listener(parent=self)
            self.log.info("Remote kernels call back to the response address %s (ResponseListener.response_address)", listener.address)
        self._log_refusals({})
        await acall(self.pm.hook.eg_startup, gateway=self.api)
        if self.kernels.persistence is not None:
            adopted, removed = await self.kernels.persistence.recover()
            self.log.info("Session store: adopted %d running kernel(s), removed %d unfinished launch(es)", adopted, removed)
        server = httpserver.HTTPServer(
            self.make_web_app(), xheaders=self.trust_xheaders, ssl_options=self._ssl_context(),
            # API handlers answer 413 themselves at max_body_size; this caps every other route.
            max_body_size=self.max_body_size + 1024 * 1024,
        )
        port = self._listen(server)
        self._print_banner(port, token_generated)
        sweep = asyncio.ensure_future(self._startup_sweep())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload_config)
        watcher = asyncio.ensure_future(self._watch_config_files())
        await stop.wait()
        watcher.cancel()
        sweep.cancel()
        if self.kernels.persistence is not None:
            self.kernels.persistence.close()
        self.log.info("Stopping: %d kernel(s) running", len(self.kernels.kernels))
        server.stop()
        if self.shutdown_kernels_on_exit:
            await self.kernels.shutdown_all()
        else:
            self.log.info("Leaving %d kernel(s) running for the next gateway", len(self.kernels.kernels))
            self.kernels.leave_running()
        await acall(self.pm.hook.eg_shutdown, gateway=self.api)
        await remote.stop_listener()
        self.kernels.close()

    async def _startup_sweep(self) -> None:
        """Once the gateway serves: every plugin's ``eg_reconcile`` (what backends still run for
        kernels no one knows), then one line naming each backend it could not reach."""
        known = set(self.kernels.kernels)
        if self.kernels.persistence is not None:
            known |= await self.kernels.persistence.stored_kernel_ids()
        with orphans.gathering_unreachable() as unreachable:
            try:
                await acall(self.pm.hook.eg_reconcile, known_kernel_ids=known)
            except Exception:
                self.log.exception("Startup sweep failed")
        if unreachable:
            self.log.warning(
                "Startup sweep for orphaned kernels could not reach: %s",
                "; ".join(f"{name} ({reason})" for name, reason in sorted(unreachable.items())),
            )
        self.log.debug("Startup sweep done")

    def _print_banner(self, port: int, token_generated: bool) -> None:
        lines = banner_lines(self, port, token_generated)
        if self.log_format == JSON:  # log collectors get JSON lines only, and no token
            for line in lines:
                self.log.info("%s", line.replace(self.auth_token, "<token>") if self.auth_token else line)
        else:
            print("\n".join(lines), file=sys.stderr, flush=True)

    def start(self) -> None:
        if self.list_plugins:
            print_plugins(self.pm)
            return
        if self.generate_config:
            self.write_default_config()
            return
        if self.doctor:
            from .doctor_command import doctor

            sys.exit(asyncio.run(doctor(self)))
        asyncio.run(self.serve())


# Gateway options read once at startup: a reload keeps their running value and says so.
RESTART_OPTIONS = frozenset({
    "ip", "port", "port_retries", "base_url", "certfile", "keyfile", "client_ca", "ssl_version", "auth_token",
    "auth_token_file", "no_auth", "kernel_spec_dirs", "allowed_kernelspecs", "disabled_plugins", "log_format",
    "availability_mode", "kernel_session_persistence", "trust_xheaders", "ws_ping_interval", "max_body_size",
})


def loggable(name: str, trait: Any, value: Any) -> str:
    """A setting's value as a log line may show it: ``[secret]`` for a token, password, key or
    secret (by its name or its ``EG_*`` variable), else its repr. Called by the reload's log."""
    secret = any(word in name for word in ("token", "password", "secret", "keyfile", "key_file"))
    if secret or set(env_names(trait)) & SECRET_NAMES:
        return "[secret]" if value else "''"
    return repr(value)


class _DropUnrecognized(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "not recognized by" not in str(record.msg)


def raise_open_files_limit() -> None:
    """Every kernel holds a few descriptors in the gateway (sockets, a pidfd): let the soft
    open-files limit be the hard one, so the OS's limit is the only one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def log_request(handler: web.RequestHandler) -> None:
    """Access log on ``eg.access``: successes at DEBUG, client errors at WARNING (with the answer's
    message), 5xx at ERROR; DEBUG for an error the gateway already logged (a failed launch)."""
    status = handler.get_status()
    error = getattr(handler, "eg_error", None)
    level = logging.DEBUG if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    if error is not None and error.logged:
        level = logging.DEBUG
    request = handler.request
    why = f": {error.reason}: {one_line(error.message)}" if error is not None else ""
    logging.getLogger("eg.access").log(
        level, "%d %s %s (%s) %.2fms%s", status, request.method, request.path, request.remote_ip,
        1000 * request.request_time(), why,
    )


def print_plugins(pm: Any) -> None:
    for row in describe(pm):
        kind = "resource manager" if row["resource_manager"] else "plugin"
        print(f"{row['name']}  ({kind}; {row['package']})")
        for hook in row["hooks"]:
            print(f"    {hook}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["plugins"]:
        argv = ["--list-plugins", *argv[1:]]
    elif argv[:1] == ["doctor"]:
        argv = ["--doctor", *argv[1:]]
    elif argv[:1] == ["new-plugin"]:
        from .new_plugin import main as new_plugin

        sys.exit(new_plugin(argv[1:]))
    try:
        app = Gateway()
        app.initialize(argv)
        app.start()
    except ConfigError as exc:
        sys.exit("\n".join(f"eg-gateway: {line}" for line in str(exc).splitlines()))
