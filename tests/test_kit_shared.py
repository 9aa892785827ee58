"""Kit helpers that replaced copies in the plugins (issue 20, point 3): the container UID/GID
and working-dir rule (eg-docker, eg-k8s), the impersonation rule (eg-ssh, eg-yarn), "awaiting
the launcher's callback" (eg-docker, eg-k8s, eg-yarn), the doctor loop over kernelspecs and the
batch-scheduler kit (eg-slurm). In-process, with real subprocesses, files and the real
response listener."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import pytest

from eg_core import BadRequest, LaunchFailed, LaunchRefused, batch, containers, hooks_from, remote
from eg_core.doctor import Check, each_kernelspec
from eg_core.testing import kernel_context


def test_container_ids_are_integers_and_prohibited_ids_compare_as_numbers():
    assert containers.kernel_id_number("UID", "1000", [0], "EG_PROHIBITED_UIDS") == 1000
    assert containers.kernel_id_number("UID", " +42 ", [0], "EG_PROHIBITED_UIDS") == 42
    assert containers.kernel_id_number("UID", "", [0], "EG_PROHIBITED_UIDS") is None
    # one type: ints; text entries (a kernelspec's JSON) are read as the same numbers
    for prohibited in ([0], ["0"], [" 0 "], ["x", 0]):
        with pytest.raises(LaunchRefused, match="has been denied via EG_PROHIBITED_UIDS"):
            containers.kernel_id_number("UID", "00", prohibited, "EG_PROHIBITED_UIDS")
    for bad in ("-1", "abc", str(containers.MAX_ID + 1), "1e3"):
        with pytest.raises(LaunchRefused, match="is not an integer between 0 and"):
            containers.kernel_id_number("GID", bad, [], "EG_PROHIBITED_GIDS")
    with pytest.raises(LaunchRefused):
        containers.kernel_id_number("UID", "", [], "EG_PROHIBITED_UIDS", optional=False)


def test_container_working_dir_is_absolute_or_none():
    assert containers.working_dir("") is None and containers.working_dir(None) is None
    assert containers.working_dir("/home/jovyan/work") == "/home/jovyan/work"
    for bad in ("relative/dir", "/a\0b", "/" + "x" * 5000):
        with pytest.raises(BadRequest, match="must be an absolute path"):
            containers.working_dir(bad)


def test_requested_user_kernel_user_is_authoritative():
    def kernel(user, env_user, from_request=True):
        k = kernel_context(user=user, env={"KERNEL_USERNAME": env_user} if env_user else {})
        k.user_from_request = from_request
        return k

    ask = dict(enabled=True, prohibited=["root"], setting="X.prohibited_users")
    assert remote.requested_user(kernel("alice", "bob"), **ask) == "alice"  # the two carriers disagree
    assert remote.requested_user(kernel("", "bob"), **ask) == "bob"         # the copy only when user is empty
    assert remote.requested_user(kernel("alice", "alice"), enabled=False, prohibited=[], setting="") is None
    assert remote.requested_user(kernel("alice", "alice", from_request=False), **ask) is None
    with pytest.raises(BadRequest, match="valid user name"):
        remote.requested_user(kernel("Alice;rm", ""), **ask)
    with pytest.raises(LaunchRefused, match=r"X\.prohibited_users"):
        remote.requested_user(kernel("root", "alice"), **ask)


@pytest.fixture(autouse=True)
async def own_listener(monkeypatch):
    """A test that registers a callback starts the process's response listener: on a free port,
    and stopped after the test, so no later test of this pytest process finds it (bound to this
    test's event loop, gone with it)."""
    monkeypatch.setenv("EG_RESPONSE_PORT", "0")
    yield
    await remote.stop_listener()
    remote._starting = None


async def test_awaiting_callback_until_the_launcher_calls_back():
    kernel = kernel_context()
    assert not remote.awaiting_callback(kernel)  # none expected
    await remote.expect_callback(kernel)
    try:
        assert remote.awaiting_callback(kernel)
        kernel.handles["callback"].set_result({"ip": "127.0.0.1"})
        assert not remote.awaiting_callback(kernel)
    finally:
        remote.forget(kernel)
    assert not remote.awaiting_callback(kernel)


def test_doctor_loop_turns_bad_kernelspecs_into_failed_checks():
    def resolve(kernel):
        if kernel.kernel_name == "bad":
            raise BadRequest("config.queue is not a queue")
        return kernel.kernel_name.upper()

    found: list[Check] = []
    seen = [(what, value) for _, what, value in each_kernelspec([kernel_context(kernel_name=n) for n in ("a", "bad", "b")], resolve, found, "fix it")]
    assert seen == [("kernelspec a", "A"), ("kernelspec b", "B")]
    assert found == [Check("kernelspec bad", False, "config.queue is not a queue", "fix it")]


KitBatch = batch.scheduler_settings("KITTEST", "Test scheduler", "qsub, qstat")


def test_scheduler_settings_read_their_prefix(monkeypatch):
    monkeypatch.setenv("EG_KITTEST_POLL_INTERVAL", "0.5")
    monkeypatch.setenv("EG_KITTEST_ORPHANS_AT_STARTUP", "remove")
    settings = KitBatch()
    assert (settings.poll_interval, settings.orphans_at_startup, settings.python) == (0.5, "remove", sys.executable)
    assert "Test scheduler command (qsub, qstat)" in KitBatch.class_traits()["command_timeout"].help


async def test_batch_run_explains_failures():
    settings = KitBatch(command_timeout=1.0)
    assert await batch.run(settings, "sh", "-c", "cat; echo out", input="in\n") == "in\nout\n"
    with pytest.raises(batch.SchedulerNotInstalled, match="not found on the gateway's PATH"):
        await batch.run(settings, "no-such-scheduler-command-x")
    with pytest.raises(batch.SchedulerError, match="oops"):
        await batch.run(settings, "sh", "-c", "echo oops >&2; exit 3")
    with pytest.raises(batch.SchedulerError):
        await batch.run(settings, "sleep", "10")


async def test_launch_job_script_and_output_tail(tmp_path):
    settings = KitBatch(output_dir=str(tmp_path))
    kernel = kernel_context(env={"NOTE": "x"})
    argv, env = await batch.prepare_launch(kernel, ["python", "{launcher}", "--RemoteProcessProxy.kernel-id", "{kernel_id}"], settings)
    try:
        assert argv[0] == sys.executable and argv[1] == remote.launcher_path()
        key_file = kernel.state["launch_key_file"]
        assert os.path.dirname(key_file) == str(tmp_path) and os.stat(key_file).st_mode & 0o777 == 0o600
        assert kernel.state["launch_key"] not in "".join(env.values()) and env["NOTE"] == "x" and "PATH" in env
    finally:
        remote.forget(kernel)
        await remote.discard_key_file(kernel)
    # the job script execs its argv with every word quoted
    output = batch.output_file(settings, kernel)
    assert output.name == f"eg-kernel-{kernel.kernel_id}.log" == f"{batch.job_name(kernel)}.log"
    script = batch.job_script([sys.executable, "-c", "import sys; [print(i) for i in range(30)]; print(sys.argv[1:])", "it's; $(x)"])
    with open(output, "w") as out:
        subprocess.run(["sh"], input=script, text=True, stdout=out, check=True)
    text = batch.with_output_tail("job 7: FAILED", output, lines=3)
    assert text == "job 7: FAILED; its output ends with:\n28\n29\n[\"it's; $(x)\"]"
    assert batch.with_output_tail("job 7", tmp_path / "none.log") == "job 7"
    assert batch.output_tail(output, 2) == ["29", "[\"it's; $(x)\"]"]  # eg_backend_log's lines
    assert batch.output_tail(output, 0) == [] and batch.output_tail(tmp_path / "none.log", 5) == []


def test_exit_status_of_a_job_state():
    active = {"PENDING", "RUNNING"}
    assert [batch.exit_status(s, active) for s in ("RUNNING", "COMPLETED", None, "FAILED")] == [None, 0, 0, 1]
    assert batch.exit_status("DONE", active, succeeded=("DONE",)) == 0


async def test_ended_and_cancel_wait_then_force(tmp_path):
    """A "job" is a real process; its state file is what the scheduler's status query reads."""
    settings = KitBatch(poll_interval=0.2)
    jobs: dict[str, subprocess.Popen] = {}

    async def query():
        return {job_id: ("RUNNING" if p.poll() is None else "DONE") for job_id, p in jobs.items()}

    name = f"kittest-{uuid.uuid4()}"
    ended = lambda job_id: batch.ended(settings, query, job_id, {"RUNNING"}, name)  # noqa: E731
    # a job that ignores the polite cancel (SIGTERM) is forced (SIGKILL) after the wait
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ok', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    stubborn.stdout.readline()
    jobs["1"] = stubborn
    forced = []

    async def force():
        forced.append(True)
        stubborn.kill()

    assert await batch.cancel(lambda: asyncio.to_thread(stubborn.terminate), lambda: ended("1"), 1.0, force=force)
    assert forced and await ended("1") == "DONE"
    # without force, a job that does not end in time is an asyncio.TimeoutError
    jobs["2"] = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ok', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    jobs["2"].stdout.readline()
    try:
        with pytest.raises(asyncio.TimeoutError):
            await batch.cancel(lambda: asyncio.to_thread(jobs["2"].terminate), lambda: ended("2"), 0.5)
    finally:
        jobs["2"].kill()
        jobs["2"].wait()
    # a polite cancel that works needs no force; wait=0 does not wait
    jobs["3"] = subprocess.Popen(["sleep", "60"])
    assert await batch.cancel(lambda: asyncio.to_thread(jobs["3"].terminate), lambda: ended("3"), 5.0, force=force)
    assert forced == [True]
    jobs["4"] = subprocess.Popen(["sleep", "60"])
    assert await batch.cancel(lambda: asyncio.to_thread(jobs["4"].kill), lambda: ended("4"), 0)
    jobs["4"].wait()
    stubborn.wait()


# -- hooks_from: a resource manager's hooks are its lifecycle module's functions ----------------------

LIFECYCLE = '''
import sys

from eg_core import LaunchFailed

IMPORTED = sys.modules.setdefault("eg_test_lifecycle_imports", [])
IMPORTED.append(__name__)


async def launch_process(kernel, cmd):
    """Called by eg_launch_process."""
    if cmd == ["fail"]:
        raise LaunchFailed("launch_process", "refused")
    kernel.state["cmd"] = cmd


def poll(kernel):
    return kernel.state.get("status")


def cleanup(kernel, restart=False):
    kernel.state["cleaned"] = restart


def launch(kernel):  # not a hook's name: no hook
    raise AssertionError("never called")
'''


def _plugin_manager_with(name, hooks):
    import types

    from eg_core._runtime.plugins import get_plugin_manager

    plugin = types.ModuleType(name)
    vars(plugin).update(hooks)
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin, name=name)
    return pm


