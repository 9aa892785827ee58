"""The shared machinery plugins build on: argv templates, kernelspec overrides validated through
the traits, the subprocess runner, the orphan sweep, the launcher's environment and the one
signal fallback policy. In-process, with real subprocesses and real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid

import pytest
from traitlets import Bool, Enum, Int, List, Unicode
from traitlets.config import SingletonConfigurable

from eg_core import BadRequest, KernelContext, argv, orphans, procinfo, process, remote
from eg_core.config import EnvDefaults, kernelspec_settings, overridable


class DemoSettings(EnvDefaults, SingletonConfigurable):
    partition = Unicode("debug", config=True, help="Partition.").tag(kernelspec=True, env=("EG_DEMO_PARTITION",))
    cpus = Int(1, config=True, help="CPUs.").tag(kernelspec=True)
    exclusive = Bool(False, config=True, help="Whole nodes.").tag(kernelspec=True)
    queues = List(Unicode(), ["a"], config=True, help="Queues.").tag(kernelspec=True)
    mode = Enum(("batch", "interactive"), "batch", config=True, help="Mode.").tag(kernelspec=True)
    account = Unicode("ops", config=True, help="Gateway-wide only.")


def kernel(**config) -> KernelContext:
    return KernelContext(kernel_id="k1", kernel_name="demo", resource_manager="demo", config=config, env={"KERNEL_X": "1"})


@pytest.fixture
def demo(monkeypatch):
    monkeypatch.setenv("EG_DEMO_PARTITION", "gpu")
    DemoSettings.clear_instance()
    yield DemoSettings.instance()
    DemoSettings.clear_instance()


def test_argv_fill_leaves_unknown_templates():
    assert argv.fill(["x", "{a}-{b}", "{c}"], {"a": 1, "c": "z"}) == ["x", "1-{b}", "z"]
    assert argv.uses(["--f", "{connection_file}"], "connection_file") and not argv.uses(["{x}"], "y")


def test_kernelspec_overrides_are_validated_by_the_traits(demo):
    assert overridable(DemoSettings) == ["cpus", "exclusive", "mode", "partition", "queues"]
    s = kernelspec_settings(kernel(cpus="4", exclusive="true", queues="q1, q2", port_range="ignored"), DemoSettings)
    assert (s.partition, s.cpus, s.exclusive, s.queues, s.account) == ("gpu", 4, True, ["q1", "q2"], "ops")
    for config, message in [
        ({"cpus": "four"}, "config.cpus is not valid"),
        ({"exclusive": "maybe"}, "config.exclusive is not valid"),
        ({"mode": "fast"}, "config.mode is not valid.*batch"),
        ({"account": "root"}, "config.account is a gateway-wide setting.*may set: cpus, exclusive"),
    ]:
        with pytest.raises(BadRequest, match=message):
            kernelspec_settings(kernel(**config), DemoSettings)


async def test_run_captures_output_and_status():
    done = await process.run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"], timeout=60)
    assert (done.returncode, done.stdout.strip(), done.stderr.strip()) == (3, "out", "err")
    assert done.explain().endswith("exited with status 3: err")
    echoed = await process.run([sys.executable, "-c", "print(input()[::-1])"], timeout=60, input="abc\n")
    assert echoed.stdout.strip() == "cba"


async def test_run_kills_the_process_group_on_timeout(tmp_path):
    marker = tmp_path / "child.pid"
    code = f"import os, subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); open({str(marker)!r}, 'w').write(str(p.pid)); time.sleep(600)"
    with pytest.raises(process.CommandTimeout):
        await process.run([sys.executable, "-c", code], timeout=3)
    child = int(marker.read_text())
    for _ in range(200):  # the grandchild was killed with its group (reaped by init)
        try:
            with open(f"/proc/{child}/stat") as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    break
        except FileNotFoundError:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the command's child survived the timeout")


def test_kernel_env_never_carries_gateway_secrets(monkeypatch):
    monkeypatch.setenv("EG_AUTH_TOKEN", "secret")
    env = process.kernel_process_env(kernel())
    assert "EG_AUTH_TOKEN" not in env and env["KERNEL_X"] == "1"
    assert "EG_LAUNCH_KEY" not in remote.launcher_env(kernel(), None)


async def test_launcher_env_names_where_the_key_is_never_the_key_itself(tmp_path):
    k = kernel()
    k.env["EG_LAUNCH_KEY_FILE"] = "/etc/shadow"  # only the gateway says where the key is
    with pytest.raises(ValueError):
        remote.launcher_env(k, "key")
    path = await remote.write_key_file(k, "the-key", str(tmp_path))
    assert os.stat(path).st_mode & 0o777 == 0o600 and open(path).read() == "the-key"
    env = remote.launcher_env(k, "the-key", key_file=path)
    assert env["EG_LAUNCH_KEY_FILE"] == path and "the-key" not in env.values()
    assert remote.launcher_env(k, "the-key", key_on_stdin=True)["EG_LAUNCH_KEY_STDIN"] == "1"
    assert remote.key_line("the-key") == b"the-key\n"
    assert remote.launcher_env(k, "the-key", key_in_env=True)["EG_LAUNCH_KEY"] == "the-key"
    assert k.state["launch_key_file"] == path
    await remote.discard_key_file(k)  # what the core does at cleanup
    assert not os.path.exists(path) and "launch_key_file" not in k.state
    if os.geteuid() == 0:  # a gateway running as root hands the file to the kernel's user
        path = await remote.write_key_file(k, "the-key", str(tmp_path), uid=65534, gid=65534)
        st = os.stat(path)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o600)
        await remote.discard_key_file(k)
        assert not os.path.exists(path)


async def test_orphan_sweep_reports_and_removes_only_unknown_kernels(caplog):
    held = [orphans.Resource("job", "1", "k-a", "a"), orphans.Resource("job", "2", "k-b", "b")]
    removed = []

    async def listing():
        return held

    async def remove(resource):
        removed.append(resource.id)
        return True

    assert await orphans.sweep("demo", {"a"}, listing, remove) == [held[1]] and removed == []
    assert "demo: found orphan job k-b" in caplog.text
    assert await orphans.sweep("demo", {"a"}, listing, remove, policy="remove") == [held[1]] and removed == ["2"]
    assert await orphans.sweep("demo", set(), listing, remove, policy="ignore") == []

    async def unreachable():
        raise OSError("connection refused")

    assert await orphans.sweep("demo", set(), unreachable, remove) == []
    assert "cannot list kernel resources" in caplog.text
    caplog.clear()
    with orphans.gathering_unreachable() as reports:  # as the gateway runs its startup sweep
        assert await orphans.sweep("demo", set(), unreachable, remove) == []
        orphans.unreachable("other", "no\nconfiguration")
    assert reports == {"demo": "connection refused", "other": "no | configuration"}
    assert "cannot list" not in caplog.text


def _sleeper(env: dict[str, str] | None = None) -> subprocess.Popen:
    """A real process in its own session (as a local kernel or an SSH launcher runs)."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], env={**os.environ, **(env or {})}, start_new_session=True,
    )


