"""The launch key is in nothing the backend shows other users. Here the backend is this host:
command lines (``ps``) and the launcher's environment; a real backend adds what it shows (a
job's details, an inspect, a report). The key file is gone once the kernel is up."""

import subprocess
import tempfile
from pathlib import Path

from eg_core.testing import places_with, processes_of_kernel, store_args, stored_launch_key


async def test_launch_key_is_in_nothing_the_backend_shows(gateway_factory, tmp_path):
    gw = gateway_factory(*store_args(tmp_path / "store"))
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_hostproc"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        key = stored_launch_key(tmp_path / "store", kid)  # the key the gateway holds
        pids = [line.split()[0] for line in await processes_of_kernel(kid)]
        shown = {"ps": subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout,
                 **{f"environ of {pid}": Path(f"/proc/{pid}/environ").read_bytes() for pid in pids}}
        assert pids and places_with(key, **shown) == []
        assert not list(Path(tempfile.gettempdir()).glob(f"eg-key-{kid}-*")), "the key file is gone once the kernel is up"
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