@pytest.fixture
def lifecycle_package(tmp_path, monkeypatch):
    name = f"eg_rm_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "_kernels.py").write_text(LIFECYCLE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


async def test_hooks_from_a_module_name_imports_it_on_the_first_call(lifecycle_package):
    from eg_core._runtime.calling import acall_first, implemented
    from eg_core._runtime.plugins import resource_manager_hooks

    hooks = hooks_from(f"{lifecycle_package}._kernels")
    assert sorted(hooks) == ["eg_cleanup", "eg_launch_process", "eg_poll"]
    assert f"{lifecycle_package}._kernels" not in sys.modules

    pm = _plugin_manager_with("fake_rm", hooks)
    relay = resource_manager_hooks(pm, "fake_rm")
    assert not implemented(relay.eg_wait) and not implemented(relay.eg_connection_info)  # the core's defaults
    kernel = kernel_context()
    await acall_first(relay.eg_launch_process, kernel=kernel, cmd=["python", "-m", "ipykernel"])
    assert kernel.state["cmd"] == ["python", "-m", "ipykernel"]
    assert sys.modules["eg_test_lifecycle_imports"].count(f"{lifecycle_package}._kernels") == 1
    kernel.state["status"] = 3
    assert await acall_first(relay.eg_poll, kernel=kernel) == 3
    await acall_first(relay.eg_cleanup, kernel=kernel, restart=True)
    assert kernel.state["cleaned"] is False  # a parameter with a default keeps it, as pluggy does
    with pytest.raises(LaunchFailed, match="refused"):
        await acall_first(relay.eg_launch_process, kernel=kernel, cmd=["fail"])