def _owner(proc: subprocess.Popen, resource_manager: str = "local") -> str:
    ident = {"host": socket.gethostname(), "pid": proc.pid, "started": procinfo.start_time(proc.pid)}
    return json.dumps({"resource_manager": resource_manager, **ident})


async def test_only_kernels_of_this_gateway_id_whose_gateway_is_gone_are_orphans():
    """Real processes carrying the ownership marks: of the five, only the one of this gateway id
    whose gateway process ended is an orphan; not one of a live gateway (another, or this one),
    of another id or of another resource manager. The remote form of the scan sees the same."""
    dead_gateway, live_gateway = _sleeper(), _sleeper()
    dead_owner, live_owner = _owner(dead_gateway), _owner(live_gateway)
    dead_gateway.kill()
    dead_gateway.wait()
    gid = f"test-{uuid.uuid4().hex[:8]}"
    marks = {
        "orphan": {orphans.GATEWAY_ID_VAR: gid, orphans.OWNER_VAR: dead_owner},
        "live gateway": {orphans.GATEWAY_ID_VAR: gid, orphans.OWNER_VAR: live_owner},
        "this gateway": orphans.owner_marks("local", gid),
        "another id": {orphans.GATEWAY_ID_VAR: gid + "-b", orphans.OWNER_VAR: dead_owner},
        "another resource manager": {orphans.GATEWAY_ID_VAR: gid, orphans.OWNER_VAR: _owner(dead_gateway, "ssh")},
    }
    ids = {what: str(uuid.uuid4()) for what in marks}
    kernels = {what: _sleeper({"KERNEL_ID": ids[what], **marks[what]}) for what in marks}
    try:
        sessions = await asyncio.to_thread(procinfo.kernel_sessions)
        [orphan] = orphans.owned_sessions(sessions, "local", gid)
        assert orphan.kernel_id == ids["orphan"] and orphan.id.startswith(f"{kernels['orphan'].pid}:")
        assert "is gone" in orphan.state
        remote_form = subprocess.run(
            [sys.executable, "-c", procinfo.script(procinfo.kernel_sessions)], capture_output=True, text=True, check=True,
        )
        [again] = orphans.owned_sessions(json.loads(remote_form.stdout), "local", gid)
        assert again == orphan
        pid, started = orphans.session_of(orphan)
        assert not procinfo.end_session(pid, started + 1)  # a pid now naming another process is left alone
        assert kernels["orphan"].poll() is None
        assert procinfo.end_session(pid, started)
        assert kernels["orphan"].wait(30) == -signal.SIGKILL
    finally:
        for proc in [*kernels.values(), live_gateway]:
            proc.kill()
            proc.wait()


