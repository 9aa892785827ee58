"""The ``jupyterhub`` plugin: JupyterHub API tokens as eg's per-user credentials, once
``JupyterHubIdentity.hub_api_url`` is set (without it every hook declines)."""

from __future__ import annotations

from eg_core import hookimpl


from ._settings import JupyterHubIdentity


@hookimpl
def eg_configurables():
    return [JupyterHubIdentity]


@hookimpl
def eg_identify(token):
    settings = JupyterHubIdentity.instance()
    if not settings.hub_api_url:
        return None
    from . import _hub

    return _hub.identify(settings, token)


@hookimpl
async def eg_doctor(kernels):
    settings = JupyterHubIdentity.instance()
    if not settings.hub_api_url:
        return None
    from . import _hub

    return [await _hub.check(settings)]
