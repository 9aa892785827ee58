"""The image pull of a pod kernel as a phase of its own, on the real cluster with a real registry.

A ``docker-registry`` (Debian's build of the distribution registry, installed by ci/setup.sh)
serves the kernel image on 127.0.0.1, pushed there by the node's engine; the kubelet pulls it
through a proxy of the test's that holds each connection for a few seconds, so the pull takes
longer than the launch timeout. The pull shows as ``pulling``/``pulled`` progress events, the
launch timeout does not run meanwhile, and a pull longer than ``image_pull_timeout`` fails the
launch in phase ``image_pull``, naming the image. ``eg-k8s-prepull`` pulls an image on every
node through the kubelet, and ``eg-gateway doctor`` says which nodes lack which image before.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from eg_core.testing import GatewayProcess, free_port, run_doctor

from k8s_helpers import gateway_args

pytestmark = pytest.mark.timeout(600)
HOLD_SECONDS = 12.0  # each registry connection waits this long: longer than the launch timeout
LAUNCH_TIMEOUT = 8


def docker(cluster, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True,
                          env={**os.environ, "DOCKER_HOST": cluster["DOCKER_HOST"]}, timeout=600)
    assert proc.returncode == 0, f"docker {' '.join(args)}: {proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def registry(cluster, tmp_path_factory):
    """``127.0.0.1:<port>`` of a docker-registry whose storage outlives the session (under the
    cluster's run dir), so the kernel image's layers are pushed once."""
    port = free_port()
    storage = Path(os.environ.get("EG_K8S_RUN", "/tmp/eg-k8s")) / "registry"
    storage.mkdir(exist_ok=True)
    config = tmp_path_factory.mktemp("registry") / "config.yml"
    config.write_text(json.dumps({
        "version": 0.1, "log": {"level": "error"}, "storage": {"filesystem": {"rootdirectory": str(storage)}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }))
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                time.sleep(0.05)  # nothing to wait on but the port
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture
def image(cluster, registry):
    """A new image in the registry, not on the node: the kubelet must pull it. It is the kernel
    image plus a label, an image of its own: the node's status lists at most 5 names per image,
    and the kernel image's own names would crowd a new tag of it out."""
    tags = []

    def push() -> str:
        mark = uuid.uuid4().hex[:8]
        tag = f"{registry}/eg/kernel-py:pull-{mark}"
        docker(cluster, "build", "-q", "-t", tag, "-", stdin=f"FROM {cluster['EG_K8S_IMAGE']}\nLABEL eg.pull-test={mark}\n")
        docker(cluster, "push", tag)
        docker(cluster, "rmi", tag)  # the layers stay, as the kernel image's
        tags.append(tag)
        return tag

    yield push
    for tag in tags:  # what the kubelet pulled
        subprocess.run(["docker", "rmi", tag], capture_output=True, env={**os.environ, "DOCKER_HOST": cluster["DOCKER_HOST"]})


class SlowProxy:
    """A TCP proxy to ``target`` that holds each new connection ``hold`` seconds first."""

    def __init__(self, target: str, hold: float):
        self.host, port = target.rsplit(":", 1)
        self.port, self.hold = int(port), hold

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.address = f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def _serve(self, reader, writer):
        await asyncio.sleep(self.hold)  # the slow registry itself
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)


def pull_spec(root: Path, name: str, image: str, pull_limit: float) -> None:
    spec = root / name
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(json.dumps({
        "display_name": name, "language": "python", "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "metadata": {"kernel_provisioner": {"provisioner_name": "eg-k8s", "config": {"image_name": image, "image_pull_timeout": pull_limit}}},
    }))


