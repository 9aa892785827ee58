"""One kernel's life as a pod: the steps the hooks in :mod:`eg_k8s.plugin` delegate to.

What later steps (and a gateway adopting the kernel) need is in ``kernel.state``: ``pod``,
``namespace``, ``pod_uid``, ``secret``, ``scope`` (the namespace the shared watch covers, or None
for all), ``gateway_id``, ``host`` (the address the gateway dials, if fixed), ``cluster`` (the
kubeconfig and context of the kernel's cluster, :mod:`._clusters`: every hook runs in it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal as signals
import time
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from eg_core import BadRequest, KernelContext, LaunchFailed, LaunchRefused, containers, remote
from eg_core.containers import container_command, container_env
from eg_core.remote import LauncherRequestRejected

from . import _access as access
from . import _api as api
from . import _clusters as clusters
from . import _namespaces as namespaces
from . import _pods as pods
from . import _pool as pool
from . import _pulls as pulls
from . import _store as store
from . import _spark as spark
from . import _spark_cluster as spark_cluster
from ._manifest import LABEL_KERNEL_ID, build, launch_secret, owned_by, selector
from ._request import KernelPod, resolve
from ._store import ANNOTATION

TRANSIENT_ADMISSION = ("serviceaccount", "No API token found", "is being terminated")


POD_CONNECTION_DIR = "/var/run/eg"
POD_CONNECTION_FILE = f"{POD_CONNECTION_DIR}/connection.json"


def uses_connection_file(kernel: KernelContext) -> bool:
    """Whether the kernelspec runs the kernel on a connection file the gateway wrote
    (``{connection_file}`` in its argv): then the pod gets that file from the kernel's Secret
    and runs the kernel directly, with no launcher and no callback."""
    return any("{connection_file}" in arg for arg in kernel.spec.get("argv") or [])


def pod_argv(kernel: KernelContext, cmd: list[str]) -> list[str]:
    """``cmd`` with the gateway's connection file path replaced by the pod's."""
    argv = kernel.spec.get("argv") or []
    return [argv[i].replace("{connection_file}", POD_CONNECTION_FILE) if i < len(argv) and "{connection_file}" in argv[i] else arg
            for i, arg in enumerate(cmd)]


def mount_connection_file(pod: dict[str, Any], secret: str) -> None:
    spec = pod["spec"]
    spec.setdefault("volumes", []).append(
        {"name": "eg-connection", "secret": {"secretName": secret, "items": [{"key": "connection.json", "path": "connection.json"}]}}
    )
    spec["containers"][0].setdefault("volumeMounts", []).append({"name": "eg-connection", "mountPath": POD_CONNECTION_DIR, "readOnly": True})


def watch_of(kernel: KernelContext):
    return pods.pods(kernel.state.get("scope"), kernel.state.get("gateway_id", "eg"), clusters.of_state(kernel.state))


def scope_of(kp: KernelPod) -> str | None:
    """The shared watch covering this kernel: its namespace in the shared mode, else all."""
    return kp.namespace if kp.namespace_mode == "shared" else None


# -- launch --------------------------------------------------------------------------------------


@clusters.launching
async def launch_process(kernel: KernelContext, cmd: list[str]) -> None:
    """Check every value and permission (400/403 before anything exists; 400 naming the file or
    context when the kernelspec's cluster cannot be configured), create the namespace if the mode
    says so, then the launch Secret, the Pod, and what the pod template adds."""
    start = time.monotonic()
    kp = resolve(kernel)
    api.api_client()  # the kernelspec's cluster is configured
    creates_ns = namespaces.creates_namespace(kernel, kp)
    secret = f"{kp.name}-eg"
    direct = uses_connection_file(kernel)
    launch_key = None if direct else await remote.expect_callback(kernel, legacy=kp.legacy_launcher)
    env = container_env(kernel, cmd, kp.bind_ip, {
        "KERNEL_IMAGE": kp.image, "KERNEL_POD_NAME": kp.name, "KERNEL_NAMESPACE": kp.namespace,
        "KERNEL_SERVICE_ACCOUNT_NAME": kp.service_account, "KERNEL_NAME": kernel.kernel_name,
        **({"KERNEL_UID": str(kp.uid)} if kp.uid is not None else {}),
        **({"KERNEL_GID": str(kp.gid)} if kp.gid is not None else {}),
    })
    if not kp.working_dir:
        env.pop("KERNEL_WORKING_DIR", None)
    command = container_command(kernel, pod_argv(kernel, cmd) if direct else cmd, kp.bind_ip)
    if kp.spark:
        conf = spark.spark_conf(kernel, kp.spark, kp.name, kp.namespace, kp.gateway_id, kp.pull_policy)
        env.update(spark.driver_env(conf))
        command = spark.driver_command(command, str(kernel.spec.get("language") or ""))
    objects = build(kernel, kp, command, env, secret)
    if direct:
        mount_connection_file(objects["Pod"], secret)
    if kp.spark:
        spark.add_to_pod(objects["Pod"], secret)
    await access.require(kp.namespace, objects, creates_ns, scope_of(kp) is None,
                         spark_cluster.GATEWAY_NEEDS if kp.spark and kp.spark.service_account else ())
    kernel.state.pop("pod_uid", None)  # a relaunch's pod is not its predecessor
    kernel.state.update(
        cluster=clusters.current().state(), pod=kp.name, namespace=kp.namespace, namespace_mode=kp.namespace_mode, secret=secret, scope=scope_of(kp),
        gateway_id=kp.gateway_id, host=kp.kernel_host, log_tail_lines=kp.log_tail_lines, confirmed=False,
        fail_unschedulable=kp.fail_unschedulable, image=kp.image, image_pull_timeout=kp.image_pull_timeout, kinds=sorted(k for k in objects if k != "Pod"), direct=direct, spark=bool(kp.spark),
        **({"created_namespace": True} if creates_ns else {}),
    )
    # Recorded before anything is created: a gateway that dies from here on leaves a launching
    # record naming what to remove (the gateway's own store keeps it until the pod exists).
    await kernel.checkpoint()
    watch = watch_of(kernel)
    watch.start()
    core = api.core()
    body = launch_secret(kernel, kp, secret, launch_key)
    if direct:  # the file the kernel reads, and the session store's copy of its key (no later write)
        body["stringData"]["connection.json"] = json.dumps({**kernel.connection_info, "ip": kp.bind_ip})
        body["stringData"][store.KEY_FIELD] = store.text(kernel.connection_info["key"])
    if kp.spark:
        body["stringData"][spark.EXECUTOR_TEMPLATE_KEY] = spark.executor_template(kp.host_network)
    async with namespaces.in_use(kernel, kp, kernel.launch_timeout) if creates_ns else contextlib.nullcontext():
        if kp.spark and kp.spark.service_account:
            await _spark_account(kp)
        await _create_secret(core, body)
        store.secret_made(kp.namespace, secret, body["stringData"].get(store.KEY_FIELD))
        # a service account just made gets its token a moment later: admission retries until then
        pod = await _create_pod(kernel, core, objects["Pod"], retry_admission=creates_ns or bool(kp.spark))
    kernel.state["pod_uid"] = pod["metadata"]["uid"]
    kernel.handles["progress"] = watch.watch(kernel.kernel_id, pods.Progress(kernel, kernel.state["pod_uid"]))
    # The Secret's owner (for the garbage collector) is set while the pod starts, off the launch's path.
    kernel.handles["owning"] = asyncio.ensure_future(_own(core, kp, secret, pod))
    for kind, obj in objects.items():
        if kind != "Pod":
            await _create_owned(kind, owned_by(obj, pod))
    kernel.log.info("created pod %s in namespace %s from image %s in %.3fs", kp.name, kp.namespace, kp.image, time.monotonic() - start)


async def _spark_account(kp: KernelPod) -> None:
    try:
        await spark_cluster.ensure_driver_account(kp.namespace, kp.spark.service_account, kp.gateway_id)
    except ApiException as exc:
        raise _failed(f"the Spark driver's service account {kp.spark.service_account}", exc) from exc


async def _create_secret(core: client.CoreV1Api, body: dict[str, Any]) -> None:
    store.secret_made(body["metadata"]["namespace"], body["metadata"]["name"])
    try:
        await api.call(core.create_namespaced_secret, body["metadata"]["namespace"], body)
    except ApiException as exc:
        if exc.status != 409:
            raise _failed("the launch Secret", exc) from exc
        # this kernel's, left by an earlier launch of it (a restart): take it over
        await api.call(core.patch_namespaced_secret, body["metadata"]["name"], body["metadata"]["namespace"],
                       {"metadata": {"labels": body["metadata"]["labels"], "ownerReferences": None}, "stringData": body["stringData"]})


async def _create_pod(kernel: KernelContext, core: client.CoreV1Api, body: dict[str, Any], *, retry_admission: bool) -> dict[str, Any]:
    """Create the pod. A pod of the same name left by this kernel's earlier launch is removed
    first; in a namespace just created, admission errors that clear by themselves (its service
    account not made yet) are retried until the launch deadline."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    delay = 0.05
    while True:
        try:
            return await api.call_raw(core.create_namespaced_pod, namespace, body)
        except ApiException as exc:
            text = api.message(exc)
            if exc.status == 409:
                await _replace_predecessor(kernel, core, namespace, name)
                continue
            if retry_admission and exc.status in (403, 500) and any(t in text for t in TRANSIENT_ADMISSION):
                await asyncio.sleep(delay)  # admission state of a new namespace: nothing to watch for
                delay = min(delay * 2, 1.0)
                continue
            if exc.status in (400, 422):
                raise BadRequest(f"the Kubernetes API refused the kernel pod: {text}") from exc
            raise _failed("the kernel pod", exc) from exc


async def _replace_predecessor(kernel: KernelContext, core: client.CoreV1Api, namespace: str, name: str) -> None:
    existing = await api.call_raw(core.read_namespaced_pod, name, namespace)
    if existing["metadata"].get("labels", {}).get("kernel_id") != kernel.kernel_id:
        raise BadRequest(f"a pod named {name} exists in namespace {namespace} and is not this kernel's: choose another KERNEL_POD_NAME")
    await _delete_pod(core, namespace, name, grace=0)
    await asyncio.wait_for(watch_of(kernel).wait(kernel.kernel_id, lambda p: True if p is None or p["metadata"]["uid"] != existing["metadata"]["uid"] else None), 30)


async def _own(core: client.CoreV1Api, kp: KernelPod, secret: str, pod: dict[str, Any]) -> None:
    patch = owned_by({"metadata": {}}, pod)
    await api.call(core.patch_namespaced_secret, secret, kp.namespace, patch)


async def _create_owned(kind: str, body: dict[str, Any]) -> None:
    core = api.core()
    namespace = body["metadata"]["namespace"]
    create = {
        "Service": core.create_namespaced_service,
        "ConfigMap": core.create_namespaced_config_map,
        "Secret": core.create_namespaced_secret,
        "PersistentVolumeClaim": core.create_namespaced_persistent_volume_claim,
    }[kind]
    try:
        await api.call(create, namespace, body)
    except ApiException as exc:
        if exc.status != 409:
            raise _failed(f"the template's {kind}", exc) from exc


def _failed(what: str, exc: ApiException) -> Exception:
    if exc.status == 403:
        return LaunchRefused(f"the Kubernetes API refused to create {what}: {api.message(exc)}", reason="Kubernetes Permission Missing")
    return LaunchFailed("launch_process", f"creating {what} failed: {api.message(exc)}")


# -- startup -------------------------------------------------------------------------------------


@clusters.of_kernel
async def confirm_startup(kernel: KernelContext) -> None:
    """Wait for the launcher's callback, failing fast on what the pod's state says
    (unschedulable, image not pullable, container ended); then learn the pod's address."""
    watch = watch_of(kernel)
    uid = kernel.state["pod_uid"]
    decide = pods.LaunchWatch(uid, kernel.state.get("fail_unschedulable", True))
    failure = asyncio.ensure_future(watch.wait(kernel.kernel_id, decide))
    pull = asyncio.ensure_future(pulls.follow(kernel, uid, kernel.state.get("image", "?"), float(kernel.state.get("image_pull_timeout") or 0)))
    if kernel.state.get("direct"):  # the kernel reads the gateway's connection file: it is up once it answers
        callback = asyncio.ensure_future(_answers(kernel, watch, uid))
    else:
        callback = asyncio.ensure_future(remote.wait_for_callback(kernel, host=kernel.state.get("host") or None))
    pending = {failure, callback, pull}
    try:
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if pull in done:
                pull.result()  # a pull past its limit fails the launch; a finished one goes on waiting
            if done - {pull}:
                break
    finally:
        for task in (failure, callback, pull):
            if not task.done():
                task.cancel()
        kernel.resume_launch_deadline()
    if callback not in done:
        why = failure.result()  # raises the named failure
        raise LaunchFailed("confirm_startup", f"the kernel launcher did not call back: {why}")
    callback.result()
    owning = kernel.handles.pop("owning", None)
    if owning is not None:
        try:
            await owning
        except ApiException as exc:
            kernel.log.warning("could not make the pod own its Secret: %s", api.message(exc))
    if kernel.state.get("host"):
        kernel.connection_info["ip"] = kernel.state["host"]
    else:
        pod = watch.get(kernel.kernel_id) or await api.call_raw(api.core().read_namespaced_pod, kernel.state["pod"], kernel.state["namespace"])
        address = (pod.get("status") or {}).get("podIP")
        if address:
            kernel.connection_info["ip"] = address
            kernel.state["comm_ip"] = address
    kernel.state["confirmed"] = True
    remote.forget(kernel)


async def _answers(kernel: KernelContext, watch, uid: str) -> None:
    """Until the pod is reported Running or, first, its kernel answers kernel_info on the pod's
    address (the fixed ``host``, else the pod's IP once the API shows it): the kubelet writes the
    Running status seconds after the kernel is up when it has many pods to report."""
    running = asyncio.ensure_future(watch.wait(kernel.kernel_id, pods.running(uid)))
    probe = asyncio.ensure_future(_probe(kernel, watch, uid))
    try:
        done, _ = await asyncio.wait({running, probe}, return_when=asyncio.FIRST_COMPLETED)
        if running in done:
            running.result()
        else:
            probe.result()
    finally:
        running.cancel()
        probe.cancel()


async def _probe(kernel: KernelContext, watch, uid: str) -> None:
    host = kernel.state.get("host") or await watch.wait(kernel.kernel_id, pods.address(uid))
    await containers.kernel_answers(kernel.connection_info, host)


# -- running -------------------------------------------------------------------------------------


async def current_pod(kernel: KernelContext) -> dict[str, Any] | None:
    """The kernel's pod from the shared watch when it is live, else from the API."""
    watch = watch_of(kernel)
    uid = kernel.state.get("pod_uid")
    if watch.connected:
        return pods.ours(uid)(watch.get(kernel.kernel_id))
    try:
        pod = await api.call_raw(api.core().read_namespaced_pod, kernel.state["pod"], kernel.state["namespace"])
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return pods.ours(uid)(pod)


@clusters.of_kernel
async def poll(kernel: KernelContext) -> int | None:
    if not kernel.state.get("pod"):
        return 0
    try:
        return pods.exit_code(await current_pod(kernel))
    except ApiException as exc:
        kernel.log.warning("cannot read its pod: %s", api.message(exc))
        return None  # the API is unreachable: that says nothing about the kernel


@clusters.of_kernel
async def wait(kernel: KernelContext) -> int:
    """Wait on the shared watch until the kernel's pod ends or is deleted."""
    if not kernel.state.get("pod"):
        return 0
    uid = kernel.state.get("pod_uid")

    def ended(pod: dict[str, Any] | None) -> int | None:
        if pod is not None and uid and pod["metadata"]["uid"] != uid:
            return 0  # replaced by another launch's pod
        return pods.exit_code(pod)

    return await watch_of(kernel).wait(kernel.kernel_id, ended)


@clusters.of_kernel
async def send_signal(kernel: KernelContext, signum: int) -> None:
    """Signals go through the launcher's comm port; SIGTERM/SIGKILL fall back to deleting the pod."""
    if signum == 0:
        return
    if remote.has_comm_port(kernel):
        try:
            await remote.signal(kernel, signum)
            return
        except (OSError, asyncio.TimeoutError, LauncherRequestRejected, ValueError) as exc:
            kernel.log.warning("signal %s through the launcher's comm port failed: %s", signum, exc)
    if signum in (signals.SIGTERM, signals.SIGKILL):
        await kill(kernel)


@clusters.of_kernel
async def terminate(kernel: KernelContext) -> None:
    if remote.has_comm_port(kernel):
        await remote.shutdown_launcher(kernel)
    elif kernel.state.get("pod"):
        await _delete_pod(api.core(), kernel.state["namespace"], kernel.state["pod"], grace=None)


@clusters.of_kernel
async def kill(kernel: KernelContext) -> None:
    if await _removable(kernel):
        await _delete_pod(api.core(), kernel.state["namespace"], kernel.state["pod"], grace=0, uid=kernel.state.get("pod_uid"))


async def _removable(kernel: KernelContext) -> bool:
    """Whether the pod the state names may be removed for this kernel. Known by its uid once
    created; before (a launch that failed or was left unfinished), only a pod labelled with this
    kernel id and carrying no session record is its own: a pod of that name may be another
    kernel's, or this launch may have gone on to record itself on the pod."""
    name, namespace = kernel.state.get("pod"), kernel.state.get("namespace")
    if not name or not namespace:
        return False
    if kernel.state.get("pod_uid"):
        return True
    try:
        pod = await api.call_raw(api.core().read_namespaced_pod, name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return True  # nothing to delete; what else it made may exist
        raise
    meta = pod["metadata"]
    if (meta.get("labels") or {}).get(LABEL_KERNEL_ID) != kernel.kernel_id or ANNOTATION in (meta.get("annotations") or {}):
        return False
    kernel.state["pod_uid"] = meta["uid"]
    return True


async def _delete_pod(core: client.CoreV1Api, namespace: str, name: str, grace: int | None, uid: str | None = None) -> None:
    """Delete the pod (only the one with ``uid``, when given)."""
    options = client.V1DeleteOptions(
        grace_period_seconds=grace, propagation_policy="Background", preconditions=client.V1Preconditions(uid=uid) if uid else None,
    )
    try:
        await api.ignore_missing(core.delete_namespaced_pod, name, namespace, body=options)
    except ApiException as exc:
        if exc.status != 409:  # 409: another pod of that name (a successor)
            raise


@clusters.of_kernel
async def cleanup(kernel: KernelContext, restart: bool) -> None:
    """Delete everything the launch created: the pod (waiting until it is gone, so a relaunch
    can reuse its name), its Secret and template objects, and a namespace the launch created
    (not on restart)."""
    owning = kernel.handles.pop("owning", None)
    if owning is not None:
        owning.cancel()
    await pool.claimed(kernel)
    stop = kernel.handles.pop("progress", None)
    if stop:
        stop()
    if not await _removable(kernel):
        return
    name, namespace, uid = kernel.state["pod"], kernel.state["namespace"], kernel.state.get("pod_uid")
    core = api.core()
    await _delete_pod(core, namespace, name, grace=0, uid=uid)
    try:
        await asyncio.wait_for(watch_of(kernel).wait(kernel.kernel_id, lambda p: True if pods.ours(uid)(p) is None else None), 30)
    except asyncio.TimeoutError:
        kernel.log.warning("pod %s still listed 30s after its deletion", name)
    if kernel.state.get("spark"):
        await spark_cluster.delete_executors(namespace, kernel.state.get("gateway_id", "eg"), kernel.kernel_id)
    await delete_owned(kernel.state, kernel.kernel_id)
    if not restart:
        await namespaces.release(kernel)


_KIND_CALLS = {
    "Service": ("list_namespaced_service", "delete_namespaced_service"),
    "ConfigMap": ("list_namespaced_config_map", "delete_namespaced_config_map"),
    "Secret": ("list_namespaced_secret", "delete_namespaced_secret"),
    "PersistentVolumeClaim": ("list_namespaced_persistent_volume_claim", "delete_namespaced_persistent_volume_claim"),
}


async def delete_owned(state: dict[str, Any], kernel_id: str) -> None:
    """The launch Secret, and the template's objects (found by the kernel's labels)."""
    core = api.core()
    namespace = state["namespace"]
    if state.get("secret"):
        await api.ignore_missing(core.delete_namespaced_secret, state["secret"], namespace)
    found = selector(state.get("gateway_id", "eg"), kernel_id)
    for kind in state.get("kinds") or []:
        list_name, delete_name = _KIND_CALLS[kind]
        listing = await api.call_raw(getattr(core, list_name), namespace, label_selector=found)
        for item in listing.get("items") or []:
            await api.ignore_missing(getattr(core, delete_name), item["metadata"]["name"], namespace)


async def patch_objects(state: dict[str, Any], kernel_id: str, patch: dict[str, Any], pod: dict[str, Any]) -> None:
    """Patch the kernel's pod with ``pod``, and its launch Secret and template objects with
    ``patch`` (a warm pool's claim rewrites their metadata)."""
    core = api.core()
    namespace = state["namespace"]
    await api.call(core.patch_namespaced_pod, state["pod"], namespace, pod, _preload_content=False)
    if state.get("secret"):
        await api.ignore_missing(core.patch_namespaced_secret, state["secret"], namespace, patch, _preload_content=False)
    found = selector(state.get("gateway_id", "eg"), kernel_id)
    for kind in state.get("kinds") or []:
        list_name, _ = _KIND_CALLS[kind]
        listing = await api.call_raw(getattr(core, list_name), namespace, label_selector=found)
        patch_name = list_name.replace("list_", "patch_", 1)
        for item in listing.get("items") or []:
            await api.ignore_missing(getattr(core, patch_name), item["metadata"]["name"], namespace, patch)


@clusters.of_kernel
async def describe_exit(kernel: KernelContext) -> str | None:
    """How the pod ended (phase, reason, exit status) and its last log lines."""
    name, namespace = kernel.state.get("pod"), kernel.state.get("namespace")
    if not name:
        return None
    try:
        pod = await current_pod(kernel)
    except ApiException as exc:
        return f"pod {name}: cannot read it: {api.message(exc)}"
    if pod is None:
        text = f"pod {name} no longer exists"
    else:
        status = pods.container_status(pod)
        state = status.get("state") or {}
        terminated = state.get("terminated") or {}
        if terminated:
            text = f"pod {name}: its container exited with status {terminated.get('exitCode')}"
            if terminated.get("reason"):
                text += f" ({terminated['reason']}{': ' + terminated['message'] if terminated.get('message') else ''})"
        else:
            text = f"pod {name} is {(pod.get('status') or {}).get('phase', 'in an unknown phase')}"
            waiting = state.get("waiting") or {}
            if waiting.get("reason"):
                text += f", container waiting: {waiting['reason']} {waiting.get('message') or ''}".rstrip()
        try:
            logs = await api.call(
                api.core().read_namespaced_pod_log, name, namespace, tail_lines=int(kernel.state.get("log_tail_lines") or 25),
                _request_timeout=10,
            )
        except ApiException as exc:
            logs = ""
            if exc.status not in (400, 404):  # 400: the container never started
                text += f"; its log cannot be read: {api.message(exc)}"
        except Exception as exc:
            logs = ""
            text += f"; its log cannot be read: {exc}"
        text = f"{text}; its last log lines:\n{logs.strip()}" if logs.strip() else text
    if remote.awaiting_callback(kernel):
        text = f"{text}\n{remote.diagnose(kernel)}"
    return text


@clusters.of_kernel
async def backend_log(kernel: KernelContext, lines: int) -> list[str] | None:
    """``eg_backend_log``: the pod's events and its container's last log lines
    (:func:`eg_k8s._pods.log_tail`), None before the pod was made."""
    name, namespace = kernel.state.get("pod"), kernel.state.get("namespace")
    if not name:
        return None
    return await pods.log_tail(name, namespace, lines)


def pool_fit(kernel: KernelContext, request: KernelContext) -> str | None:
    """``eg_pool_fit``: whether a waiting pod serves ``request`` (:func:`eg_k8s._pool.misfit`)."""
    return pool.misfit(kernel, request)


async def load_process_info(kernel: KernelContext, info: dict[str, Any]) -> None:
    """Re-attach to a kernel pod launched by an earlier gateway process."""
    kernel.state = dict(info)
    kernel.handles.clear()
    with clusters.using(clusters.of_state(kernel.state)):
        watch = watch_of(kernel)
        watch.start()
        if await current_pod(kernel) is None:
            kernel.log.warning("its pod %s is gone; it will be reported dead", kernel.state.get("pod"))


__all__ = ["launch_process", "confirm_startup", "poll", "wait", "send_signal", "terminate", "kill", "cleanup", "describe_exit", "load_process_info", "delete_owned",
           "pool_fit", "patch_objects"]
