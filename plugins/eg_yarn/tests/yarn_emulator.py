"""An emulator of a Hadoop YARN ResourceManager's REST API (v1), for eg-yarn's tests.

No ResourceManager can run on the test machines (no Hadoop package, no RM classes in any jar
that can be installed), so this serves the subset of ``/ws/v1/cluster`` that eg-yarn and
yarn-api-client use, with the response shapes of Hadoop's "ResourceManager REST API's" page:

- ``GET /cluster`` (what yarn-api-client probes to find the active RM), ``GET /ws/v1/cluster``,
  ``/info``, ``/metrics``, ``/scheduler`` (capacity scheduler: queues with partitions),
  ``/nodes``;
- ``GET /ws/v1/cluster/apps`` with the ``states``/``state``, ``applicationTags``, ``name``,
  ``user``, ``queue``, ``startedTimeBegin``/``End`` and ``limit`` filters (``{"apps": null}``
  when none match, as Hadoop answers);
- ``GET /ws/v1/cluster/apps/{id}``, ``GET``/``PUT /ws/v1/cluster/apps/{id}/state``
  (``{"state": "KILLED"}``: 202 while the kill is under way, as Hadoop does);
- ``POST /ws/v1/cluster/apps/new-application`` and ``POST /ws/v1/cluster/apps`` (submit: the
  application-submission-context JSON with ``am-container-spec``).

It runs what YARN would: an accepted application gets an AM container when its queue has room,
and the container's command really runs as a local process group (``bash -c``, in a container
working directory, with the submitted environment plus YARN's container variables; ``<LOG_DIR>``
expanded; ``local-resources`` with ``file://`` URLs copied in). States move NEW → NEW_SAVING →
SUBMITTED → ACCEPTED → RUNNING → FINISHED / FAILED / KILLED with ``amHostHttpAddress``,
``finalStatus`` and ``diagnostics`` as the RM sets them:

- an application is RUNNING once its AM *registers* with the RM. A real AM does that over the
  AM-RM RPC protocol; here it POSTs ``/emulator/apps/{id}/register`` (the ``spark-submit``
  stand-in's AM shim does). An AM that never registers (a plain kernel launcher submitted over
  REST) stays ACCEPTED with its container running, as on a real cluster, until
  ``am_expiry`` seconds (the RM's ``yarn.am.liveness-monitor.expiry-interval-ms``) fail it;
- an AM that exits without unregistering fails its attempt, and the application, with the exit
  code in the diagnostics; ``/emulator/apps/{id}/unregister`` ends it with a final status.

Authentication as Hadoop's: pseudo (``user.name`` query parameter, answered with a
``hadoop.auth`` cookie, anonymous allowed or not) or Kerberos SPNEGO (``Negotiate``, checked
with python-gssapi against a keytab), with ``doAs`` proxy users.

Controls for tests (attributes of :class:`YarnCluster` and methods of :class:`Emulator`):
``hold_accepted`` (queues whose applications stay ACCEPTED: no room), ``fail_next_at_start``
(the next AM container fails to launch, with diagnostics), :meth:`YarnCluster.kill_app` (YARN
kills a running application, e.g. preemption), :meth:`Emulator.stop` (connections refused),
delays between states (``state_delay``, 0 for benchmarks), RM HA (several emulators over one
:class:`YarnCluster`, one active).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import tornado.web
from tornado.httpserver import HTTPServer

FINAL_STATES = ("FINISHED", "FAILED", "KILLED")
ALL_STATES = ("NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING", *FINAL_STATES)
NODE_HOST = "127.0.0.1"
NODE_RPC_PORT = 45454
NODE_HTTP_PORT = 8042
HADOOP_VERSION = "3.3.6-eg-emulator"


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Queue:
    """A capacity-scheduler leaf queue: a share of the cluster's memory, per partition."""

    name: str
    capacity: float  # percent of the cluster
    max_capacity: float = 100.0
    partitions: tuple[str, ...] = ("",)
    state: str = "RUNNING"


