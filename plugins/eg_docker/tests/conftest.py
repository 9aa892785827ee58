"""Fixtures for eg-docker's tests: a real Docker engine (started by ci/setup.sh), gateways
configured for it, and a Docker API client to look at what the gateway created.

Set ``EG_DOCKER_TEST_HOST`` to use an engine you started yourself (it must have the
``eg/kernel-py:local`` image and be a swarm manager). Nothing here skips: without an engine the
tests fail with the reason.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from eg_core.testing import GatewayProcess, KernelSocket  # noqa: F401  (re-exported for tests)
from eg_docker._client import DockerClient


HERE = Path(__file__).parent
SETUP = HERE.parent / "ci" / "setup.sh"


def _docker_alive(host: str) -> bool:
    try:
        return subprocess.run(["docker", "-H", host, "version"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def docker_engine() -> dict[str, str]:
    """``{"DOCKER_HOST", "EG_DOCKER_IMAGE", "EG_DOCKER_SWARM"}`` of a running engine."""
    if os.environ.get("EG_DOCKER_TEST_HOST"):
        yield {"DOCKER_HOST": os.environ["EG_DOCKER_TEST_HOST"], "EG_DOCKER_IMAGE": "eg/kernel-py:local", "EG_DOCKER_SWARM": "active"}
        return
    run_dir = os.environ.get("EG_DOCKER_RUN", "/tmp/eg-docker")
    already_running = _docker_alive(f"unix://{run_dir}/docker.sock")
    proc = subprocess.run(["bash", str(SETUP), "--swarm"], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        pytest.fail(f"ci/setup.sh could not provide a Docker engine (rc {proc.returncode}):\n{proc.stderr[-4000:]}", pytrace=False)
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    if not values.get("EG_DOCKER_SWARM", "").startswith("active"):
        pytest.fail(f"the engine could not become a swarm manager: {values.get('EG_DOCKER_SWARM')}", pytrace=False)
    yield values
    # Stop the engine when this session started it, and always on CI (where scripts/test.sh
    # started it just before); a developer's engine that was already up is kept.
    if (os.environ.get("CI") or not already_running) and not os.environ.get("EG_DOCKER_KEEP"):
        subprocess.run(["bash", str(SETUP), "--teardown"], capture_output=True, timeout=300)


@pytest.fixture(scope="session")
def docker_host(docker_engine) -> str:
    return docker_engine["DOCKER_HOST"]


@pytest.fixture(scope="module")
def kernel_spec_dirs() -> list[str]:
    return [str(HERE / "kernelspecs")]


def gateway_env(docker_host: str) -> dict[str, str]:
    return {"DOCKER_HOST": docker_host, "EG_RESPONSE_ADDRESS": "127.0.0.1:0"}


@pytest.fixture(scope="module")
def gateway_id() -> str:
    return f"eg-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, kernel_spec_dirs, docker_host, gateway_id):
    """One gateway per test module, on the test engine, with its own gateway id label."""
    gw = GatewayProcess(
        tmp_path_factory.mktemp("gw"),
        f"--DockerSettings.gateway_id={gateway_id}",
        "--Gateway.launch_timeout=60",
        env=gateway_env(docker_host),
        kernel_spec_dirs=kernel_spec_dirs,
    )
    yield gw
    gw.stop()


@pytest.fixture
async def docker(docker_host):
    client = DockerClient(docker_host)
    yield client
    await client.aclose()
