"""The kernel runtime: the registry of kernels, the launch sequence through the resource
manager's hooks, the jupyter_client adapter, the channels, the plugin manager and persistence.
Internal: plugins use the public kit (see :mod:`eg_core`)."""
