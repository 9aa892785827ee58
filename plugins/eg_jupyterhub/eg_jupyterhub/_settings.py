"""Where the Hub is, and how eg reads a user's groups from it."""

from __future__ import annotations

from traitlets import Float, Unicode
from traitlets.config import SingletonConfigurable

from eg_core.config import EnvDefaults


class JupyterHubIdentity(EnvDefaults, SingletonConfigurable):
    """JupyterHub as identity provider: a client's token is asked of the Hub's REST API (``GET
    <hub_api_url>/user``), and its user owns the kernels it starts. Off while hub_api_url is
    empty."""

    hub_api_url = Unicode(
        "", config=True,
        help="The Hub's API URL, e.g. http://hub:8081/hub/api (JUPYTERHUB_API_URL when eg runs as a Hub service).",
    ).tag(env=("EG_JUPYTERHUB_API_URL", "JUPYTERHUB_API_URL"), example="http://127.0.0.1:8081/hub/api")
    api_token = Unicode(
        "", config=True,
        help="eg's own Hub API token (a Hub service's, with the scope read:users:groups), to read a user's groups "
        "when their token may not; without it, groups are what the user's token may read.",
    ).tag(env=("EG_JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_TOKEN"))
    request_timeout = Float(
        5.0, config=True, help="Seconds a question to the Hub may take; a Hub that does not answer gets clients a 503.",
    ).tag(env=("EG_JUPYTERHUB_TIMEOUT",))
