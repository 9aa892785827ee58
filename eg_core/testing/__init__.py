"""Test harness for eg and its plugins: a real eg-gateway process, REST and websocket clients
speaking both protocols, an in-process plugin manager, and the resource-manager conformance suite.

It is an opt-in pytest plugin: a plugin's top-level ``conftest.py`` declares ::

    pytest_plugins = ["eg_core.testing"]

(this repository's root ``conftest.py`` does it for the core's and the bundled plugins' tests).
Using it needs the ``test`` extra (httpx, websockets, pytest-asyncio, psutil).

For a resource manager:

- :class:`ResourceManagerConformance`: subclass it in a test module, name the kernelspec and
  provide the fixtures ``eg_gateway_factory`` (a gateway configured for the backend; the default
  starts a plain one) and ``eg_probe`` (what the backend still holds for a kernel id;
  :func:`processes_of_kernel` for backends that run processes on this machine). It inherits the
  checks every resource manager must pass: start and execute, interrupt, restart keeps the id,
  shutdown leaves nothing, a failed start names the phase and leaves nothing, the launch
  timeout leaves nothing, bad settings are refused before anything is created, adoption after a
  gateway SIGKILL, a gateway SIGKILLed during concurrent launches leaves nothing the next one does
  not adopt or remove, orphans found after a restart.

For a policy plugin:

- ``eg_plugin_manager``: a fresh in-process plugin manager (eg's hookspecs and rules, no plugins);
  :func:`kernel_context` builds a :class:`eg_core.KernelContext`;
- :class:`EventRecorder`: a plugin that records kernel events, ``await recorder.wait("launched")``;
  :func:`wait_for_event` waits for an event in a gateway process's event log.

For the launch key (each resource manager shows it appears in nothing its backend shows others):

- :func:`store_args` starts a gateway with a session store in a directory, and
  :func:`stored_launch_key` reads from there the launch key that gateway holds for a kernel;
  :func:`places_with` names the texts (``docker inspect``, ``scontrol show job``...) holding it.

For the launch parameters a resource manager publishes (``eg_launch_parameters``):

- :func:`launch_parameter_cases` turns a kernelspec's ``metadata.parameters`` into requests
  its validation must accept (each enum value, minimum, maximum, default) and refuse (just
  outside: maximum + 1, a value not in the enum, a prohibited value, the wrong type);
  :func:`check_launch_parameters` sends each through a gateway's real API.

For plugins of a test's own (a policy, a README example): :func:`plugin_site` installs modules
as ``eg.plugins`` entry points for a gateway subprocess.

For a plugin's startup cost:

- :func:`fresh_python` runs code in a fresh interpreter and says which modules it imported;
  :func:`startup_sweep` runs a plugin's startup sweep there, as the gateway does (a backend SDK
  that a gateway with no backend loads shows up in ``loaded``).

The core's own fixtures (``gateway``, ``gateway_factory``, ``http``, ``kernel``,
``kernel_spec_dirs``) start real gateways for REST and websocket tests; ``kerberos_realm`` is a
real MIT KDC on loopback (see :mod:`eg_core.testing._kerberos`); ``irkernel`` makes sure R and
IRkernel are installed on this host (a test of R kernels uses it);
``spark_runtime`` checks that real Spark can run here (pyspark in this Python, a Java runtime on
``PATH``) for the Spark tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import pytest


from eg_core import hookimpl, hookspecs
from ._clients import KernelSocket, new_msg, wait_until_busy  # noqa: F401  (public here)
from ._conformance import ResourceManagerConformance, wait_until_gone  # noqa: F401  (public here)
from ._parameters import check_launch_parameters, check_parameters_schema, launch_parameter_cases  # noqa: F401  (public here)
from ._plugins import kernelspec_dir, plugin_manager, plugin_site, resource_manager_of, resource_managers  # noqa: F401  (public here)

TOKEN = "test-token-" + uuid.uuid4().hex[:8]


def store_args(store: Path) -> list[str]:
    """Gateway arguments for a file session store in ``store`` (for :func:`stored_launch_key`)."""
    return ["--Gateway.availability_mode=standalone", f"--FileSessionStore.persistence_root={store}"]


def stored_launch_key(store: Path, kernel_id: str) -> str:
    """The launch key the gateway holds for ``kernel_id``, from its session record in ``store``
    (a gateway started with :func:`store_args`); call it once the kernel is started."""
    record = json.loads((Path(store) / f"{kernel_id}.json").read_text())
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                if name == "launch_key" and isinstance(item, str) and item:
                    found.append(item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(record)
    assert found, f"no launch key in the session record of {kernel_id}"
    return found[0]


def places_with(secret: str, /, **places: Any) -> list[str]:
    """The names of ``places`` (name=text, or any value, compared as its JSON/str form) whose
    text holds ``secret``; ``[]`` is what a launch-key test asserts."""
    def text(value: Any) -> str:
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if isinstance(value, str):
            return value
        try:
            return json.dumps(value, default=str)
        except (TypeError, ValueError):
            return str(value)

    assert len(secret) >= 16, "not a launch key"
    return [name for name, value in places.items() if secret in text(value)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def eg_gateway_factory(gateway_factory, kernel_spec_dirs):
    """``start(*args, env=None, kernel_spec_dirs=())`` starts a gateway (a :class:`GatewayProcess`,
    stopped after the test). Override it in a resource manager's tests to configure the backend."""

    def start(*args: str, env: dict | None = None, kernel_spec_dirs: list[str] | tuple = ()) -> GatewayProcess:
        return gateway_factory(*args, env=env, kernel_spec_dirs=[*module_dirs, *kernel_spec_dirs])

    module_dirs = list(kernel_spec_dirs)
    return start


