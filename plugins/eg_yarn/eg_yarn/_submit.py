"""The two ways a kernel becomes a YARN application.

**spark-submit** (Enterprise Gateway's ``YarnClusterProcessProxy`` kernelspecs): the kernelspec's
argv (``run.sh``, calling ``spark-submit --master yarn --deploy-mode cluster --name ${KERNEL_ID}``)
runs on the gateway host. The checked placement and resources are appended to ``SPARK_OPTS``
(``--queue``, ``--driver-memory``, ``--executor-memory``, node-label confs, ``--proxy-user`` when
impersonating), so they win over the kernelspec's. Our launcher's per-kernel key travels as a
private file that spark-submit ships with the application (``--files``), never on a command line.
The application is then found by its name (or tag) holding the kernel id, as EG does.

**rest**: no Spark. The argv itself (eg's launcher) is the application master: a new application
id, then ``POST /ws/v1/cluster/apps`` with the AM container's command (each word shell-quoted),
environment (the kernel's, and the launch key) and resources.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import tempfile
from pathlib import Path

from eg_core import KernelContext, LaunchFailed, remote

from ._rm import RMClient
from ._settings import Launch, gateway_tag, settings

KEY_FILE_NAME = "eg-launch.key"
LAUNCHER_TOKEN = "{launcher}"
TAIL_BYTES = 4000
# Never handed to spark-submit: the gateway's own secrets.
_SECRETS = ("EG_AUTH_TOKEN", "KG_AUTH_TOKEN", "JUPYTER_TOKEN", "EG_LAUNCH_KEY", "JPY_PARENT_PID")


_SAFE_OPTION = re.compile(r"[A-Za-z0-9_.=:/#,+-]+\Z")


def tags(kernel: KernelContext) -> list[str]:
    """The application's tags: the kernel id, and this gateway's id (for orphan sweeps)."""
    return [kernel.kernel_id, gateway_tag()]


def spark_opts(launch: Launch, kernel: KernelContext, key_file: str | None) -> str:
    """What eg adds to ``SPARK_OPTS``: names and sizes checked by :func:`_settings.resolve`, and
    a path eg made, so nothing a shell would interpret (Enterprise Gateway's run.sh ``eval``s
    the options; ours splits them on whitespace)."""
    opts: list[str] = []
    if launch.queue:
        opts += ["--queue", launch.queue]
    if launch.driver_memory_mb:
        opts += ["--driver-memory", f"{launch.driver_memory_mb}m"]
    if launch.executor_memory_mb:
        opts += ["--executor-memory", f"{launch.executor_memory_mb}m"]
    if launch.node_label:
        opts += ["--conf", f"spark.yarn.am.nodeLabelExpression={launch.node_label}",
                 "--conf", f"spark.yarn.executor.nodeLabelExpression={launch.node_label}"]
    if "spark.yarn.tags" not in kernel.env.get("SPARK_OPTS", "") + kernel.env.get("KERNEL_EXTRA_SPARK_OPTS", ""):
        opts += ["--conf", "spark.yarn.tags=" + ",".join(tags(kernel))]
    if key_file:
        opts += ["--files", f"{key_file}#{KEY_FILE_NAME}", "--conf", f"spark.yarn.appMasterEnv.EG_LAUNCH_KEY_FILE={KEY_FILE_NAME}"]
    unsafe = [o for o in opts if not _SAFE_OPTION.match(o)]
    if unsafe:
        raise LaunchFailed("launch_process", f"unsafe spark-submit options {unsafe!r}")
    return " ".join(opts)


def _log_path(kernel: KernelContext) -> Path:
    return Path(tempfile.gettempdir()) / f"eg-yarn-submit-{kernel.kernel_id}.log"


async def run_spark_submit(kernel: KernelContext, launch: Launch, cmd: list[str], launch_key: str | None) -> None:
    """Start the kernelspec's submit command; its exit is watched by :func:`submit_exit`."""
    # spark-submit ships the key file to the application's staging directory (--files), and the
    # core removes this copy once the launcher called back (or at cleanup).
    key_file = await remote.write_key_file(kernel, launch_key) if launch_key else None
    env = {k: v for k, v in os.environ.items() if k not in _SECRETS}
    env.update(kernel.env)
    extra = spark_opts(launch, kernel, key_file)
    env["SPARK_OPTS"] = f"{env.get('SPARK_OPTS', '')} {extra}".strip()
    env["EG_IMPERSONATION_ENABLED"] = "True" if launch.impersonate else "False"
    if launch.impersonate:
        env["KERNEL_USERNAME"] = launch.user
    cmd = [_own_launcher() if a == LAUNCHER_TOKEN else a for a in cmd]
    log_path = _log_path(kernel)
    kernel.state["submit_log"] = str(log_path)
    with open(log_path, "wb") as log:
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd, env=env, cwd=kernel.cwd if kernel.cwd and os.path.isdir(kernel.cwd) else None,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
        except OSError as exc:
            raise LaunchFailed("launch_process", f"cannot run the submit command {cmd[0]!r}: {exc.strerror}") from None
    kernel.handles["submit_process"] = proc
    kernel.state.update(submit_pid=proc.pid, submit_cmd=cmd[0])


