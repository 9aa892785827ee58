"""Watching running YARN kernels without a query per kernel.

One :class:`eg_core.poller.StatusPoller` per ResourceManager (and identity) asks for the live
applications tagged ``eg_gateway=<gateway_id>`` in one query for every running kernel, backing
off from 0.1 s to ``watch_interval``; :func:`wake` (a kill or shutdown request was just sent)
makes it ask at once. A watched application the list does not hold (it has ended, or a
spark-submit whose options set other tags) is then asked about alone, for its final state.
"""

from __future__ import annotations

import dataclasses

from eg_core.poller import StatusPoller

from ._rm import FINAL_STATES, LIVE_STATES, RMClient, RMError
from ._settings import Launch, gateway_tag, settings

FIRST_WAIT = 0.1


def _access(launch: Launch) -> Launch:
    """The part of a launch that decides which RM is asked and as whom: kernels that differ only
    in placement or resources share one poller."""
    return dataclasses.replace(launch, submission="", queue="", node_label="", driver_memory_mb=0,
                               executor_memory_mb=0, legacy_launcher=False)


def poller(launch: Launch) -> StatusPoller:
    """The poller of ``launch``'s ResourceManager: ``{application id: its report}``."""
    access = _access(launch)

    async def applications(app_ids: list[str]) -> dict[str, dict]:
        rm = RMClient.shared(access)
        found = {app["id"]: app for app in await rm.apps(states=LIVE_STATES, application_tags=[gateway_tag()])}
        for app_id in app_ids:
            if app_id not in found:
                try:
                    found[app_id] = await rm.app(app_id)
                except RMError as exc:
                    if "status: 404" not in exc.message:  # 404: the RM does not know it (None)
                        raise
        return found

    where = ", ".join(access.endpoints) or "the configured ResourceManager"
    return StatusPoller.shared(("yarn", access), applications, settings().watch_interval,
                               f"yarn applications at {where}", start=FIRST_WAIT)


async def ended(launch: Launch, app_id: str) -> dict | None:
    """Wait until the application is in a final state; returns its report (``None``: the
    ResourceManager no longer knows it)."""
    return await poller(launch).wait_until(app_id, lambda app: app is None or app.get("state") in FINAL_STATES)


def wake(launch: Launch) -> None:
    """Ask the ResourceManager at once, then back off again."""
    poller(launch).wake()
