"""eg-yarn: Jupyter kernels as Hadoop YARN applications, for the eg gateway.

Install it next to eg-core (``pip install eg-yarn``; ``eg-yarn[kerberos]`` for a Kerberized
ResourceManager). Enterprise Gateway's ``YarnClusterProcessProxy`` kernelspecs work unchanged;
the kernelspecs in :func:`kernelspecs_dir` show both submission modes. Gateway-wide settings are
``--YarnSettings.*`` (see ``eg-gateway --help-all``).
"""

from __future__ import annotations

from pathlib import Path

from ._settings import YarnSettings

__version__ = "0.1.0"


def kernelspecs_dir() -> str:
    """The directory of the kernelspecs this package ships."""
    return str(Path(__file__).parent / "kernelspecs")


__all__ = ["YarnSettings", "kernelspecs_dir", "__version__"]
