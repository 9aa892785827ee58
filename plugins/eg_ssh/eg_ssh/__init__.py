"""eg-ssh: the ``ssh`` resource manager of eg — kernels on remote hosts over SSH.

Install it next to eg-core (``pip install ./plugins/eg_ssh`` from the eg repository); kernelspecs name it with
``"metadata": {"kernel_provisioner": {"provisioner_name": "eg-ssh", "config": {...}}}`` (or
Enterprise Gateway's ``DistributedProcessProxy``). Settings: :class:`SSHResourceManager`.
"""

from ._settings import SSHResourceManager

__all__ = ["SSHResourceManager"]