async def processes_of_kernel(kernel_id: str) -> list[str]:
    """Processes on this machine whose environment has ``KERNEL_ID=<kernel_id>`` (a probe for
    the conformance suite; reading other users' environments needs root)."""
    import psutil

    def scan() -> list[str]:
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            try:
                if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.environ().get("KERNEL_ID") != kernel_id:
                    continue
            except (psutil.Error, OSError):
                continue
            found.append(f"{proc.info['pid']} {' '.join(proc.info['cmdline'] or [])}")
        return found

    return await asyncio.to_thread(scan)


class EventRecorder:
    """A plugin that records every kernel event; register it on a plugin manager and wait::

        recorder = EventRecorder()
        eg_plugin_manager.register(recorder, name="recorder")
        ...
        details = await recorder.wait("culled", kernel_id=kid)
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict]] = []  # (kernel_id, event, details)
        self._changed = asyncio.Condition()

    @hookimpl
    async def eg_kernel_event(self, kernel, event, details):
        async with self._changed:
            self.events.append((kernel.kernel_id, event, dict(details)))
            self._changed.notify_all()

    async def wait(self, event: str, kernel_id: str | None = None, timeout: float = 60.0) -> dict:
        """The details of the first recorded ``event`` (of ``kernel_id``), waiting for it."""

        def found():
            return next((d for k, e, d in self.events if e == event and kernel_id in (None, k)), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), timeout)
            return found()


async def wait_for_event(gw: "GatewayProcess", event: str, kernel_id: str | None = None, timeout: float = 60.0) -> dict:
    """The first ``event`` (of ``kernel_id``) in a gateway process's event log (the ``events``
    plugin's JSON lines), waiting up to ``timeout`` seconds for it to be written."""
    deadline = time.monotonic() + timeout
    while True:
        for line in gw.output().splitlines():
            start = line.find('{"time"')
            if start < 0:
                continue
            try:
                record = json.loads(line[start:])
            except ValueError:
                continue
            if record.get("event") == event and kernel_id in (None, record.get("kernel_id")):
                return record
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {event!r} event{' for kernel ' + kernel_id if kernel_id else ''} within {timeout}s")
        await asyncio.sleep(0.1)


