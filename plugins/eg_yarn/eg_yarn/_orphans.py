"""Applications of this gateway that it does not know (a gateway killed before it could kill
them): found at startup by the ``eg_gateway=<gateway_id>`` tag, then logged or killed
(``orphans_at_startup``). A ResourceManager that does not answer is reported as unreachable."""

from __future__ import annotations

import dataclasses
import logging
import os
import re

from eg_core import EGError, orphans

from ._settings import gateway_launch, gateway_tag, settings

log = logging.getLogger("eg.yarn")
_KERNEL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _configured() -> bool:
    if settings().yarn_endpoint:
        return True
    conf = os.environ.get("YARN_CONF_DIR") or os.environ.get("HADOOP_CONF_DIR") or "/etc/hadoop/conf"
    return os.path.exists(os.path.join(conf, "yarn-site.xml"))


def kernel_of(app: dict) -> str | None:
    for text in [*str(app.get("applicationTags") or "").split(","), str(app.get("name", ""))]:
        match = _KERNEL_ID.search(text)
        if match:
            return match.group(0)
    return None


async def reconcile(known_kernel_ids) -> None:
    policy = settings().orphans_at_startup
    if policy == "ignore" or not _configured():
        return
    from ._rm import LIVE_STATES, RMClient  # requests and yarn-api-client: only with a cluster

    launch = gateway_launch()  # a slow RM must not hold the gateway's startup for long
    rm = RMClient.shared(dataclasses.replace(launch, timeout=min(launch.timeout, 10.0)))
    tag = gateway_tag()
    try:
        apps = await rm.apps(states=LIVE_STATES, application_tags=[tag])
    except EGError as exc:
        orphans.unreachable("yarn", exc.message)
        return
    known = set(known_kernel_ids)
    for app in apps:
        kid = kernel_of(app)
        if not kid or kid in known:
            continue
        if policy == "remove":
            try:
                await rm.kill(app["id"])
            except EGError as exc:
                log.warning("Could not kill YARN application %s of unknown kernel %s: %s", app["id"], kid, exc.message)
                continue
        log.warning("%s YARN application %s (%s) of kernel %s, unknown to this gateway (%s)",
                    "Killed" if policy == "remove" else "Found", app["id"], app.get("state"), kid, tag)
