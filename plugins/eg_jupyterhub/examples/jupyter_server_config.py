# A JupyterHub user's single-user server talks to eg with the user's own Hub API token, so eg
# knows whose kernels it starts. Put this in the single-user servers' Jupyter config (here:
# c.Spawner.environment = {"JUPYTER_GATEWAY_URL": "http://eg:8888", "JUPYTER_CONFIG_DIR": <this dir>}).
import os

c = get_config()  # noqa: F821
c.GatewayClient.auth_token = os.environ["JUPYTERHUB_API_TOKEN"]
