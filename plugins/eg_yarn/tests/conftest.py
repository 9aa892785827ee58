"""Fixtures for eg-yarn's tests: the emulated ResourceManager (a real HTTP server that really runs
the application masters), the ``spark-submit`` stand-in, kernelspecs wired to both, and gateways
configured for them."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from eg_core.testing import GatewayProcess, free_port  # noqa: E402
from yarn_emulator import Emulator, LoopThread, YarnCluster, write_hadoop_conf  # noqa: E402

import eg_yarn  # noqa: E402

HERE = Path(__file__).parent
SPARK_HOME = HERE / "spark_home"


@pytest.fixture(scope="module")
def loop_thread():
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, loop_thread):
    """The emulated cluster's state (queues 'default' 60% and 'spark' 40% with label 'gpu')."""
    c = YarnCluster(tmp_path_factory.mktemp("yarn"), proxy_users={"root": "*"})
    yield c

    async def stop():
        c.shutdown()

    loop_thread.run(stop())


@pytest.fixture(scope="module")
def rm(cluster, loop_thread):
    """The active ResourceManager endpoint."""
    emulator = Emulator(cluster, loop_thread)
    yield emulator
    emulator.stop()


@pytest.fixture
def reset(cluster, rm):
    """Controls back to normal before a test; after it, nothing may be left in the RM."""
    rm.call(_reset, cluster)
    yield cluster
    wait_for(lambda: not rm.call(cluster.live_apps), 60, lambda: f"left in the RM: {[(a.id, a.state) for a in rm.call(cluster.live_apps)]}")
    rm.call(_reset, cluster)


def _reset(cluster: YarnCluster) -> None:
    cluster.hold_accepted = set()
    cluster.stall_accepted = False
    cluster.fail_next_at_start = None
    cluster.am_expiry = None
    cluster.state_delay = 0.05


def wait_for(predicate, timeout: float, message=lambda: "condition not met") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(message())
        time.sleep(0.1)


async def async_wait_for(predicate, timeout: float, message=lambda: "condition not met") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(message())
        await asyncio.sleep(0.1)


def _kernelspec(src: Path, dst: Path, **env: str) -> None:
    shutil.copytree(src, dst, symlinks=False)
    spec = json.loads((dst / "kernel.json").read_text())
    if "SPARK_HOME" in spec.get("env", {}):
        spec["env"]["SPARK_HOME"] = str(SPARK_HOME)
    spec.setdefault("env", {}).update(env)
    (dst / "kernel.json").write_text(json.dumps(spec))


@pytest.fixture(scope="module")
def yarn_kernelspecs(tmp_path_factory) -> Path:
    """The shipped kernelspecs and the tests' own, with SPARK_HOME at the spark-submit stand-in."""
    root = tmp_path_factory.mktemp("kernels")
    for src in list(Path(eg_yarn.kernelspecs_dir()).iterdir()) + list((HERE / "kernelspecs").iterdir()):
        if (src / "kernel.json").exists():
            _kernelspec(src, root / src.name)
    unreachable = root / "yarn_rest_unreachable"
    spec = json.loads((unreachable / "kernel.json").read_text())
    spec["metadata"]["kernel_provisioner"]["config"]["yarn_endpoint"] = f"http://127.0.0.1:{free_port()}"
    (unreachable / "kernel.json").write_text(json.dumps(spec))
    return root


@pytest.fixture(scope="module")
def kernel_spec_dirs(yarn_kernelspecs) -> list[str]:
    return [str(yarn_kernelspecs)]


def gateway_env(tmp: Path, hadoop_conf: Path) -> dict[str, str]:
    return {
        "HADOOP_CONF_DIR": str(hadoop_conf),
        "SPARK_STAGING_DIR": str(tmp / "staging"),
    }


@pytest.fixture(scope="module")
def hadoop_conf(tmp_path_factory, rm) -> Path:
    return write_hadoop_conf(tmp_path_factory.mktemp("hadoop-conf"), [rm.address])


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, kernel_spec_dirs, rm, hadoop_conf):
    tmp = tmp_path_factory.mktemp("gw")
    gw = GatewayProcess(
        tmp,
        f"--YarnSettings.yarn_endpoint={rm.url}",
        "--YarnSettings.watch_interval=1",
        "--YarnSettings.allowed_queues=['default','spark']",
        "--YarnSettings.max_memory=4g",
        "--Gateway.launch_timeout=60",
        env=gateway_env(tmp, hadoop_conf),
        kernel_spec_dirs=kernel_spec_dirs,
    )
    yield gw
    gw.stop()
