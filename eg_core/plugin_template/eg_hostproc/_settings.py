"""The ``hostproc`` resource manager's settings: one traitlets class.

Each setting is read from the command line (``--HostProcSettings.python=...``), the config
file, or the environment variable it is tagged with; ``kernelspec=True`` lets a kernelspec's
``config`` override it for its kernels (validated by the trait: a bad value is a 400).
"""

from __future__ import annotations

import sys

from traitlets import Float, Unicode
from traitlets.config import SingletonConfigurable

from eg_core.config import EnvDefaults


class HostProcSettings(EnvDefaults, SingletonConfigurable):
    """Settings of the ``hostproc`` resource manager."""

    python = Unicode(
        sys.executable, config=True,
        help="Python (with ipykernel) that runs eg's launcher: replaces 'python' as the argv's first word.",
    ).tag(env="EG_HOSTPROC_PYTHON", kernelspec=True)
    kill_wait = Float(
        10.0, min=0.0, config=True, help="Seconds to wait for a killed kernel's processes to end.",
    ).tag(env="EG_HOSTPROC_KILL_WAIT", kernelspec=True)