@pytest.fixture
def eg_plugin_manager():
    """A fresh, in-process plugin manager with eg's hookspecs and registration rules and no
    plugins: register inline plugins (``eg_plugin_manager.register(MyPolicy(), name="mine")``)
    and call its hooks (``pm.hook.eg_before_launch(kernel=kernel_context())``)."""
    from ..hookspecs import NAME
    from .._runtime.plugins import PluginManager

    pm = PluginManager(NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def kernel_context(**fields):
    """A :class:`eg_core.KernelContext` for unit tests (a new kernel id, kernelspec ``test``,
    resource manager ``local``, unless ``fields`` say otherwise)."""
    from .. import KernelContext

    values = {"kernel_id": str(uuid.uuid4()), "kernel_name": "test", "resource_manager": "local", **fields}
    return KernelContext(**values)


PORT_ATTEMPTS = 3


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a TCP socket listening on ``port`` (from /proc)."""
    inodes = set()
    for line in _proc_lines(f"/proc/{pid}/net/tcp") + _proc_lines(f"/proc/{pid}/net/tcp6"):
        fields = line.split()
        if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
        except OSError:
            continue
    return False


def _proc_lines(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.readlines()[1:]
    except OSError:
        return []


def on_host(name: str) -> list[str]:
    """A :class:`GatewayProcess` ``prefix`` running the gateway under the host name ``name`` (a
    UTS namespace of its own; needs root), as a replica on another machine would."""
    return ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', name]


class GatewayProcess:
    """An ``eg-gateway`` subprocess on a free port."""

    def __init__(
        self, tmp: Path, *args: str, env: dict | None = None, token: str | None = TOKEN, kernel_spec_dirs: list[str] = (),
        response_address: str | None = "127.0.0.1:0", prefix: Sequence[str] = (),
    ):
        """``response_address`` None leaves the response listener's address to the gateway's
        defaults and ``env`` (by default a free port is used). ``prefix`` runs the gateway
        through a command that ends by exec'ing its arguments (the process keeps its pid), such
        as :func:`on_host`'s."""
        self.token = token
        args = list(args)
        if token:  # None: --no-auth; "": neither, so the gateway generates one
            args.append(f"--Gateway.auth_token={token}")
        elif token is None:
            args.append("--no-auth")
        if response_address and not any(a.startswith("--ResponseListener.response_address") for a in args):
            args.append(f"--ResponseListener.response_address={response_address}")
        # The session store of the test's gateways is the test's own (not the user's data dir).
        full_env = {
            **os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "EG_PERSISTENCE_ROOT": str(tmp / "sessions"),
            **(env or {}),
        }
        for attempt in range(PORT_ATTEMPTS):
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.ws_url = f"ws://127.0.0.1:{self.port}"
            self.log_path = tmp / f"gateway-{self.port}.log"
            cmd = [*prefix, sys.executable, "-m", "eg_core", f"--port={self.port}",
                   f"--Gateway.kernel_spec_dirs={json.dumps(list(kernel_spec_dirs))}", *args]
            self.log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=full_env)
            if self._wait_listening(last=attempt == PORT_ATTEMPTS - 1):
                return

    def _wait_listening(self, last: bool, timeout: float = 30) -> bool:
        """Wait until this gateway process itself listens on its port (another process that took
        the port since :func:`free_port` chose it, such as a kernel, does not count). False when
        the gateway exited because the port was taken, so another one can be tried."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if not last and f"port {self.port} is in use" in self.output():
                    self.log.close()
                    return False
                raise RuntimeError(f"gateway exited: {self.output()}")
            if _listens(self.proc.pid, self.port):
                return True
            time.sleep(0.05)
        raise RuntimeError(f"gateway did not listen: {self.output()}")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    async def wait_for_output(self, text: str, timeout: float = 60.0) -> str:
        """The gateway's output once it contains ``text`` (what the gateway does after it
        serves, such as its startup sweep, is known only from its log); fails after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while text not in (output := self.output()):
            assert time.monotonic() < deadline, f"{text!r} not in the gateway's output: {output[-3000:]}"
            await asyncio.sleep(0.05)
        return output

    @property
    def headers(self) -> dict:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    def client(self, token: str | None = None):
        """An httpx client of the gateway with its token, or with ``token`` (a user's)."""
        import httpx

        headers = {"Authorization": f"token {token}"} if token else self.headers
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=90)

    shared = False  # True while several tests use it (ResourceManagerConformance): stop() waits for release()

    def release(self) -> None:
        """Stop a gateway that several tests shared, once the last of them is done."""
        self.shared = False
        self.stop()

    def stop(self) -> None:
        if self.shared:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def gateway_exit(tmp: Path, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``eg-gateway`` with arguments it must refuse at startup; return the finished process
    (``returncode``, ``stdout``, ``stderr`` as text). ``JUPYTER_CONFIG_DIR`` is ``tmp`` unless
    ``env`` sets it, so config files written there are read. A gateway that starts serving
    instead is stopped after ``timeout`` and fails the caller's test with its output."""
    full_env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), **(env or {})}
    cmd = [sys.executable, "-m", "eg_core", *args]
    if not any(a.startswith("--port=") for a in args):
        cmd.append(f"--port={free_port()}")
    if not any(a.startswith("--ResponseListener.response_address") for a in args) and not any(k.startswith("EG_RESPONSE_") for k in env or {}):
        cmd.append("--ResponseListener.response_address=127.0.0.1:0")
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the gateway did not exit: {exc.stderr!r}") from None


@pytest.fixture(scope="module")
def kernel_spec_dirs() -> list[str]:
    """Extra kernelspec directories for the gateways of a test module (override in a conftest)."""
    return []


@pytest.fixture
def gateway_factory(tmp_path, kernel_spec_dirs):
    started: list[GatewayProcess] = []

    def start(*args: str, **kwargs) -> GatewayProcess:
        kwargs.setdefault("kernel_spec_dirs", kernel_spec_dirs)
        gw = GatewayProcess(tmp_path, *args, **kwargs)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture(scope="class")
def eg_shared_gateways():
    """The gateways a test class shares (:class:`ResourceManagerConformance`'s ``eg_gateway``):
    a list to append to, each released after the class's last test."""
    shared: list[GatewayProcess] = []
    yield shared
    for gw in shared:
        gw.release()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, kernel_spec_dirs):
    gw = GatewayProcess(tmp_path_factory.mktemp("gw"), kernel_spec_dirs=kernel_spec_dirs)
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def kerberos_realm(tmp_path_factory):
    """A Kerberos realm (``EG.TEST``) with its KDC running on 127.0.0.1, for the whole session."""
    from eg_core.testing._kerberos import KerberosRealm

    realm = KerberosRealm(tmp_path_factory.mktemp("krb5")).start()
    yield realm
    realm.stop()