async def test_hooks_from_an_object_and_its_mistakes():
    import pluggy

    from eg_core._runtime.calling import acall_first
    from eg_core._runtime.plugins import resource_manager_hooks

    class Backend:
        def __init__(self):
            self.signals = []

        async def send_signal(self, kernel, signum):
            self.signals.append((kernel.kernel_id, signum))

        def describe_exit(self, kernel):
            return "exit status 3"

    backend = Backend()
    pm = _plugin_manager_with("fake_object_rm", hooks_from(backend))
    relay = resource_manager_hooks(pm, "fake_object_rm")
    kernel = kernel_context()
    await acall_first(relay.eg_send_signal, kernel=kernel, signum=2)
    assert backend.signals == [(kernel.kernel_id, 2)]
    assert await acall_first(relay.eg_describe_exit, kernel=kernel) == "exit status 3"

    class SyncOnlyMadeAsync:
        async def requested_resources(self, kernel):
            return {}

    with pytest.raises(TypeError, match="eg_requested_resources without awaiting"):
        hooks_from(SyncOnlyMadeAsync())

    class WrongArgument:
        def poll(self, kernel, when):
            return None

    with pytest.raises(pluggy.PluginValidationError, match="when"):
        _plugin_manager_with("fake_wrong_rm", hooks_from(WrongArgument()))


