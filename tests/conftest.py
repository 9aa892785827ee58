from pathlib import Path

import pytest

pytest_plugins = ["eg_core.testing"]


@pytest.fixture(scope="module")
def kernel_spec_dirs():
    return [str(Path(__file__).parent / "kernelspecs")]
