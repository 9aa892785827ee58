"""Fixtures: a real sshd on 127.0.0.1 and 127.0.0.2 (one free port), gateways configured for it.

The root-made parts (openssh-server, the users egtest/egtest2, the kernel venv) come from
plugins/eg_ssh/ci/setup.sh, which :func:`eg_ssh.testing.ensure_setup` runs when they are missing.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from eg_ssh.testing import TEST_USERS, TestSSHD, ensure_setup, user_processes


USER, OTHER_USER = TEST_USERS
_counter = itertools.count()


@pytest.fixture(scope="session")
def sshd():
    ensure_setup()
    server = TestSSHD().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def kernel_spec_dirs():
    return [str(Path(__file__).parent / "kernelspecs")]


@pytest.fixture
def ssh_gateway(gateway_factory, sshd, tmp_path, kernel_spec_dirs):
    """Start a gateway whose ssh resource manager points at the test sshd.

    ``hosts``, ``user`` and any other ``SSHResourceManager`` trait are keyword arguments;
    ``env`` adds to the gateway's environment, ``kernel_spec_dirs`` to the module's.
    """

    def start(*args, env=None, hosts=None, user=USER, kernel_spec_dirs=(), **settings):
        config_dir = tmp_path / f"config-{next(_counter)}"
        config_dir.mkdir()
        (config_dir / "eg_gateway_config.py").write_text(sshd.gateway_config(hosts=hosts, user=user, **settings))
        full_env = {"JUPYTER_CONFIG_DIR": str(config_dir), "EG_RESPONSE_PORT": "0", **(env or {})}
        return gateway_factory(*args, env=full_env, kernel_spec_dirs=[*module_dirs, *kernel_spec_dirs])

    module_dirs = list(kernel_spec_dirs)
    return start


@pytest.fixture
def stranger_key(tmp_path) -> str:
    """A client key no test user authorizes (for logins that must succeed without keys)."""
    import asyncssh

    path = tmp_path / "not_authorized_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(path))
    path.chmod(0o600)
    return str(path)


@pytest.fixture(autouse=True)
def no_leftover_kernels(request):
    """Every test must leave no launcher or kernel process of the test users behind."""
    yield
    if "sshd" not in request.fixturenames:
        return
    deadline = time.monotonic() + 10
    while (left := user_processes(USER) + user_processes(OTHER_USER)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes left on the remote host: {left}"