class ShellJobs(batch.Scheduler):
    """A scheduler whose jobs are real ``sh`` processes running the job script: what a batch
    resource manager writes (its commands), the hooks being :class:`batch.Scheduler`'s."""

    name, active, kill_wait = f"shelljobs-{uuid.uuid4().hex[:6]}", {"RUNNING"}, 1.0

    def __init__(self, output_dir, refuse: bool = False):
        self.settings_class = KitBatch(output_dir=str(output_dir), poll_interval=0.2)
        self.jobs: dict[str, asyncio.subprocess.Process] = {}
        self.signalled: list[tuple[str, int]] = []
        self.cancelled: list[str] = []
        self.refuse = refuse

    async def submit(self, settings, kernel, argv, env, requested):
        if self.refuse:
            raise batch.SchedulerError("qsub: queue 'gpu' is disabled")
        with open(batch.output_file(settings, kernel), "wb") as out:
            proc = await asyncio.create_subprocess_exec(
                "sh", "-s", stdin=asyncio.subprocess.PIPE, stdout=out, stderr=out, env=env, start_new_session=True)
        proc.stdin.write(batch.job_script(argv).encode())
        proc.stdin.close()
        self.jobs[str(proc.pid)] = proc
        return str(proc.pid)

    async def states(self, settings):
        return {job_id: "RUNNING" if p.returncode is None else ("COMPLETED" if p.returncode == 0 else "FAILED")
                for job_id, p in self.jobs.items()}

    async def account(self, settings, job_id):
        return f"job {job_id}: exit status {self.jobs[job_id].returncode}"

    async def signal_job(self, settings, job_id, signum):
        self.signalled.append((job_id, signum))
        os.killpg(int(job_id), signum)

    async def cancel_job(self, settings, job_id):  # a cancel the scheduler takes but that does not end the job
        self.cancelled.append(job_id)

    async def force_cancel_job(self, settings, job_id):
        os.killpg(int(job_id), 9)


