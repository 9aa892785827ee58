"""Every hook of eg, in one place.

There are two kinds of hooks:

- **Resource-manager hooks** (``eg_launch_process`` ... ``eg_pool_fit``): exactly one
  plugin takes part, the resource manager that the kernel's kernelspec names. The core selects it
  per kernel with ``PluginManager.subset_hook_caller`` (see :mod:`eg_core._runtime.plugins`), so an
  implementation never checks whether a kernel is "its own". They are ``firstresult`` hooks.
- **Observer hooks** (``eg_before_launch``, ``eg_after_launch``, ``eg_kernel_event``) and
  **registration hooks** (``eg_configurables``, ``eg_web_handlers``, ``eg_startup``,
  ``eg_shutdown``): every registered plugin takes part.

Any implementation may be ``async def`` unless its docstring says "Sync only" (those hooks are
listed in ``SYNC_ONLY_HOOKS``): the core awaits results through :mod:`eg_core._runtime.calling`. An
async ``firstresult`` implementation may decline by returning ``None``: the next one is asked.
Rules checked when a plugin registers (a :class:`pluggy.PluginValidationError` names the
plugin and hook): an ``async def`` implementation of a sync-only hook is refused, and so is
``wrapper=True``/``hookwrapper=True`` on any hook that may be async (it would see coroutines).

The launch sequence, in the order the code runs it, is the docstring of
:func:`eg_core._runtime.launch.launch_sequence`; restart runs ``eg_kill``/``eg_cleanup(restart=True)``
and then the same launch sequence again with ``kernel.restarting`` set.

Every hook receives ``kernel``, a :class:`eg_core.KernelContext`; implementations may accept
only the arguments they use.

A resource manager may write its resource-manager hooks as the functions of one module, each
named as the hook without ``eg_`` (``launch_process``, ``confirm_startup``, ``poll``...), and
make them its plugin module's hooks with ``globals().update(eg_core.hooks_from("my_rm._kernels"))``
(see :func:`eg_core.hooks_from`); the hooks, their arguments and their rules are the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

NAME = "eg"
hookspec = pluggy.HookspecMarker(NAME)

if TYPE_CHECKING:
    from ._runtime.context import KernelContext
    from .doctor import Check
    from .gateway import GatewayAPI
    from .identity import Identity


# ---------------------------------------------------------------------------------------------
# Resource-manager hooks: the kernelspec's resource manager only (firstresult).
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def eg_launch_process(kernel: KernelContext, cmd: list[str]) -> None:
    """Start the kernel: a process, an SSH command, a container, a pod, an application.

    Called by the launch sequence after ``eg_before_launch``; ``cmd`` is the kernelspec's argv
    with its templates filled (``{connection_file}``, ``{kernel_id}``, ``{response_address}``,
    ``{public_key}``, ``{port_range}``...). ``kernel.env`` is the kernel's environment. When it
    uses a connection file written by the core, ``kernel.connection_info`` is already set.

    Record what later hooks need in ``kernel.state`` (JSON-able) and ``kernel.handles`` (live
    objects). The session store holds ``kernel.state`` from before this hook and again right
    after it; when what is created cannot be found again from that (a name or host chosen
    here), record it in ``kernel.state`` and ``await kernel.checkpoint()`` before creating it,
    so the gateway that follows a crash finds and removes it (``eg_load_process_info``, then
    ``eg_kill`` and ``eg_cleanup``). Raise :class:`eg_core.BadRequest` for invalid settings before creating anything, or
    :class:`eg_core.LaunchFailed` when the launch fails.

    Participants: the resource manager only. May be async. Returns nothing.
    """


@hookspec(firstresult=True)
def eg_confirm_startup(kernel: KernelContext) -> None:
    """Wait until the launched kernel runs and its connection info is known.

    Called right after ``eg_launch_process``; the core bounds it by ``kernel.launch_timeout``
    (a timeout fails the launch in phase ``confirm_startup``). Wait on events (a launcher
    callback, a watch) rather than sleeping in a loop. Raise :class:`eg_core.LaunchFailed` with
    the remote error as soon as the kernel is known to have failed.

    Participants: the resource manager only. May be async. Returns nothing.
    """


@hookspec(firstresult=True)
def eg_connection_info(kernel: KernelContext) -> dict[str, Any]:
    """Return the running kernel's connection info.

    Called after ``eg_confirm_startup``. The dict has ``ip``, ``transport``, ``shell_port``,
    ``iopub_port``, ``stdin_port``, ``hb_port``, ``control_port``, ``key`` and
    ``signature_scheme``, with an ``ip`` this gateway can reach.

    Optional: the default returns ``kernel.connection_info`` (the connection file the core wrote,
    or what :func:`eg_core.remote.wait_for_callback` stored).

    Participants: the resource manager only. May be async. Returns the dict.
    """


@hookspec(firstresult=True)
def eg_poll(kernel: KernelContext) -> int | None:
    """Tell whether the kernel still runs.

    Called when the core needs the kernel's liveness (model requests, shutdown).

    Participants: the resource manager only. May be async. Returns ``None`` while the kernel
    runs, else an exit status (an int; use 0 when unknown).
    """


@hookspec(firstresult=True)
def eg_wait(kernel: KernelContext) -> int | None:
    """Wait until the kernel has ended, without polling where an event exists.

    Called by the core's kernel watcher right after launch, and during shutdown. Optional: a
    resource manager without it is watched by calling ``eg_poll`` at a slow interval.

    Participants: the resource manager only. May be async. Returns the exit status.
    """


@hookspec(firstresult=True)
def eg_send_signal(kernel: KernelContext, signum: int) -> None:
    """Send signal ``signum`` to the kernel (SIGINT for an interrupt in ``signal`` mode).

    Called on ``POST /api/kernels/{id}/interrupt`` when the kernelspec's ``interrupt_mode`` is
    ``signal``, and by jupyter_client's shutdown sequence.

    Participants: the resource manager only. May be async. Returns nothing.
    """


@hookspec(firstresult=True)
def eg_shutdown_requested(kernel: KernelContext, restart: bool) -> None:
    """React to an orderly shutdown: the kernel was just sent its ``shutdown_request``.

    Called by jupyter_client's shutdown sequence before it waits for the kernel to exit (then
    ``eg_terminate``/``eg_kill`` if it does not). Optional; e.g. end a YARN application through
    its resource manager, so it is recorded as killed rather than failed.

    Participants: the resource manager only. May be async. Returns nothing.
    """


@hookspec(firstresult=True)
def eg_terminate(kernel: KernelContext, restart: bool) -> None:
    """Ask the kernel to stop (SIGTERM-like).

    Called during shutdown when the kernel did not exit within half the shutdown wait after its
    shutdown request. Optional: without it the core sends SIGTERM through ``eg_send_signal``.

    Participants: the resource manager only. May be async. Returns nothing.
    """


@hookspec(firstresult=True)
def eg_kill(kernel: KernelContext, restart: bool) -> None:
    """Stop the kernel now (SIGKILL, delete the container or pod, kill the application).

    Called on shutdown when the kernel outlives its shutdown wait, on a forced restart, and when
    a launch fails after ``eg_launch_process`` (``restart`` False).

    Participants: the resource manager only. May be async. Returns nothing.
    """


@hookspec(firstresult=True)
def eg_cleanup(kernel: KernelContext, restart: bool) -> None:
    """Release everything the kernel held (files, connections, host slots, containers).

    Called once the kernel has ended: after every shutdown, before a relaunch (``restart``
    True), and after a failed launch. It must be safe to call when launch never completed.

    Optional: after it (or without it) the core releases what it holds itself, including the
    response listener's wait for the launcher's callback (:func:`eg_core.remote.forget`).

    Participants: the resource manager only. May be async. Returns nothing.
    """


@hookspec(firstresult=True)
def eg_describe_exit(kernel: KernelContext) -> str | None:
    """Say why the kernel ended: its last output lines, the container's logs, the remote stderr.

    Called when a kernel ends unexpectedly, during launch (the text goes into the launch error)
    or later (into the ``died`` event). Optional.

    Participants: the resource manager only. May be async. Returns text or ``None``.
    """


@hookspec(firstresult=True)
def eg_backend_log(kernel: KernelContext, lines: int) -> list[str] | None:
    """Return the last ``lines`` lines of what the kernel's backend says about it: the local
    process's output, a container's log, a pod's events and container log, a batch job's output
    file. Text only; no secrets beyond what the backend itself shows.

    Called for ``GET /api/kernels/{id}/events`` (the ``backend_log`` of its answer) and when a
    launch fails, before ``eg_kill``/``eg_cleanup`` (the tail goes into the ``launch_failed``
    event's ``backend_log``, kept with the kernel's events after it is gone). Optional.

    Participants: the resource manager only. May be async. Returns a list of lines (oldest
    first, at most ``lines``), or ``None`` when it has nothing.
    """


@hookspec(firstresult=True)
def eg_save_process_info(kernel: KernelContext) -> dict[str, Any]:
    """Return what must be saved to re-attach to this kernel from another gateway process.

    Called when the kernel's session is persisted (after launch and restart). Optional: the
    default saves ``kernel.state``.

    Participants: the resource manager only. May be async. Returns a JSON-able dict.
    """


@hookspec(firstresult=True)
def eg_load_process_info(kernel: KernelContext, info: dict[str, Any]) -> None:
    """Re-attach to a running kernel from saved ``info`` (the result of ``eg_save_process_info``).

    Called when a gateway adopts a kernel launched by an earlier gateway process, and before it
    removes (``eg_kill``, ``eg_cleanup``) one whose launch a crashed gateway left unfinished: then
    ``info`` is the last checkpoint and may lack ids learnt after it; find the kernel by its
    kernel id (a label, an environment variable) where possible. Re-open what
    ``kernel.handles`` needs. Optional: the default sets ``kernel.state = info`` (and holds no
    handles).

    Participants: the resource manager only. May be async. Returns nothing.
    """


@hookspec(firstresult=True)
def eg_pool_fit(kernel: KernelContext, request: KernelContext) -> str | None:
    """Say whether ``kernel``, a kernel of this resource manager waiting in a warm pool
    (``kernel.pooled``: started as the gateway's own user with the kernelspec's env and no
    request values), can serve ``request``, a new kernel request for the same kernelspec.

    Being poolable takes nothing more from a resource manager than its usual hooks: a warm pool
    launches kernels through them, and at claim time the core binds the request's ``user``,
    ``KERNEL_*``/allowed env and ``cwd`` to the running kernel itself (for Python kernels, by a
    silent ``execute_request`` setting ``os.environ`` and ``os.chdir``). What the resource
    manager applies only at launch (an image, resources, a uid, mounts, the OS user it runs the
    kernel as) cannot be bound later: implement this hook to compare those and return a reason
    when they differ. The core already treats the common launch-time variables
    (``KERNEL_IMAGE``, ``KERNEL_UID``, ``KERNEL_CPUS``...; see
    :data:`eg_core._runtime.pool_binding.LAUNCH_TIME_ENV`) as misses. Set ``request.cwd`` to
    ``None`` when this resource manager does not use ``kernel.cwd`` (containers), so the core
    does not change directory in the kernel.

    Called when a request may claim a pooled kernel, before anything is bound. Optional.

    Participants: the resource manager only. May be async. Returns ``None`` when the kernel
    fits, else a short reason (the request then starts a kernel as usual: a pool miss).
    """


@hookspec(firstresult=True)
def eg_requested_resources(kernel: KernelContext) -> dict[str, float] | None:
    """Tell what ``kernel`` asks of its backend, as the launch will apply it (the kernelspec's
    settings with the request's allowed values over them): ``{"cpus": cores, "memory": bytes,
    "gpus": count}``, any of them left out when nothing is asked. Parse text with
    :func:`eg_core.config.cpus` and :func:`eg_core.config.memory_bytes`.

    Called by the quotas policy before a launch or a warm-pool claim (``eg_before_launch``
    time, so a request value that is not valid may raise :class:`eg_core.BadRequest` here) and
    for each kernel adopted at startup. Optional: without it, the request's ``KERNEL_CPUS``,
    ``KERNEL_MEMORY`` and ``KERNEL_GPUS`` count.

    Participants: the resource manager only. Sync only. Returns the dict, or ``None``.
    """


@hookspec
def eg_launch_parameters(kernel: KernelContext) -> dict[str, dict[str, Any]] | None:
    """Describe what a start request may set for kernelspec ``kernel.kernel_name``: JSON Schema
    properties keyed by request variable, e.g. ``{"KERNEL_CPUS": {"type": "number",
    "minimum": 0.01, "maximum": 4}}`` (``type``, ``default``, ``enum``, ``minimum``,
    ``maximum``, ``pattern``, ``description``; build them with
    :func:`eg_core.config.launch_parameter`). Derive each from the very settings your request
    validation reads (the allow-list, ``max_*`` caps, ``allowed_*`` patterns), so the two cannot
    disagree: a value the schema offers is accepted, one outside it is refused with a 4xx naming
    the variable. A client sends the values as today, as strings in the start request's ``env``.

    Called when ``GET /api/kernelspecs`` or ``GET /api/kernelspecs/{name}`` answers; ``kernel``
    has ``kernel_name``, ``spec`` and ``config`` set, ``kernel_id`` empty and ``env`` the
    kernelspec's own. The core merges the answers into the kernelspec model's
    ``metadata.parameters`` (``{"type": "object", "properties": ...}``); a
    :class:`eg_core.BadRequest` (a kernelspec whose settings are not valid) leaves its
    parameters out. Optional.

    Participants: the kernelspec's resource manager, and every plugin that is no resource
    manager (a policy advertising a variable of its own; not a resource-manager hook, so
    implementing it does not make a plugin one); a later-registered plugin's property wins.
    Sync only. Returns the properties, or ``None``.
    """


# ---------------------------------------------------------------------------------------------
# Observer hooks: every plugin.
# ---------------------------------------------------------------------------------------------


@hookspec
def eg_before_launch(kernel: KernelContext) -> dict[str, str] | None:
    """Decide whether a kernel may launch, and add to its environment.

    Called for every launch and relaunch (``kernel.restarting``), before ``eg_launch_process``.
    Raise :class:`eg_core.LaunchRefused` (403, or ``status=429``) to refuse, with a reason.

    Participants: every plugin, in registration order reversed (LIFO). May be async. Returns a
    dict of environment variables to add to ``kernel.env``, or ``None``.
    """


@hookspec(firstresult=True)
def eg_claim_kernel(kernel: KernelContext) -> Any:
    """Serve a kernel request with a kernel that is already running (a warm pool).

    Called for ``POST /api/kernels`` and new sessions that do not ask for a ``KERNEL_ID``,
    after ``eg_before_launch`` accepted the request (``kernel`` is the request's context,
    with a fresh id). Return the id of a kernel the plugin started with
    ``await gateway.start_pooled(kernel_name)`` (``gateway``: the :class:`eg_core.GatewayAPI`
    of ``eg_startup``) and gave to the request with ``await gateway.bind_pooled(kernel_id,
    kernel)``: the core then lists it under its own id and emits ``pool_claimed``. Return
    ``None`` to let the core launch a kernel as usual (an exception is logged, and does the
    same)::

        @hookimpl
        async def eg_claim_kernel(kernel):
            for pooled in gateway.pooled_kernels():
                if pooled.kernel_name == kernel.kernel_name:
                    try:
                        await gateway.bind_pooled(pooled.kernel_id, kernel)
                    except (NotFound, BadRequest):
                        continue  # claimed by another request, or it cannot serve this one
                    return pooled.kernel_id
            return None

    Participants: the first plugin that answers (the builtin ``pools``). May be async.
    Returns a kernel id or ``None``.
    """


@hookspec
def eg_user_allowed(user: str, kernel_name: str, config: dict[str, Any], groups: frozenset[str]) -> bool | None:
    """Tell whether ``user`` may use kernelspec ``kernel_name`` (``config``: its resource
    manager's settings from the kernelspec, e.g. ``authorized_users``; ``groups``: the user's
    groups as their identity provider reports them, empty without one).

    Called when listing kernelspecs for a user (``?user=`` or a per-user token); a plugin that
    refuses launches in ``eg_before_launch`` answers the same here, so a user sees only what
    they may start.

    Participants: every plugin. Sync only. Returns False to hide, True or None otherwise.
    """


@hookspec(firstresult=True)
def eg_identify(token: str) -> Identity | None:
    """Tell who a client's token belongs to: an identity provider (the users file, JupyterHub,
    an OIDC issuer...).

    Called when a REST request or websocket brings a token that is not the gateway's own
    service token, at most once per token while the core's cache keeps the answer
    (``Gateway.identity_cache_seconds``; see :mod:`eg_core.identity`), and never per message.
    Requests with other tokens do not wait for it.

    Participants: the first plugin that answers. May be async (call your provider without
    blocking the event loop, with a timeout). Returns an :class:`eg_core.identity.Identity`, or
    ``None`` when the token is not one of yours (the next provider is asked; when none knows
    it the client gets 401). Raise :class:`eg_core.identity.IdentityRefused` for a credential
    of yours that is not valid (expired, wrong audience: the 401 says why) and
    :class:`eg_core.identity.IdentityUnavailable` when your provider cannot be reached (503).
    """


@hookspec
def eg_after_launch(kernel: KernelContext) -> None:
    """Observe a kernel that has launched and answered ``kernel_info``.

    Called once per launch, after the last launch phase and before the ``launched`` event.

    Participants: every plugin. May be async. Returns nothing; errors are logged, not raised.
    """


@hookspec
def eg_kernel_event(kernel: KernelContext, event: str, details: dict[str, Any]) -> None:
    """Observe a kernel lifecycle event.

    ``event`` is one of ``requested``, ``launched``, ``launch_failed``, ``adopted``,
    ``connected``, ``disconnected``, ``interrupted``, ``restarted``, ``died``, ``culled``,
    ``shut_down``, and ``progress`` (a launch phase that ended, ``{"step": phase, "seconds":
    duration}``, or a resource manager's launch step, from
    :meth:`eg_core.KernelContext.progress`), and for warm pools ``pool_claimed`` (on the claimed
    kernel; ``request_id``, ``duration``) and ``pool_miss`` (on the request; ``reason``). A
    pool's own launches are ``launched`` events with ``details["pooled"]`` True
    (``kernel.pooled`` is set until the kernel is claimed). :class:`eg_core.Event` names them;
    a plugin may emit events of its own.
    ``details`` carries the event's facts (phase durations for ``launched``, the phase and error
    for ``launch_failed``, with the backend's last lines as ``backend_log`` when the resource
    manager has ``eg_backend_log``, the exit status for ``died``...). Called when the event
    happens; the core also keeps each kernel's recent events for ``GET /api/kernels/{id}/events``.

    Participants: every plugin. May be async. Returns nothing; errors are logged, not raised.
    """


@hookspec
def eg_launch_substitutions(kernel: KernelContext) -> dict[str, str] | None:
    """Offer values for ``{name}`` templates in the kernelspec's argv.

    Called before ``eg_launch_process``. The core provides ``connection_file``, ``kernel_id``,
    ``port_range``, ``response_address`` and ``public_key``; later plugins may add or override.

    Participants: every plugin. Sync only. Returns a dict or ``None``.
    """


# ---------------------------------------------------------------------------------------------
# Session store hooks (firstresult: the last-registered store that answers wins, so a plugin's
# database or webhook store replaces the builtin file store). Used when availability_mode is set.
# A store may decline (return None, also from an ``async def``): the next store is asked.
# ---------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def eg_store_save(record: dict[str, Any]) -> bool | None:
    """Save (create or replace) a kernel session record, keyed by ``record["kernel_id"]``.

    Called after a kernel launched or restarted. The record is JSON-able and holds the kernel's
    connection key: store it readable by the gateway only.

    Participants: the first store that answers. May be async. Returns True when saved.
    """


@hookspec(firstresult=True)
def eg_store_delete(kernel_id: str) -> bool | None:
    """Delete a kernel's session record; called when the kernel is shut down or found dead, and
    on every store asked after the one that saved a record of it (a record lives in one store:
    a store that declined a later record forgets an earlier one it kept).

    Participants: the first store that answers. May be async. Returns True when handled.
    """


@hookspec(firstresult=True)
def eg_store_load(kernel_id: str) -> dict[str, Any] | None:
    """Load one kernel's session record; called in replication mode for a kernel id this
    gateway does not know.

    Participants: the first store that answers. May be async. Returns the record or None.
    """


@hookspec
def eg_store_load_all() -> list[dict[str, Any]] | None:
    """Load every session record; called at startup in standalone mode. Skip (and log) records
    that cannot be read instead of failing.

    Participants: every store (a store that keeps only some kernels, such as a resource
    manager keeping its kernels' sessions in its own backend, answers with those); the lists
    are merged, the first record of a kernel id winning (the last-registered store's). May be
    async. Returns a list of records, or None.
    """


# ---------------------------------------------------------------------------------------------
# Registration hooks: every plugin, once per gateway process.
# ---------------------------------------------------------------------------------------------


@hookspec
def eg_configurables() -> list[type]:
    """Return the traitlets ``Configurable`` classes this plugin reads its settings from.

    Called once when the gateway starts; those classes get the gateway's config (file, CLI) and
    appear in ``eg-gateway --help-all``.

    Participants: every plugin. Sync only. Returns a list of classes.
    """


@hookspec
def eg_kernelspec_aliases() -> dict[str, str]:
    """Name the kernelspecs of other gateways this resource manager runs.

    Keys are gateway_provisioners provisioner names (``"docker-provisioner"``) and Enterprise
    Gateway process-proxy class names (their last dotted part, ``"DockerProcessProxy"``); values
    are resource-manager names (``"docker"``). ``eg-<name>`` provisioner names need no alias.
    Called once when the gateway reads kernelspecs.

    Participants: every plugin. Sync only. Returns a dict.
    """


@hookspec
def eg_refused_resource_managers() -> dict[str, str] | None:
    """Name the resource managers that refuse to run kernels on this gateway, each with why.

    Called once when the gateway starts, after the settings are read. Keys are resource-manager
    names (``"local"``); values say why, then ``": "`` and the setting that changes it (the 403
    reads "Kernel spec 'x' runs on the 'local' resource manager, which <value>"). A refused
    resource manager's kernelspecs are left out of ``GET /api/kernelspecs``, as those of a
    resource manager that is not installed; a request naming one gets a 403
    ``{"reason": "Resource Manager Refused", "message": <why>}``, the startup log says it once
    and ``eg-gateway doctor`` fails for each such kernelspec. The builtin ``local`` refuses in a
    Kubernetes pod unless ``LocalResourceManager.allow_in_pod`` is set.

    Participants: every plugin. Sync only. Returns a dict, or ``None`` for none.
    """


@hookspec
def eg_ready() -> list[str] | None:
    """Say what keeps this gateway from serving kernels now (its readiness probe).

    Called at each ``GET /api/ready``, which answers 200 when no plugin names a problem and 503
    ``{"reason": "Not Ready", "message": ...}`` with every problem otherwise. Check only what a
    load balancer should act on (the backend's API answers), quickly: a slow answer is a
    problem too. A problem's text is shown without a token, so it must not hold a secret.

    Participants: every plugin. May be async. Returns a list of problems (one line each), or
    ``None``.
    """


@hookspec
def eg_kernelspec_dirs() -> list[str]:
    """Return directories of kernelspecs this plugin ships (each holds ``<name>/kernel.json``).

    Called once when the gateway starts; they are searched after ``Gateway.kernel_spec_dirs``
    and before the usual Jupyter paths, so an operator's kernelspec of the same name wins.

    Participants: every plugin. Sync only. Returns a list of paths.
    """


@hookspec
def eg_web_handlers() -> list[tuple]:
    """Return extra tornado routes ``(pattern, HandlerClass[, kwargs])``, rooted at base_url.

    Called once when the web application is built. Token auth applies when the handler derives
    from :class:`eg_core.web.APIHandler`.

    Participants: every plugin. Sync only. Returns a list.
    """


@hookspec
def eg_startup(gateway: GatewayAPI) -> None:
    """Start plugin services (listeners, reconcilers) once the gateway is configured.

    Called before the gateway accepts requests. ``gateway`` is a :class:`eg_core.GatewayAPI`
    (list kernels with their activity and connections, shut one down with a reason, emit an
    event, read settings); keep it for the plugin's services.

    Participants: every plugin. May be async. Returns nothing.
    """


@hookspec
def eg_reconcile(known_kernel_ids: set[str]) -> None:
    """Find what the resource manager runs for kernels the gateway does not know (orphans of
    an earlier gateway process) and report or remove them.

    Called once at startup, after the gateway adopted the kernels of its session store, with
    the ids of every kernel it now manages or its store records (also those it left to another
    gateway: a live one on this host, or any in replication mode).

    Participants: every plugin. May be async. Returns nothing.
    """


@hookspec
def eg_doctor(kernels: list[KernelContext]) -> list[Check] | None:
    """Check the backend this plugin needs, without starting a kernel (``eg-gateway doctor``).

    Called once by ``eg-gateway doctor``, after the gateway's config is loaded, never while it
    serves. ``kernels`` has a context per kernelspec this plugin runs as resource manager
    (``kernel_name``, ``spec`` and ``config`` set, ``kernel_id`` empty); other plugins get an
    empty list. Check what a launch needs: hosts reachable with known host keys, the engine and
    image present, the controller answering, each kernelspec's settings valid.

    Participants: every plugin, each with its own kernelspecs. May be async. Returns a list of
    :class:`eg_core.doctor.Check`, a failed one saying how to fix it, or ``None``.
    """


@hookspec
def eg_shutdown(gateway: GatewayAPI) -> None:
    """Stop plugin services.

    Called once when the gateway stops, after its kernels are handled; ``gateway`` is the
    :class:`eg_core.GatewayAPI` given to ``eg_startup``.

    Participants: every plugin. May be async. Returns nothing.
    """


SYNC_ONLY_HOOKS = (
    "eg_user_allowed",
    "eg_requested_resources",
    "eg_launch_parameters",
    "eg_launch_substitutions",
    "eg_configurables",
    "eg_kernelspec_aliases",
    "eg_kernelspec_dirs",
    "eg_refused_resource_managers",
    "eg_web_handlers",
)

RESOURCE_MANAGER_HOOKS = (
    "eg_launch_process",
    "eg_confirm_startup",
    "eg_connection_info",
    "eg_poll",
    "eg_wait",
    "eg_send_signal",
    "eg_shutdown_requested",
    "eg_terminate",
    "eg_kill",
    "eg_cleanup",
    "eg_describe_exit",
    "eg_backend_log",
    "eg_save_process_info",
    "eg_load_process_info",
    "eg_pool_fit",
    "eg_requested_resources",
)

__all__ = ["NAME", "hookspec", "RESOURCE_MANAGER_HOOKS", "SYNC_ONLY_HOOKS"] + [
    name for name in dir() if name.startswith("eg_")
]
