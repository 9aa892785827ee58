"""A real sshd for eg-ssh's tests and benchmark, on loopback addresses and a free port.

Needs root (sshd switches to the test users) and the root-made setup of
``plugins/eg_ssh/ci/setup.sh``: openssh-server, the users ``egtest``/``egtest2`` and a
world-readable kernel venv. :func:`ensure_setup` runs that script when something is missing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import asyncssh

SSHD = "/usr/sbin/sshd"
SETUP_SCRIPT = Path(__file__).resolve().parents[1] / "ci" / "setup.sh"
TEST_USERS = ("egtest", "egtest2")
# ci/setup.sh gives the second user this password (the tests' sshd listens on loopback only).
PASSWORD_USER, TEST_PASSWORD = TEST_USERS[1], os.environ.get("EG_SSH_TEST_PASSWORD", "eg-ssh-test-password")
KERNEL_PYTHON = os.environ.get("EG_SSH_TEST_VENV", "/opt/eg-ssh-test/venv") + "/bin/python"


def _missing() -> list[str]:
    missing = []
    if not os.path.exists(SSHD):
        missing.append(f"{SSHD} (openssh-server)")
    for user in TEST_USERS:
        try:
            import pwd

            pwd.getpwnam(user)
        except KeyError:
            missing.append(f"user {user}")
    if not _has_password(PASSWORD_USER):
        missing.append(f"a password for {PASSWORD_USER}")
    if not os.path.exists(KERNEL_PYTHON) or subprocess.run(
        [KERNEL_PYTHON, "-c", "import ipykernel"], capture_output=True
    ).returncode:
        missing.append(f"kernel venv {KERNEL_PYTHON} with ipykernel")
    return missing


def _has_password(user: str) -> bool:
    try:
        with open("/etc/shadow") as f:
            fields = next((line.split(":") for line in f if line.startswith(user + ":")), None)
    except OSError:
        return True  # not root: cannot tell, assume the setup did it
    return bool(fields) and fields[1] not in ("", "*", "!", "!!") and not fields[1].startswith("!")


def ensure_setup() -> None:
    """Make sure the root-made setup exists: run ``ci/setup.sh`` when something is missing (as
    root), else raise RuntimeError naming the script."""
    missing = _missing()
    if not missing:
        return
    hint = f"run {SETUP_SCRIPT} as root (it is idempotent)"
    if os.geteuid() != 0 or not SETUP_SCRIPT.exists():
        raise RuntimeError(f"eg-ssh tests need {', '.join(missing)}: {hint}")
    result = subprocess.run(["sh", str(SETUP_SCRIPT)], capture_output=True, text=True)
    if result.returncode or _missing():
        raise RuntimeError(f"{SETUP_SCRIPT} failed (missing: {', '.join(_missing())}):\n{result.stdout}{result.stderr}")


def _free_port(addresses: tuple[str, ...]) -> int:
    for _ in range(100):
        with socket.socket() as s:
            s.bind((addresses[0], 0))
            port = s.getsockname()[1]
        try:
            for address in addresses[1:]:
                with socket.socket() as s:
                    s.bind((address, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free on all of " + ", ".join(addresses))


def _write_key(key: asyncssh.SSHKey, path: Path) -> None:
    key.write_private_key(str(path))
    path.chmod(0o600)
    key.write_public_key(str(path) + ".pub")


class TestSSHD:
    """sshd -D on ``addresses`` (one port), host and client keys, per-user authorized keys.

    Files (in a world-traversable temp dir, so sshd can read authorized keys as the user):
    ``client_key`` (accepted for every user in ``users``), ``wrong_key`` (accepted for none),
    ``known_hosts`` (the host key for every address) and ``sshd.log``.
    """

    __test__ = False

    def __init__(
        self, addresses=("127.0.0.1", "127.0.0.2"), users=TEST_USERS, max_sessions: int = 10,
        extra_config: str = "", env: dict[str, str] | None = None,
    ):
        """``extra_config`` lines are added to sshd_config; ``env`` to sshd's environment (e.g. a
        Kerberos realm's ``KRB5_CONFIG`` and ``KRB5_KTNAME`` for GSSAPI logins)."""
        self.env = {**os.environ, **(env or {})}
        self.addresses = tuple(addresses)
        self.users = tuple(users)
        self.dir = Path(tempfile.mkdtemp(prefix="eg-ssh-test-"))
        self.dir.chmod(0o755)
        self.port = _free_port(self.addresses)
        self.host_key_path = self.dir / "host_ed25519"
        self.client_key = self.dir / "client_ed25519"
        self.wrong_key = self.dir / "wrong_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.log_path = self.dir / "sshd.log"
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        _write_key(host_key, self.host_key_path)
        client = asyncssh.generate_private_key("ssh-ed25519")
        _write_key(client, self.client_key)
        _write_key(asyncssh.generate_private_key("ssh-ed25519"), self.wrong_key)
        keys_dir = self.dir / "authorized_keys"
        keys_dir.mkdir(mode=0o755)
        public = client.export_public_key("openssh").decode()
        for user in self.users:
            (keys_dir / user).write_text(public)
            (keys_dir / user).chmod(0o644)
        host_public = host_key.export_public_key("openssh").decode().strip()
        self.known_hosts.write_text("".join(f"[{a}]:{self.port} {host_public}\n" for a in self.addresses))
        listen = "".join(f"ListenAddress {a}:{self.port}\n" for a in self.addresses)
        self.config = self.dir / "sshd_config"
        self.config.write_text(
            f"{listen}HostKey {self.host_key_path}\nPidFile {self.dir}/sshd.pid\n"
            f"AuthorizedKeysFile {keys_dir}/%u\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nPermitRootLogin no\nUsePAM no\nStrictModes no\n"
            f"MaxSessions {max_sessions}\nAllowUsers {' '.join(self.users)}\nLogLevel VERBOSE\n{extra_config}"
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> "TestSSHD":
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        check = subprocess.run([SSHD, "-t", "-f", str(self.config)], capture_output=True, text=True, env=self.env)
        if check.returncode:
            raise RuntimeError(f"sshd rejects its test config: {check.stderr}")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdout=log, stderr=log, env=self.env)
        deadline = time.monotonic() + 10
        for address in self.addresses:
            while True:
                try:
                    socket.create_connection((address, self.port), timeout=0.5).close()
                    break
                except OSError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"sshd did not start: {self.log()}")
                    time.sleep(0.02)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def gateway_config(self, hosts=None, user: str = TEST_USERS[0], **extra) -> str:
        """An ``eg_gateway_config.py`` body pointing the ssh resource manager at this sshd
        (``hosts=False``: leave remote_hosts to the environment)."""
        settings = {
            "remote_hosts": list(hosts or self.addresses[:1]),
            "ssh_port": self.port,
            "remote_user": user,
            "client_keys": [str(self.client_key)],
            "known_hosts": str(self.known_hosts),
            "remote_python": KERNEL_PYTHON,
            **extra,
        }
        if hosts is False:
            del settings["remote_hosts"]
        return "".join(f"c.SSHResourceManager.{k} = {v!r}\n" for k, v in settings.items())