async def test_a_pull_longer_than_the_launch_timeout_is_its_own_phase(tmp_path, cluster, namespace, registry, image):
    async with SlowProxy(registry, HOLD_SECONDS) as proxy:
        slow = image().replace(registry, proxy.address, 1)
        short = image().replace(registry, proxy.address, 1)
        pull_spec(tmp_path / "specs", "k8s_pull", slow, 120)
        pull_spec(tmp_path / "specs", "k8s_pull_short", short, 2)
        gw = GatewayProcess(
            tmp_path, *gateway_args(cluster, namespace, f"eg-pull-{uuid.uuid4().hex[:6]}"),
            kernel_spec_dirs=[str(tmp_path / "specs")],
        )
        try:
            async with gw.client() as http:
                r = await http.post("/api/kernels", json={"name": "k8s_pull", "env": {"KERNEL_LAUNCH_TIMEOUT": str(LAUNCH_TIMEOUT)}})
                assert r.status_code == 201, f"{r.text}\n{gw.output()[-3000:]}"
                kid = r.json()["id"]
                events = (await http.get(f"/api/kernels/{kid}/events")).json()["events"]
                steps = [e["details"] for e in events if e["event"] == "progress"]
                names = [s["step"] for s in steps]
                assert names.index("pulling") < names.index("pulled") < names.index("kernel_info"), names
                pulling, pulled = steps[names.index("pulling")], steps[names.index("pulled")]
                assert pulling["image"] == slow and pulling["limit"] == 120
                assert pulled["seconds"] > LAUNCH_TIMEOUT  # held by the proxy: the launch timeout did not run
                assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204

                failed_id = str(uuid.uuid4())
                r = await http.post("/api/kernels", json={"name": "k8s_pull_short", "env": {"KERNEL_ID": failed_id, "KERNEL_LAUNCH_TIMEOUT": str(LAUNCH_TIMEOUT)}})
                assert r.status_code == 502, r.text
                assert f"pulling image {short} took longer than image_pull_timeout (2s)" in r.json()["message"], r.text
                failed = (await http.get(f"/api/kernels/{failed_id}/events")).json()["events"][-1]
                assert failed["event"] == "launch_failed" and failed["details"]["phase"] == "image_pull", failed
        finally:
            gw.stop()


def wait_until_node_holds(core, node: str, image: str, timeout: int = 120) -> None:
    """Until the node's status lists ``image`` (a watch on the node: the kubelet reports its
    images with its status, every few seconds)."""
    from kubernetes import watch

    stream = watch.Watch()
    for event in stream.stream(core.list_node, field_selector=f"metadata.name={node}", timeout_seconds=timeout):
        if any(image in (entry.names or []) for entry in event["object"].status.images or []):
            stream.stop()
            return
    raise AssertionError(f"the node never listed the pulled image within {timeout} s")


async def test_prepull_pulls_on_every_node_through_the_kubelet_and_doctor_names_what_lacks(tmp_path, cluster, core, namespace, image):
    tag = image()
    pull_spec(tmp_path / "specs", "k8s_prepulled", tag, 60)
    env = {"EG_DISABLED_PLUGINS": "ssh,slurm,docker,yarn", "KUBECONFIG": cluster["KUBECONFIG"], "EG_ALLOWED_KERNELS": "k8s_prepulled",
           "EG_NAMESPACE": namespace}
    node = cluster["EG_K8S_NODE"]
    result = run_doctor(env=env, kernel_spec_dirs=[str(tmp_path / "specs")])
    line = next(line for line in result.stdout.splitlines() if "images on nodes" in line)
    assert line.startswith(f"FAIL  k8s: images on nodes: node {node} lacks {tag}"), result.stdout
    assert f"; fix: eg-k8s-prepull --namespace {namespace} {tag}" in line

    proc = subprocess.run(
        [sys.executable, "-m", "eg_k8s.cli", "--kubeconfig", cluster["KUBECONFIG"], "--namespace", namespace, tag],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0 and proc.stdout == f"pulled\t{node}\t{tag}\n", proc.stdout + proc.stderr
    pods = await asyncio.to_thread(core.list_namespaced_pod, namespace, label_selector="eg.jupyter.org/prepull")
    assert [p.metadata.name for p in pods.items if not p.metadata.deletion_timestamp] == []
    await asyncio.to_thread(wait_until_node_holds, core, node, tag)
    result = run_doctor(env=env, kernel_spec_dirs=[str(tmp_path / "specs")])
    assert f"ok    k8s: images on nodes: every node has {tag}" in result.stdout, result.stdout