@dataclass
class App:
    id: str
    name: str
    user: str
    queue: str
    app_type: str
    tags: list[str]
    memory: int
    vcores: int
    node_label: str
    command: str
    environment: dict[str, str]
    local_resources: dict[str, str]
    max_attempts: int
    launch_context: dict[str, Any] = field(default_factory=dict)  # the am-container-spec as submitted, kept like the RM's state store
    state: str = "NEW"
    final_status: str = "UNDEFINED"
    diagnostics: str = ""
    started: int = field(default_factory=_now_ms)
    launched: int = 0
    finished: int = 0
    am_host_http: str = ""
    registered: bool = False
    registered_at: int = 0  # when the AM registered (ms), for bench_yarn's split of a launch
    unregistered: str | None = None
    kill_requested: bool = False
    expired: bool = False
    process: subprocess.Popen | None = None
    container_dir: Path | None = None
    log_dir: Path | None = None

    @property
    def container_id(self) -> str:
        _, ts, seq = self.id.split("_")
        return f"container_{ts}_{seq}_01_000001"

    def report(self, cluster: "YarnCluster") -> dict[str, Any]:
        """The ``app`` object of Hadoop's Cluster Application API."""
        running = self.state in ("ACCEPTED", "RUNNING") and self.process is not None and self.process.poll() is None
        finished = self.finished or 0
        elapsed = (finished or _now_ms()) - self.started
        return {
            "id": self.id,
            "user": self.user,
            "name": self.name,
            "queue": self.queue,
            "state": self.state,
            "finalStatus": self.final_status,
            "progress": 100.0 if self.state in FINAL_STATES else (10.0 if self.state == "RUNNING" else 0.0),
            "trackingUI": "History" if self.state in FINAL_STATES else "ApplicationMaster",
            "trackingUrl": f"http://{cluster.tracking_host}/proxy/{self.id}/",
            "diagnostics": self.diagnostics,
            "clusterId": cluster.cluster_ts,
            "applicationType": self.app_type,
            "applicationTags": ",".join(self.tags),
            "priority": 0,
            "startedTime": self.started,
            "launchTime": self.launched,
            "finishedTime": finished,
            "elapsedTime": elapsed,
            "amContainerLogs": f"http://{self.am_host_http}/node/containerlogs/{self.container_id}/{self.user}" if self.am_host_http else "",
            "amHostHttpAddress": self.am_host_http,
            "amRPCAddress": f"{NODE_HOST}:0" if self.registered else "N/A",
            "allocatedMB": self.memory if running else -1,
            "allocatedVCores": self.vcores if running else -1,
            "runningContainers": 1 if running else -1,
            "memorySeconds": 0,
            "vcoreSeconds": 0,
            "queueUsagePercentage": 0.0,
            "clusterUsagePercentage": 0.0,
            "preemptedResourceMB": 0,
            "preemptedResourceVCores": 0,
            "numNonAMContainerPreempted": 0,
            "numAMContainerPreempted": 0,
            "logAggregationStatus": "DISABLED",
            "unmanagedApplication": False,
            "amNodeLabelExpression": self.node_label,
            "appNodeLabelExpression": self.node_label,
        }