IRKERNEL_PACKAGES = ("r-base-core", "r-cran-irkernel")


@pytest.fixture(scope="session")
def irkernel() -> str:
    """R with IRkernel on this host (for local R kernels, and R kernels that resource managers
    start here: sshd on loopback, the Slurm node, the YARN emulator's node); returns R's path.
    Fails, saying what to install, when either is missing (``.ci/run`` installs them); tests
    that use it are in the full run only (the root ``conftest.py``'s ``SERVICE_FIXTURES``)."""
    import shutil

    r = shutil.which("R")
    found = subprocess.run(
        [r, "--slave", "-e", "cat(requireNamespace('IRkernel', quietly = TRUE))"], capture_output=True, text=True, timeout=60,
    ).stdout if r else ""
    assert found.strip() == "TRUE", f"R with IRkernel is not installed here: apt-get install {' '.join(IRKERNEL_PACKAGES)}"
    return r


@pytest.fixture(scope="session")
def spark_runtime() -> str:
    """pyspark's ``SPARK_HOME`` (its bundled jars and ``bin/spark-submit``), once a Java runtime is
    on ``PATH``; fails saying what to install when either is missing."""
    import shutil

    if shutil.which("java") is None:
        pytest.fail("no java on PATH: install openjdk-17-jre-headless (.ci/run does)")
    try:
        import pyspark
    except ImportError:
        pytest.fail("pyspark is missing: pip install -c constraints.txt -e '.[spark]' (scripts/test.sh does)")
    return os.path.dirname(pyspark.__file__)


@pytest.fixture
async def http(gateway):
    async with gateway.client() as client:
        yield client


@pytest.fixture
async def kernel(http):
    """A fresh python3 kernel, shut down after the test."""
    r = await http.post("/api/kernels", json={"name": "python3"})
    assert r.status_code == 201, r.text
    model = r.json()
    yield model
    await http.delete(f"/api/kernels/{model['id']}")


def run_doctor(*args: str, env: dict | None = None, kernel_spec_dirs=(), timeout: float = 180) -> subprocess.CompletedProcess:
    """Run ``eg-gateway doctor`` (with ``args`` and ``env`` added to this process's environment)
    and return the finished process: its ``returncode`` and its ``stdout``, one line per check."""
    cmd = [sys.executable, "-m", "eg_core", "doctor", f"--Gateway.kernel_spec_dirs={json.dumps(list(kernel_spec_dirs))}", *args]
    return subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)


# -- fresh interpreters -----------------------------------------------------------------------


@dataclass
class FreshPython:
    """What :func:`fresh_python` saw: the code's ``answer``, which of the named modules were
    imported once it ran (``loaded``), and its stderr."""

    answer: Any
    loaded: list[str]
    stderr: str


def fresh_python(code: str, modules: Iterable[str] = (), env: dict[str, str] | None = None) -> FreshPython:
    """Run ``code`` in a new Python interpreter (this one's executable; ``env`` is its whole
    environment, this process's by default). ``code`` may set ``answer`` (JSON-able) and may
    define ``async def main()``, whose result becomes ``answer``. Fails the test when it fails."""
    script = (
        f"{code}\nimport asyncio as _asyncio, json as _json, sys as _sys\n"
        "if 'main' in globals():\n    answer = _asyncio.run(main())\n"
        f"_loaded = [m for m in {list(modules)!r} if m in _sys.modules]\n"
        "print(_json.dumps({'answer': globals().get('answer'), 'loaded': _loaded}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    return FreshPython(result["answer"], result["loaded"], done.stderr)


def startup_sweep(plugin_module: str, modules: Iterable[str] = (), env: dict[str, str] | None = None) -> FreshPython:
    """Import ``plugin_module`` in a new interpreter and run its ``eg_reconcile`` as the
    gateway's startup sweep does, then its ``eg_shutdown`` if it has one. ``answer`` is what the
    sweep reported unreachable (:func:`eg_core.orphans.unreachable`), by resource manager."""
    code = f"""
import importlib, inspect
from eg_core import orphans
plugin = importlib.import_module({plugin_module!r})

async def main():
    with orphans.gathering_unreachable() as unreachable:
        done = plugin.eg_reconcile(known_kernel_ids=set())
        if inspect.isawaitable(done):
            await done
    done = plugin.eg_shutdown() if hasattr(plugin, "eg_shutdown") else None
    if inspect.isawaitable(done):
        await done
    return unreachable
"""
    return fresh_python(code, modules, env)