def user_processes(user: str, pattern: str = "") -> list[str]:
    """Command lines of ``user``'s processes other than sshd's (e.g. launchers, kernels)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["username", "cmdline", "name", "status"]):
        info = proc.info
        if info["username"] != user or info["name"] == "sshd" or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        line = " ".join(info["cmdline"] or [])
        if pattern in line:
            found.append(f"{proc.pid} {line}")
    return found


async def wait_no_processes(user: str = TEST_USERS[0], pattern: str = "", timeout: float = 3.0) -> list[str]:
    """The user's non-sshd processes still there after up to ``timeout`` s (expect ``[]``)."""
    deadline = time.monotonic() + timeout
    while (left := user_processes(user, pattern)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return left


async def run_code(gw, kernel_id: str, code: str) -> dict:
    from eg_core.testing import KernelSocket

    ws = await KernelSocket.connect(gw, kernel_id)
    try:
        return await ws.execute(code)
    finally:
        await ws.close()


async def where(gw, kernel_id: str) -> tuple[str, str]:
    """(user, server address) of a running kernel, from inside it (SSH_CONNECTION's 3rd field)."""
    out = await run_code(gw, kernel_id, "import getpass, os; print(getpass.getuser(), os.environ['SSH_CONNECTION'].split()[2])")
    user, host = out["stdout"].split()
    return user, host