async def test_scheduler_hooks_over_a_schedulers_commands(tmp_path):
    import signal

    jobs = ShellJobs(tmp_path)
    hooks = hooks_from(jobs)
    assert sorted(hooks) == ["eg_backend_log", "eg_confirm_startup", "eg_describe_exit", "eg_kill", "eg_launch_process", "eg_poll", "eg_send_signal", "eg_wait"]
    failing = kernel_context()
    # a job that ends before its launcher calls back fails the launch, and says why
    await jobs.launch_process(failing, ["python", "-c", "print('no ipykernel here'); raise SystemExit(3)"])
    with pytest.raises(LaunchFailed, match="ended before calling back"):
        await jobs.confirm_startup(failing)
    remote.forget(failing)
    assert await jobs.wait(failing) == 1 and await jobs.poll(failing) == 1
    assert await jobs.describe_exit(failing) == f"job {failing.state['job_id']}: exit status 3; its output ends with:\nno ipykernel here"

    # a running job: no comm port, so signals take the scheduler's way; a kill cancels, then forces
    stubborn = kernel_context()
    await jobs.launch_process(stubborn, ["python", "-c", "import time; time.sleep(60)"])
    remote.forget(stubborn)
    assert await jobs.poll(stubborn) is None
    await jobs.send_signal(stubborn, signal.SIGCONT)
    assert jobs.signalled == [(stubborn.state["job_id"], signal.SIGCONT)]
    await jobs.kill(stubborn)
    assert jobs.cancelled == [stubborn.state["job_id"]]
    assert await jobs.wait(stubborn) == 1 and jobs.jobs[stubborn.state["job_id"]].returncode == -9

    with pytest.raises(LaunchFailed, match="queue 'gpu' is disabled") as refused:
        await ShellJobs(tmp_path, refuse=True).launch_process(kernel_context(), ["python", "-V"])
    assert refused.value.phase == "launch_process"


def test_a_scheduler_missing_a_command_is_refused_when_made():
    class NoCancel(batch.Scheduler):
        async def submit(self, settings, kernel, argv, env, requested=()):
            return "1"

        async def states(self, settings):
            return {}

        async def signal_job(self, settings, job_id, signum):
            pass

    with pytest.raises(TypeError, match="cancel_job"):
        NoCancel()


async def test_kernel_answers_once_a_kernel_started_after_the_probe_listens(tmp_path):
    """``containers.kernel_answers`` dials a kernel that is not listening yet and returns its
    kernel_info reply once it is (a real ipykernel); a kernel of another key never answers it."""
    import json

    from eg_core.testing import free_port

    conn = {"ip": "127.0.0.1", "transport": "tcp", "signature_scheme": "hmac-sha256", "key": uuid.uuid4().hex,
            **{f"{p}_port": free_port() for p in ("shell", "iopub", "stdin", "hb", "control")}}
    path = tmp_path / "kernel.json"
    path.write_text(json.dumps(conn))
    probe = asyncio.ensure_future(containers.kernel_answers(conn))
    wrong_key = asyncio.ensure_future(containers.kernel_answers({**conn, "key": uuid.uuid4().hex}))
    await asyncio.sleep(0)  # both sockets dial before the kernel exists
    kernel = subprocess.Popen([sys.executable, "-m", "ipykernel_launcher", "-f", str(path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        reply = await asyncio.wait_for(probe, 120)
        assert reply["status"] == "ok" and reply["implementation"] == "ipython"
        assert not wrong_key.done()  # the kernel drops a request it cannot verify
    finally:
        wrong_key.cancel()
        kernel.kill()
        kernel.wait()