def submit_output(kernel: KernelContext) -> str:
    path = kernel.state.get("submit_log")
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - TAIL_BYTES, 0))
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""


async def submit_exit(kernel: KernelContext) -> str | None:
    """Wait for the submit command to end; the reason text when it failed, else None."""
    proc: asyncio.subprocess.Process | None = kernel.handles.get("submit_process")
    if proc is None:
        return None
    code = await proc.wait()
    if code == 0:
        return None
    return f"the submit command {kernel.state.get('submit_cmd')} exited with status {code}; its output ends with:\n{submit_output(kernel)}"


async def reap_submit(kernel: KernelContext) -> None:
    """Stop a submit command still running (spark-submit waiting for the application) and
    remove the key file (the application has its own copy by now)."""
    proc: asyncio.subprocess.Process | None = kernel.handles.pop("submit_process", None)
    if proc is not None and proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except asyncio.TimeoutError:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
    await remote.discard_key_file(kernel)


def owns(app: dict, kernel_id: str) -> bool:
    """Whether an application is this kernel's: its name or one of its tags holds the kernel id."""
    tags = [t.strip() for t in str(app.get("applicationTags") or "").split(",")]
    return kernel_id in str(app.get("name", "")) or any(kernel_id in t for t in tags)


# -- rest --------------------------------------------------------------------------------------


def am_command(kernel: KernelContext, cmd: list[str]) -> str:
    """The AM container's shell command: each word quoted, output into the container's log dir."""
    s = settings()
    argv = list(cmd)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = s.node_python
    launcher = s.node_launcher or _own_launcher()
    argv = [launcher if a == LAUNCHER_TOKEN else a for a in argv]
    return "exec " + " ".join(shlex.quote(a) for a in argv) + " 1><LOG_DIR>/stdout 2><LOG_DIR>/stderr"


def _own_launcher() -> str:
    return remote.launcher_path()


async def submit_rest(kernel: KernelContext, launch: Launch, rm: RMClient, cmd: list[str], launch_key: str | None) -> str:
    """Submit the launcher as the application master; returns the application id."""
    s = settings()
    new = await rm.new_application()
    app_id = new["application-id"]
    kernel.state["app_id"] = app_id
    largest = int((new.get("maximum-resource-capability") or {}).get("memory") or 0)
    memory = launch.driver_memory_mb or s.am_memory
    if largest and memory > largest:
        from eg_core import BadRequest

        raise BadRequest(f"the application master asks for {memory} MB; the cluster's largest container is {largest} MB")
    env = dict(kernel.env)
    resources = []
    if launch_key:
        # Not in the launch context's environment (the RM shows it): a file only the gateway's
        # user reads, localized into the AM container, where the launcher reads and removes it.
        key_file = await remote.write_key_file(kernel, launch_key, s.key_dir or None)
        stat = await asyncio.to_thread(os.stat, key_file)
        resources.append({"key": KEY_FILE_NAME, "value": {
            "resource": Path(key_file).as_uri(), "type": "FILE", "visibility": "APPLICATION",
            "size": stat.st_size, "timestamp": int(stat.st_mtime * 1000)}})
        env["EG_LAUNCH_KEY_FILE"] = KEY_FILE_NAME
    body = {
        "application-id": app_id,
        "application-name": kernel.kernel_id,
        "application-type": s.application_type,
        "application-tags": {"tag": tags(kernel)},
        "queue": launch.queue or "default",
        "am-container-spec": {
            "environment": {"entry": [{"key": k, "value": v} for k, v in sorted(env.items())]},
            "commands": {"command": am_command(kernel, cmd)},
            "local-resources": {"entry": resources},
        },
        "unmanaged-AM": False,
        "max-app-attempts": 1,
        "resource": {"memory": memory, "vCores": s.am_vcores},
        "keep-containers-across-application-attempts": False,
    }
    if launch.node_label:
        body["am-container-node-label-expression"] = launch.node_label
    await rm.submit(body)
    return app_id