class YarnCluster:
    """The state an RM keeps (shared by HA emulators, as a ZooKeeper state store would), and the
    one NodeManager that runs AM containers as local processes."""

    def __init__(
        self,
        workdir: Path,
        *,
        total_mb: int = 16384,
        total_vcores: int = 8,
        max_allocation_mb: int = 8192,
        queues: list[Queue] | None = None,
        node_labels: tuple[str, ...] = ("", "gpu"),
        node_path: str | None = None,
        allow_anonymous: bool = True,
        spnego_keytab: str | None = None,
        proxy_users: dict[str, str] | None = None,
    ):
        self.workdir = Path(workdir)
        self.cluster_ts = _now_ms()
        self.started_on = self.cluster_ts
        self.total_mb = total_mb
        self.total_vcores = total_vcores
        self.max_allocation_mb = max_allocation_mb
        self.queues = {q.name: q for q in (queues or [Queue("default", 60.0), Queue("spark", 40.0, partitions=("", "gpu"))])}
        self.node_labels = node_labels
        self.node_path = node_path or f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"
        self.allow_anonymous = allow_anonymous
        self.spnego_keytab = spnego_keytab
        self.proxy_users = proxy_users or {}
        self.apps: dict[str, App] = {}
        self._seq = 0
        self._secret = secrets.token_bytes(16)
        self.tracking_host = f"{NODE_HOST}:0"
        # controls
        self.state_delay = 0.05
        self.hold_accepted: set[str] = set()
        self.stall_accepted = False  # no AM container is allocated, though the queue reports room
        self.fail_next_at_start: str | None = None
        self.am_expiry: float | None = None
        self.kill_grace = 0.25  # yarn.nodemanager.sleep-delay-before-sigkill.ms
        self.requests: list[tuple[str, str, str]] = []  # (method, path, user) for tests
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- ids, users ------------------------------------------------------------------------

    def new_app_id(self) -> str:
        self._seq += 1
        return f"application_{self.cluster_ts}_{self._seq:04d}"

    def sign(self, token: str) -> str:
        return base64.b64encode(hmac.new(self._secret, token.encode(), hashlib.sha256).digest()).decode()

    # -- capacity --------------------------------------------------------------------------

    def used_mb(self, queue: str | None = None, partition: str | None = None) -> int:
        return sum(
            a.memory for a in self.apps.values()
            if a.process is not None and a.state in ("ACCEPTED", "RUNNING")
            and (queue is None or a.queue == queue) and (partition is None or a.node_label == partition)
        )

    def queue_limit_mb(self, queue: Queue) -> int:
        return int(self.total_mb * queue.capacity / 100.0)

    def has_room(self, app: App) -> bool:
        if app.queue in self.hold_accepted:
            return False
        queue = self.queues[app.queue]
        return self.used_mb(app.queue) + app.memory <= self.queue_limit_mb(queue)

    def queue_info(self, queue: Queue) -> dict[str, Any]:
        limit = self.queue_limit_mb(queue)
        used = self.used_mb(queue.name)
        if queue.name in self.hold_accepted:
            used = limit  # the queue is full: others' containers hold it
        used_capacity = 100.0 * used / limit if limit else 0.0
        absolute_used = 100.0 * used / self.total_mb

        def partition(name: str) -> dict[str, Any]:
            return {
                "partitionName": name, "capacity": queue.capacity, "usedCapacity": used_capacity,
                "maxCapacity": queue.max_capacity, "absoluteCapacity": queue.capacity,
                "absoluteUsedCapacity": absolute_used, "absoluteMaxCapacity": queue.max_capacity,
                "maxAMLimitPercentage": 10.0, "weight": -1.0,
            }

        apps = [a for a in self.apps.values() if a.queue == queue.name and a.state not in FINAL_STATES]
        return {
            "type": "capacitySchedulerLeafQueueInfo",
            "queuePath": f"root.{queue.name}",
            "queueName": queue.name,
            "state": queue.state,
            "capacity": queue.capacity,
            "usedCapacity": used_capacity,
            "maxCapacity": queue.max_capacity,
            "absoluteCapacity": queue.capacity,
            "absoluteMaxCapacity": queue.max_capacity,
            "absoluteUsedCapacity": absolute_used,
            "numApplications": len(apps),
            "numActiveApplications": sum(1 for a in apps if a.process is not None),
            "numPendingApplications": sum(1 for a in apps if a.process is None),
            "resourcesUsed": {"memory": used, "vCores": 0},
            "maxApplications": 10000,
            "nodeLabels": list(queue.partitions),
            "capacities": {"queueCapacitiesByPartition": [partition(p) for p in queue.partitions]},
            "resources": {"resourceUsagesByPartition": [
                {"partitionName": p, "used": {"memory": used if p == "" else 0, "vCores": 0}} for p in queue.partitions
            ]},
        }

    def scheduler(self) -> dict[str, Any]:
        used = self.used_mb()
        return {"scheduler": {"schedulerInfo": {
            "type": "capacityScheduler",
            "capacity": 100.0,
            "usedCapacity": 100.0 * used / self.total_mb,
            "maxCapacity": 100.0,
            "queueName": "root",
            "queuePath": "root",
            "queues": {"queue": [self.queue_info(q) for q in self.queues.values()]},
        }}}

    def metrics(self) -> dict[str, Any]:
        apps = list(self.apps.values())
        used = self.used_mb()
        count = lambda *states: sum(1 for a in apps if a.state in states)  # noqa: E731
        return {"clusterMetrics": {
            "appsSubmitted": len(apps), "appsCompleted": count("FINISHED"), "appsPending": count("ACCEPTED", "SUBMITTED", "NEW", "NEW_SAVING"),
            "appsRunning": count("RUNNING"), "appsFailed": count("FAILED"), "appsKilled": count("KILLED"),
            "reservedMB": 0, "availableMB": self.total_mb - used, "allocatedMB": used, "totalMB": self.total_mb,
            "reservedVirtualCores": 0, "availableVirtualCores": self.total_vcores, "allocatedVirtualCores": 0,
            "totalVirtualCores": self.total_vcores,
            "containersAllocated": sum(1 for a in apps if a.process is not None and a.process.poll() is None),
            "containersReserved": 0, "containersPending": count("ACCEPTED"),
            "totalNodes": 1, "activeNodes": 1, "lostNodes": 0, "unhealthyNodes": 0, "decommissioningNodes": 0,
            "decommissionedNodes": 0, "rebootedNodes": 0, "shutdownNodes": 0,
        }}

    def nodes(self) -> dict[str, Any]:
        used = self.used_mb()
        return {"nodes": {"node": [{
            "rack": "/default-rack", "state": "RUNNING", "id": f"{NODE_HOST}:{NODE_RPC_PORT}", "nodeHostName": NODE_HOST,
            "nodeHTTPAddress": f"{NODE_HOST}:{NODE_HTTP_PORT}", "lastHealthUpdate": _now_ms(), "version": HADOOP_VERSION,
            "healthReport": "", "numContainers": sum(1 for a in self.apps.values() if a.process is not None and a.process.poll() is None),
            "usedMemoryMB": used, "availMemoryMB": self.total_mb - used, "usedVirtualCores": 0,
            "availableVirtualCores": self.total_vcores, "nodeLabels": [label for label in self.node_labels if label],
        }]}}

    # -- applications ------------------------------------------------------------------------

    def list_apps(self, query: dict[str, str]) -> dict[str, Any]:
        states = {s.strip().upper() for s in (query.get("states") or query.get("state") or "").split(",") if s.strip()}
        tags = {t.strip().lower() for t in (query.get("applicationTags") or "").split(",") if t.strip()}
        begin = int(query.get("startedTimeBegin") or 0)
        end = int(query.get("startedTimeEnd") or 0)
        apps = []
        for app in sorted(self.apps.values(), key=lambda a: a.id):
            if states and app.state not in states:
                continue
            if tags and not tags & {t.lower() for t in app.tags}:
                continue
            if query.get("name") and app.name != query["name"]:
                continue
            if query.get("user") and app.user != query["user"]:
                continue
            if query.get("queue") and app.queue != query["queue"]:
                continue
            if begin and app.started < begin:
                continue
            if end and app.started > end:
                continue
            apps.append(app.report(self))
        if query.get("limit"):
            apps = apps[: int(query["limit"])]
        return {"apps": {"app": apps} if apps else None}

    def submit(self, body: dict[str, Any], user: str) -> App:
        """Check and accept a submission (raises ValueError with Hadoop's message when invalid)."""
        app_id = body.get("application-id")
        if not app_id or app_id in self.apps:
            raise ValueError(f"Application {app_id!r} is not a new application id")
        queue = body.get("queue") or "default"
        if queue not in self.queues:
            raise ValueError(f"Application {app_id} submitted by user {user} to unknown queue: {queue}")
        resource = body.get("resource") or {}
        memory = int(resource.get("memory") or 1024)
        if memory > self.max_allocation_mb:
            raise ValueError(
                f"Invalid resource request, requested memory < 0, or requested memory > max configured, "
                f"requestedMemory={memory}, maxMemory={self.max_allocation_mb}"
            )
        label = body.get("am-container-node-label-expression") or body.get("app-node-label-expression") or ""
        if label and label not in self.queues[queue].partitions:
            raise ValueError(f"Invalid resource request, queue={queue} doesn't have permission to access all labels in resource request. labelExpression of resource request={label}")
        spec = body.get("am-container-spec") or {}
        command = ((spec.get("commands") or {}).get("command")) or ""
        env = {e["key"]: str(e["value"]) for e in ((spec.get("environment") or {}).get("entry") or [])}
        resources = {e["key"]: e["value"]["resource"] for e in ((spec.get("local-resources") or {}).get("entry") or [])}
        tags = body.get("application-tags") or {}
        tags = tags.get("tag") if isinstance(tags, dict) else tags
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        app = App(
            id=app_id, name=body.get("application-name") or "N/A", user=user, queue=queue,
            app_type=body.get("application-type") or "YARN", tags=[t.lower() for t in tags], memory=memory,
            vcores=int(resource.get("vCores") or 1), node_label=label, command=command, environment=env,
            local_resources=resources, max_attempts=int(body.get("max-app-attempts") or 1),
            launch_context=json.loads(json.dumps(spec)),
        )
        self.apps[app_id] = app
        asyncio.ensure_future(self._run(app))
        return app

    async def _run(self, app: App) -> None:
        for state in ("NEW_SAVING", "SUBMITTED", "ACCEPTED"):
            await asyncio.sleep(self.state_delay)
            if app.state in FINAL_STATES:
                return
            app.state = state
        app.diagnostics = "[emulator] Application is added to the scheduler and is not yet activated."
        while not self.has_room(app) or self.stall_accepted:
            app.diagnostics = (
                f"[emulator] Application is added to the scheduler and is not yet activated. Queue's AM resource "
                f"limit exceeded. Details : AM Partition = {app.node_label or '<DEFAULT_PARTITION>'}; Queue '{app.queue}' is full"
            )
            await asyncio.sleep(0.1)
            if app.state in FINAL_STATES:
                return
        await asyncio.sleep(self.state_delay)
        if app.state in FINAL_STATES:
            return
        if self.fail_next_at_start:
            reason, self.fail_next_at_start = self.fail_next_at_start, None
            self._finish(app, "FAILED", "FAILED", f"Application {app.id} failed 1 times due to AM Container for "
                         f"appattempt_{app.id[12:]}_000001 exited with exitCode: -1000\nFailing this attempt.Diagnostics: "
                         f"{reason}\nFor more detailed output, check the application tracking page. Failing the application.")
            return
        await self._launch_am(app)

    async def _launch_am(self, app: App) -> None:
        base = self.workdir / "nm-local-dir" / "usercache" / app.user / "appcache" / app.id / app.container_id
        logs = self.workdir / "userlogs" / app.id / app.container_id
        base.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        for name, url in app.local_resources.items():
            source = urlparse(url).path if url.startswith("file:") else url
            changed = _changed_on_source(source, _resource_entry(app, name))
            if changed:  # as a NodeManager's localizer refuses it
                self._finish(app, "FAILED", "FAILED", f"Application {app.id} failed 1 times due to AM Container: "
                             f"Resource {url} changed on src filesystem ({changed})")
                return
            shutil.copy(source, base / name)  # keeps the file's mode, as a private localized resource
        env = {
            "PATH": self.node_path, "LANG": os.environ.get("LANG", "C.UTF-8"), "HOME": str(base),
            **app.environment,
            "CONTAINER_ID": app.container_id, "NM_HOST": NODE_HOST, "NM_PORT": str(NODE_RPC_PORT),
            "NM_HTTP_PORT": str(NODE_HTTP_PORT), "LOCAL_DIRS": str(base.parent), "LOG_DIRS": str(logs),
            "USER": app.user, "LOGNAME": app.user, "PWD": str(base), "APP_SUBMIT_TIME_ENV": str(app.started),
            "APPLICATION_WEB_PROXY_BASE": f"/proxy/{app.id}", "EG_YARN_EMULATOR_RM": self.active_address or "",
        }
        command = app.command.replace("<LOG_DIR>", str(logs)).replace("{{", "$").replace("}}", "")
        app.container_dir, app.log_dir = base, logs
        with open(logs / "launch.out", "ab") as out:
            app.process = subprocess.Popen(
                ["bash", "-c", command], cwd=base, env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT,
            )
        app.launched = _now_ms()
        app.am_host_http = f"{NODE_HOST}:{NODE_HTTP_PORT}"
        app.diagnostics = ""
        asyncio.ensure_future(self._watch(app))
        if self.am_expiry:
            asyncio.ensure_future(self._expire(app, self.am_expiry))

    async def _watch(self, app: App) -> None:
        proc = app.process
        while proc.poll() is None:
            await asyncio.sleep(0.05)
        code = proc.returncode
        if app.state in FINAL_STATES:
            return
        if app.kill_requested:
            self._finish(app, "KILLED", "KILLED", app.diagnostics or "Application killed by user.")
        elif app.expired:
            self._finish(app, "FAILED", "FAILED", f"Application {app.id} failed 1 times due to {app.diagnostics}. Failing the application.")
        elif app.unregistered is not None:
            self._finish(app, "FINISHED", app.unregistered, app.diagnostics)
        else:
            tail = _tail(app.log_dir)
            self._finish(app, "FAILED", "FAILED", (
                f"Application {app.id} failed 1 times (global limit =2; local limit is =1) due to AM Container for "
                f"appattempt_{app.id[12:]}_000001 exited with  exitCode: {code}\nFailing this attempt.Diagnostics: "
                f"[{time.strftime('%Y-%m-%d %H:%M:%S')}]Exception from container-launch.\nContainer id: {app.container_id}\n"
                f"Exit code: {code}\n{tail}\nFor more detailed output, check the application tracking page: "
                f"http://{self.tracking_host}/cluster/app/{app.id} Then click on links to logs of each attempt.\n. "
                f"Failing the application."
            ))

    async def _expire(self, app: App, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if app.state == "ACCEPTED" and not app.registered and app.process and app.process.poll() is None:
            app.diagnostics = f"ApplicationMaster for attempt appattempt_{app.id[12:]}_000001 timed out"
            app.expired = True
            self._signal_group(app)

    def _finish(self, app: App, state: str, final_status: str, diagnostics: str) -> None:
        app.state = state
        app.final_status = final_status
        app.diagnostics = diagnostics
        app.finished = _now_ms()

    def _signal_group(self, app: App) -> None:
        proc = app.process
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return

        def hard_kill():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

        asyncio.get_event_loop().call_later(self.kill_grace, hard_kill)

    def kill_app(self, app_id: str, diagnostics: str = "Application killed by user.") -> str:
        """Kill an application (the state API's PUT, or YARN itself when a test calls it)."""
        app = self.apps[app_id]
        if app.state in FINAL_STATES:
            return app.state
        app.kill_requested = True
        app.diagnostics = diagnostics
        if app.process is None or app.process.poll() is not None:
            self._finish(app, "KILLED", "KILLED", diagnostics)
        else:
            self._signal_group(app)
        return app.state

    def register(self, app_id: str) -> None:
        app = self.apps[app_id]
        if app.state == "ACCEPTED":
            app.registered = True
            app.registered_at = _now_ms()
            app.state = "RUNNING"

    def unregister(self, app_id: str, final_status: str, diagnostics: str) -> None:
        app = self.apps[app_id]
        app.unregistered = final_status
        app.diagnostics = diagnostics

    def live_apps(self) -> list[App]:
        """Applications that are not in a final state, or whose AM process still runs."""
        return [a for a in self.apps.values() if a.state not in FINAL_STATES or (a.process is not None and a.process.poll() is None)]

    def shutdown(self) -> None:
        for app in self.apps.values():
            if app.process is not None and app.process.poll() is None:
                try:
                    os.killpg(app.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                app.process.wait()

    active_address: str | None = None


def _resource_entry(app: App, name: str) -> dict[str, Any]:
    entries = ((app.launch_context.get("local-resources") or {}).get("entry") or [])
    return next((e["value"] for e in entries if e.get("key") == name), {})


def _changed_on_source(path: str, entry: dict[str, Any]) -> str:
    """Why a local resource no longer matches its declared size and timestamp ('' when it does)."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    if "size" in entry and int(entry["size"]) != stat.st_size:
        return f"size {stat.st_size}, expected {entry['size']}"
    if "timestamp" in entry and int(entry["timestamp"]) != int(stat.st_mtime * 1000):
        return f"timestamp {int(stat.st_mtime * 1000)}, expected {entry['timestamp']}"
    return ""


def _tail(log_dir: Path | None, limit: int = 4000) -> str:
    if log_dir is None:
        return ""
    text = ""
    for name in ("launch.out", "stderr", "stdout"):
        path = log_dir / name
        if path.exists():
            text += path.read_text(errors="replace")[-limit:]
    return f"[{text.strip()[-limit:]}]" if text.strip() else ""


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


class _Handler(tornado.web.RequestHandler):
    def initialize(self, emulator: "Emulator"):
        self.emulator = emulator
        self.cluster = emulator.cluster
        self.user = None

    def check_xsrf_cookie(self):
        pass

    def write_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def fail(self, status: int, exception: str, message: str) -> None:
        self.write_json({"RemoteException": {"exception": exception, "message": message,
                                             "javaClassName": f"org.apache.hadoop.yarn.webapp.{exception}"}}, status)

    def prepare(self):
        emulator = self.emulator
        path = self.request.path
        if not emulator.active and path != "/ws/v1/cluster/info" and not path.startswith("/emulator/"):
            active = self.cluster.active_address
            if active:
                self.redirect(f"http://{active}{self.request.uri}", status=307)
            else:
                self.set_status(503)
                self.finish(f"This is standby RM. The redirect url is: {self.request.uri}")
            return
        if path.startswith("/emulator/"):
            return
        self.user = self._authenticate()
        if self.user is None:
            return
        self.cluster.requests.append((self.request.method, path, self.user))

    def _authenticate(self) -> str | None:
        cluster = self.cluster
        cookie = self.get_cookie("hadoop.auth")
        if cookie:
            token = cookie.strip('"')
            fields = dict(part.split("=", 1) for part in token.split("&") if "=" in part)
            signed = token.rsplit("&s=", 1)[0]
            if fields.get("s") and hmac.compare_digest(cluster.sign(signed), fields["s"]):
                return self._proxy(fields["u"])
        if cluster.spnego_keytab:
            return self._spnego()
        user = self.get_query_argument("user.name", None)
        if user:
            self._set_auth_cookie(user, "simple")
            return self._proxy(user)
        if cluster.allow_anonymous:
            return "dr.who"
        self.set_status(401)
        self.finish("Authentication required")
        return None

    def _spnego(self) -> str | None:
        import gssapi

        header = self.request.headers.get("Authorization", "")
        if not header.startswith("Negotiate "):
            self.set_status(401)
            self.set_header("WWW-Authenticate", "Negotiate")
            self.finish("Authentication required")
            return None
        creds = gssapi.Credentials(usage="accept", store={"keytab": self.cluster.spnego_keytab})
        context = gssapi.SecurityContext(creds=creds, usage="accept")
        try:
            out = context.step(base64.b64decode(header.split(" ", 1)[1]))
        except gssapi.exceptions.GSSError as exc:
            self.set_status(403)
            self.finish(f"GSSException: {exc}")
            return None
        if out:
            self.set_header("WWW-Authenticate", "Negotiate " + base64.b64encode(out).decode())
        principal = str(context.initiator_name)
        user = principal.split("@", 1)[0].split("/", 1)[0]
        self.cluster.requests_principals = getattr(self.cluster, "requests_principals", []) + [principal]
        self._set_auth_cookie(user, "kerberos", principal)
        return self._proxy(user)

    def _set_auth_cookie(self, user: str, kind: str, principal: str | None = None) -> None:
        token = f"u={user}&p={principal or user}&t={kind}&e={_now_ms() + 36000000}"
        self.set_cookie("hadoop.auth", f'"{token}&s={self.cluster.sign(token)}"')

    def _proxy(self, user: str) -> str | None:
        do_as = self.get_query_argument("doAs", None)
        if not do_as or do_as == user:
            return user
        allowed = self.cluster.proxy_users.get(user)
        if allowed == "*" or (allowed and do_as in allowed.split(",")):
            return do_as
        self.set_status(403)
        self.finish(f"User: {user} is not allowed to impersonate {do_as}")
        return None


class ClusterPage(_Handler):
    def get(self):
        self.set_header("Content-Type", "text/html")
        self.finish("<html><body>About the Cluster (emulated)</body></html>")


class ClusterInfo(_Handler):
    def get(self):
        c = self.cluster
        self.write_json({"clusterInfo": {
            "id": c.cluster_ts, "startedOn": c.started_on, "state": "STARTED",
            "haState": "ACTIVE" if self.emulator.active else "STANDBY",
            "rmStateStoreName": "org.apache.hadoop.yarn.server.resourcemanager.recovery.ZKRMStateStore",
            "resourceManagerVersion": HADOOP_VERSION, "resourceManagerBuildVersion": HADOOP_VERSION,
            "resourceManagerVersionBuiltOn": "2026-01-01T00:00Z", "hadoopVersion": HADOOP_VERSION,
            "hadoopBuildVersion": HADOOP_VERSION, "hadoopVersionBuiltOn": "2026-01-01T00:00Z",
            "haZooKeeperConnectionState": "CONNECTED",
        }})


class Metrics(_Handler):
    def get(self):
        self.write_json(self.cluster.metrics())


class Scheduler(_Handler):
    def get(self):
        self.write_json(self.cluster.scheduler())


class Nodes(_Handler):
    def get(self):
        self.write_json(self.cluster.nodes())


class Apps(_Handler):
    def get(self):
        query = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        self.write_json(self.cluster.list_apps(query))

    def post(self):
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            return self.fail(400, "BadRequestException", f"Invalid JSON: {exc}")
        try:
            app = self.cluster.submit(body, self.user)
        except ValueError as exc:
            return self.fail(400, "BadRequestException", str(exc))
        self.set_status(202)
        self.set_header("Location", f"http://{self.request.host}/ws/v1/cluster/apps/{app.id}")
        self.finish()


class NewApplication(_Handler):
    def post(self):
        self.write_json({
            "application-id": self.cluster.new_app_id(),
            "maximum-resource-capability": {"memory": self.cluster.max_allocation_mb, "vCores": self.cluster.total_vcores},
        })


class OneApp(_Handler):
    def get(self, app_id):
        app = self.cluster.apps.get(app_id)
        if app is None:
            return self.fail(404, "NotFoundException", f"java.lang.Exception: app with id: {app_id} not found")
        self.write_json({"app": app.report(self.cluster)})


class AppState(_Handler):
    def get(self, app_id):
        app = self.cluster.apps.get(app_id)
        if app is None:
            return self.fail(404, "NotFoundException", f"java.lang.Exception: app with id: {app_id} not found")
        self.write_json({"state": app.state})

    def put(self, app_id):
        app = self.cluster.apps.get(app_id)
        if app is None:
            return self.fail(404, "NotFoundException", f"java.lang.Exception: app with id: {app_id} not found")
        try:
            target = json.loads(self.request.body or b"{}").get("state")
        except ValueError:
            target = None
        if target != "KILLED":
            return self.fail(400, "BadRequestException", "Only 'KILLED' is allowed as a target state.")
        if app.state in FINAL_STATES:
            return self.write_json({"state": app.state})
        self.cluster.kill_app(app_id, f"Application killed by user.{'' if self.user == app.user else ' (by ' + self.user + ')'}")
        self.write_json({"state": app.state}, 200 if app.state == "KILLED" else 202)


class Register(_Handler):
    def post(self, app_id):
        self.cluster.register(app_id)
        self.write_json({})


class Unregister(_Handler):
    def post(self, app_id):
        body = json.loads(self.request.body or b"{}")
        self.cluster.unregister(app_id, body.get("finalStatus", "SUCCEEDED"), body.get("diagnostics", ""))
        self.write_json({})


class Emulator:
    """One ResourceManager web endpoint over a :class:`YarnCluster`, served on 127.0.0.1 from a
    background thread's event loop (shared by every emulator of the cluster)."""

    def __init__(self, cluster: YarnCluster, loop_thread: "LoopThread", *, active: bool = True, port: int = 0,
                 tls: tuple[str, str] | None = None):
        self.cluster = cluster
        self.thread = loop_thread
        self.active = active
        self.tls = tls  # (certificate file, key file): serve https
        self.port = port or _free_port()
        self.server: HTTPServer | None = None
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}"

    def _app(self) -> tornado.web.Application:
        kw = {"emulator": self}
        return tornado.web.Application([
            (r"/cluster/?", ClusterPage, kw),
            (r"/ws/v1/cluster/?", ClusterInfo, kw),
            (r"/ws/v1/cluster/info", ClusterInfo, kw),
            (r"/ws/v1/cluster/metrics", Metrics, kw),
            (r"/ws/v1/cluster/scheduler", Scheduler, kw),
            (r"/ws/v1/cluster/nodes", Nodes, kw),
            (r"/ws/v1/cluster/apps/?", Apps, kw),
            (r"/ws/v1/cluster/apps/new-application", NewApplication, kw),
            (r"/ws/v1/cluster/apps/(application_\d+_\d+)", OneApp, kw),
            (r"/ws/v1/cluster/apps/(application_\d+_\d+)/state", AppState, kw),
            (r"/emulator/apps/(application_\d+_\d+)/register", Register, kw),
            (r"/emulator/apps/(application_\d+_\d+)/unregister", Unregister, kw),
        ])

    def start(self) -> None:
        """Listen (again): connections are accepted from now on."""

        async def listen():
            ssl_options = None
            if self.tls:
                import ssl

                ssl_options = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                ssl_options.load_cert_chain(*self.tls)
            self.server = HTTPServer(self._app(), ssl_options=ssl_options)
            self.server.listen(self.port, "127.0.0.1")
            if self.active:
                self.cluster.active_address = self.address

        self.thread.run(listen())

    def stop(self) -> None:
        """Stop listening and drop open connections: clients get connection refused."""

        async def close():
            if self.server is not None:
                self.server.stop()
                await self.server.close_all_connections()
                self.server = None
            if self.cluster.active_address == self.address:
                self.cluster.active_address = None

        self.thread.run(close())

    def make_active(self) -> None:
        """This RM becomes the active one (an HA failover)."""
        self.active = True
        self.cluster.active_address = self.address

    def call(self, fn, *args):
        """Run ``fn(*args)`` on the emulator's loop (for controls that touch its state)."""

        async def run():
            return fn(*args)

        return self.thread.run(run())


class LoopThread:
    """An asyncio loop in a daemon thread (the emulated RM and NodeManager run there)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="yarn-emulator", daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def self_signed_certificate(directory: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files; returns their paths."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "yarn-emulator")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "rm.pem", directory / "rm.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_hadoop_conf(directory: Path, rm_addresses: list[str], *, max_container_mb: int = 8192) -> Path:
    """A ``yarn-site.xml`` naming the emulated RMs (HA ids rm1, rm2... when several), for the
    ``spark-submit`` stand-in and for yarn-api-client's ``HADOOP_CONF_DIR`` lookup."""
    directory.mkdir(parents=True, exist_ok=True)
    props = {"yarn.nodemanager.resource.memory-mb": str(max_container_mb)}
    if len(rm_addresses) == 1:
        props["yarn.resourcemanager.webapp.address"] = rm_addresses[0]
    else:
        ids = [f"rm{i + 1}" for i in range(len(rm_addresses))]
        props["yarn.resourcemanager.ha.enabled"] = "true"
        props["yarn.resourcemanager.ha.rm-ids"] = ",".join(ids)
        for rm_id, address in zip(ids, rm_addresses):
            props[f"yarn.resourcemanager.webapp.address.{rm_id}"] = address
    body = "".join(f"  <property><name>{k}</name><value>{v}</value></property>\n" for k, v in props.items())
    (directory / "yarn-site.xml").write_text(f"<?xml version=\"1.0\"?>\n<configuration>\n{body}</configuration>\n")
    return directory
