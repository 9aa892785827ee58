"""Container settings from the kernelspec and (where allowed) the request, seen in the real
container; bad values refused with 4xx before anything is created."""

from __future__ import annotations

import json
import uuid

import pytest

from eg_core.testing import KernelSocket

pytestmark = pytest.mark.timeout(240)


async def test_settings_reach_the_container(gateway, http, docker, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "data.txt").write_text("mounted from the host")
    shared.chmod(0o777)
    env = {
        "KERNEL_MEMORY": "300m",  # overrides the kernelspec's 256m: this kernelspec allows it
        "KERNEL_VOLUMES": json.dumps([f"{shared}:/work/data"]),
        "KERNEL_WORKING_DIR": "/work/data",
        "KERNEL_LABELS": json.dumps({"project": "apollo"}),
        "KERNEL_UID": " 1000 ",  # normalized like Enterprise Gateway does
        "KERNEL_VAR": "from-the-request",
    }
    r = await http.post("/api/kernels", json={"name": "docker_settings", "env": env})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    try:
        [container] = await docker.containers({"kernel_id": kid})
        info = await docker.container_inspect(container["Id"])
        host = info["HostConfig"]
        assert host["Memory"] == 300 * 1024 * 1024
        assert host["NanoCpus"] == 500_000_000
        assert host["Init"] is True
        assert [(m["Source"], m["Destination"]) for m in info["Mounts"]] == [(str(shared), "/work/data")]
        assert info["Config"]["WorkingDir"] == "/work/data"
        assert info["Config"]["User"] == "1000:100"
        labels = info["Config"]["Labels"]
        assert labels["team"] == "data-science" and labels["project"] == "apollo" and labels["kernel_id"] == kid

        ws = await KernelSocket.connect(gateway, kid)
        out = await ws.execute(
            "import os, pathlib\n"
            "print(os.getcwd())\n"
            "print(pathlib.Path('data.txt').read_text())\n"
            "print(os.environ['SPEC_VAR'], os.environ['KERNEL_VAR'])\n"
            "cg = pathlib.Path('/sys/fs/cgroup/memory/memory.limit_in_bytes')\n"
            "cg = cg if cg.exists() else pathlib.Path('/sys/fs/cgroup/memory.max')\n"
            "print(cg.read_text().strip())\n"
        )
        assert out["reply"]["status"] == "ok", out
        lines = out["stdout"].splitlines()
        assert lines[0] == "/work/data"
        assert lines[1] == "mounted from the host"
        assert lines[2] == "from-the-kernelspec from-the-request"
        assert int(lines[3]) == 300 * 1024 * 1024  # enforced by the kernel's cgroup
        await ws.close()
    finally:
        await http.delete(f"/api/kernels/{kid}")
    assert await docker.containers({"kernel_id": kid}) == []


async def test_working_dir_from_jupyter_server_is_ignored_without_mirroring(http, docker):
    """Jupyter Server sends KERNEL_WORKING_DIR with every kernel; with mirror_working_dirs off the
    kernel starts anyway in the image's working dir (Enterprise Gateway's behaviour)."""
    r = await http.post("/api/kernels", json={"name": "python_docker", "env": {"KERNEL_WORKING_DIR": "/home/alice/notebooks"}})
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    try:
        [container] = await docker.containers({"kernel_id": kid})
        info = await docker.container_inspect(container["Id"])
        assert info["Config"]["WorkingDir"] != "/home/alice/notebooks"
        assert not any(e.startswith("KERNEL_WORKING_DIR=") for e in info["Config"]["Env"])
    finally:
        await http.delete(f"/api/kernels/{kid}")


BAD_REQUESTS = [
    # (kernelspec, env, status, words in the message)
    ("python_docker", {"KERNEL_UID": "0"}, 403, "UID value of '0' has been denied"),
    ("python_docker", {"KERNEL_UID": "00"}, 403, "UID value of '0' has been denied"),
    ("python_docker", {"KERNEL_GID": "+0"}, 403, "GID value of '0' has been denied"),
    ("python_docker", {"KERNEL_UID": "-5"}, 403, "not an integer"),
    ("python_docker", {"KERNEL_GID": "4294967296"}, 403, "not an integer"),
    ("python_docker", {"KERNEL_UID": "root"}, 403, "not an integer"),
    ("python_docker", {"KERNEL_MEMORY": "lots"}, 400, "KERNEL_MEMORY must be a size"),
    ("python_docker", {"KERNEL_MEMORY": "1m"}, 400, "minimum"),
    ("python_docker", {"KERNEL_CPUS": "-1"}, 400, "KERNEL_CPUS must be between"),
    ("python_docker", {"KERNEL_GPUS": "many"}, 400, "KERNEL_GPUS must be"),
    ("python_docker", {"KERNEL_IMAGE": "evil/image:latest"}, 403, "KERNEL_IMAGE may not be set"),
    ("python_docker", {"KERNEL_VOLUMES": '["/:/host"]'}, 403, "KERNEL_VOLUMES may not be set"),
    ("python_docker", {"KERNEL_NETWORK": "bridge"}, 403, "KERNEL_NETWORK may not be set"),
    ("docker_settings", {"KERNEL_VOLUMES": '["relative/path:/data"]'}, 400, "volume name"),
    ("docker_settings", {"KERNEL_VOLUMES": '["/tmp:data"]'}, 400, "must be an absolute path"),
    ("docker_settings", {"KERNEL_VOLUMES": "[not json"}, 400, "volumes must be a JSON list"),
    ("docker_settings", {"KERNEL_WORKING_DIR": "relative"}, 400, "working dir"),
    ("docker_settings", {"KERNEL_LABELS": '{"kernel_id": "forged"}'}, 400, "cannot be overridden"),
    ("docker_settings", {"KERNEL_VOLUMES": '["/no/such/host/dir:/data"]'}, 400, "bind source path does not exist"),
    ("docker_bad_network", {}, 400, "network 'no-such-network' does not exist"),
]


@pytest.mark.parametrize("name,env,status,words", BAD_REQUESTS, ids=[f"{n}-{list(e.items())[0] if e else 'network'}" for n, e, *_ in BAD_REQUESTS])
async def test_bad_values_refused_before_creating_anything(http, docker, name, env, status, words):
    kid = str(uuid.uuid4())
    r = await http.post("/api/kernels", json={"name": name, "env": {**env, "KERNEL_ID": kid}})
    assert r.status_code == status, r.text
    assert words in r.json()["message"], r.json()
    assert await docker.containers({"kernel_id": kid}) == []
    r = await http.get(f"/api/kernels/{kid}")
    assert r.status_code == 404
