from pathlib import Path

import pytest

@pytest.fixture(scope="module")
def kernel_spec_dirs():
    return [str(Path(__file__).parent / "kernelspecs")]
