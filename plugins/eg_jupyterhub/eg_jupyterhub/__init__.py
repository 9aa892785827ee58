"""eg-jupyterhub: JupyterHub users as eg's users (see README.md)."""
