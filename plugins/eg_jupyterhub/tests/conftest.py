import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hub import Hub  # noqa: E402


@pytest.fixture
async def hub(tmp_path):
    """A JupyterHub (not started yet: ``await hub.start(gateway_url)``); alice is in group staff."""
    hub = Hub(tmp_path, groups={"staff": ["alice"]})
    yield hub
    await hub.stop()


@pytest.fixture
def kernel_spec_dirs(tmp_path_factory):
    """python3, and ``staff_python``: a kernelspec only the Hub group ``staff`` may use."""
    import json
    import sys

    root = tmp_path_factory.mktemp("kernelspecs")
    spec = root / "staff_python"
    spec.mkdir()
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (staff)", "language": "python",
        "metadata": {"kernel_provisioner": {"provisioner_name": "eg-local", "config": {"authorized_groups": ["staff"]}}},
    }))
    return [str(root)]