def test_gateway_ids_are_checked_and_stable():
    from eg_core._builtin._local_orphans import LocalResourceManager

    assert LocalResourceManager().gateway_id == orphans.default_gateway_id() == f"eg-{socket.gethostname()}"
    assert LocalResourceManager(gateway_id="team-a.gw:1").gateway_id == "team-a.gw:1"
    with pytest.raises(Exception, match="letters, digits"):
        LocalResourceManager(gateway_id="a b; rm -rf /")


async def test_signal_policy_falls_back_once_and_trusts_a_refusal():
    calls = []

    async def fallback(k, signum):
        calls.append(signum)

    k = kernel()
    await remote.send_signal(k, signal.SIGINT, fallback)  # no comm port: the backend's way
    await remote.terminate(k, fallback)
    assert calls == [signal.SIGINT, signal.SIGTERM]
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)  # answers nothing useful
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    k.state.update(comm_ip="127.0.0.1", comm_port=port, launch_key=None)
    calls.clear()
    await remote.send_signal(k, signal.SIGINT, fallback)  # refused: the launcher is gone, nothing to do
    assert calls == []


async def test_an_interrupt_the_launcher_did_not_answer_is_not_sent_again():
    """A comm-port request that timed out may have been delivered: a second SIGINT through the
    backend would stop the user's next cell. Other signals still fall back."""
    calls = []

    async def fallback(k, signum):
        calls.append(signum)

    held = []

    async def silent(reader, writer):  # reads the request, never answers
        held.append(writer)
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        k = kernel()
        k.state.update(comm_ip="127.0.0.1", comm_port=server.sockets[0].getsockname()[1], launch_key=None)
        await remote.send_signal(k, signal.SIGINT, fallback)
        assert calls == []
        await remote.send_signal(k, signal.SIGUSR1, fallback)
        assert calls == [signal.SIGUSR1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_poller_asks_once_per_interval_for_every_watched_key():
    from eg_core.poller import StatusPoller

    states = {"a": "RUNNING", "b": "RUNNING"}
    asked = []

    async def query(keys):
        asked.append(sorted(keys))
        return {k: states[k] for k in keys if k in states}

    poller = StatusPoller(query, interval=0.01, name="demo")
    a = asyncio.ensure_future(poller.wait_until("a", lambda s: s != "RUNNING"))
    b = asyncio.ensure_future(poller.wait_until("b", lambda s: s is None))
    while poller.queries < 2:
        await asyncio.sleep(0.01)
    assert ["a", "b"] in asked and not a.done()
    states["a"] = "FAILED"
    del states["b"]
    assert await asyncio.wait_for(a, 30) == "FAILED"
    assert await asyncio.wait_for(b, 30) is None
    assert all(len(keys) <= 2 for keys in asked)
    await asyncio.sleep(0.05)
    assert poller._task is None  # nothing watched: no more queries


async def test_shared_poller_is_one_per_backend_and_event_loop():
    from eg_core.poller import StatusPoller

    async def query(keys):
        return {}

    first = StatusPoller.shared(("demo", "host-a"), query, 1.0, "demo")
    assert StatusPoller.shared(("demo", "host-a"), query, 5.0, "other") is first
    assert StatusPoller.shared(("demo", "host-b"), query, 1.0, "demo") is not first
    other_loop = await asyncio.get_running_loop().run_in_executor(
        None, lambda: asyncio.run(_shared_poller_on_a_new_loop(query)))
    assert other_loop is not first


async def _shared_poller_on_a_new_loop(query):
    from eg_core.poller import StatusPoller

    return StatusPoller.shared(("demo", "host-a"), query, 1.0, "demo")


async def test_core_forgets_the_launcher_callback_at_cleanup_without_an_eg_cleanup():
    from eg_core._runtime.launch import cleanup
    from eg_core._runtime.plugins import get_plugin_manager, resource_manager_hooks

    hooks = resource_manager_hooks(get_plugin_manager(load_entrypoints=False), "no-such-manager")
    k = kernel()
    await remote.expect_callback(k)
    try:
        assert "callback" in k.handles
        await cleanup(k, hooks, restart=False)
        assert "callback" not in k.handles
        assert "is not registered" in remote.diagnose(k)
    finally:
        await remote.stop_listener()


async def test_poller_backs_off_and_a_wake_asks_at_once():
    from eg_core.poller import StatusPoller

    asked = asyncio.Event()

    async def query(keys):
        asked.set()
        return {k: "RUNNING" for k in keys}

    poller = StatusPoller(query, interval=0.16, name="demo", start=0.01)
    waiter = asyncio.ensure_future(poller.wait_until("a", lambda s: s is None))
    while poller.queries < 6:  # waits of 0.01, 0.02, 0.04, 0.08, then the interval
        await asyncio.sleep(0.01)
    assert poller._delay == 0.16
    waiter.cancel()

    slow = StatusPoller(query, interval=3600, name="demo")
    waiter = asyncio.ensure_future(slow.wait_until("a", lambda s: s is None))
    await asyncio.wait_for(asked.wait(), 30)
    assert slow.queries == 1
    asked.clear()
    slow.wake()  # the next query is an hour away: only the wake makes it ask now
    await asyncio.wait_for(asked.wait(), 30)
    assert slow.queries == 2
    waiter.cancel()
    await asyncio.wait_for(slow._task, 30)  # no kernel watched: the poller stops without its hour's wait


def test_request_overrides_allow_list_and_working_dir_rule():
    from eg_core import LaunchRefused
    from eg_core.config import RequestOverrides

    variables = {"uid": "KERNEL_UID", "working_dir": "KERNEL_WORKING_DIR", "image": "KERNEL_IMAGE"}

    def layers(env, **options):
        k = KernelContext(kernel_id="k1", kernel_name="demo", resource_manager="demo", config={"image": "eg/py"},
                          env=dict(env), spec={"env": {"KERNEL_UID": "1000"}})
        return k, RequestOverrides(k, variables, **options)

    k, lay = layers({"KERNEL_UID": "1000", "KERNEL_WORKING_DIR": "/home/alice"}, allowed=[], ignored=["working_dir"])
    assert lay.get("uid", fallback=0) == ("1000", False)  # the kernelspec's own value, not the request's
    assert lay.get("working_dir") == (None, False) and "KERNEL_WORKING_DIR" not in k.env  # dropped
    _, lay = layers({"KERNEL_WORKING_DIR": "/home/alice"}, allowed=[], ignored=["working_dir"], mirror_working_dirs=True)
    assert lay.get("working_dir") == ("/home/alice", True)
    _, lay = layers({"KERNEL_WORKING_DIR": "/home/alice", "KERNEL_UID": "0"}, allowed=["uid"], ignored=[])
    assert lay.get("uid") == ("0", True)
    with pytest.raises(LaunchRefused, match="KERNEL_WORKING_DIR may not be set .* adding 'working_dir' to"):
        lay.get("working_dir")
    _, lay = layers({"KERNEL_IMAGE": "eg/r"}, allowed=[], ignored=["image"])
    assert lay.get("image", patterns=["eg/*"], patterns_name="allowed_images") == ("eg/r", True)
    with pytest.raises(LaunchRefused, match="not among the values allowed"):
        lay.get("image", patterns=["other/*"], patterns_name="allowed_images")
    with pytest.raises(LaunchRefused, match="or patterns to allowed_images"):
        lay.get("image", patterns=[], patterns_name="allowed_images")  # never silently ignored
