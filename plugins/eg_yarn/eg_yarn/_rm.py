"""The ResourceManager, through yarn-api-client, off the event loop.

yarn-api-client is synchronous (requests). Every call runs in this module's own thread pool, so a
slow or unreachable RM never blocks the gateway's loop nor starves asyncio's default executor.
:class:`RMClient` keeps one ``ResourceManager`` per kernel launch settings; when the RM it found
active stops answering, it looks for the active one again among the configured endpoints (RM HA
failover) and retries once.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import requests

from eg_core import EGError

from ._settings import Launch

log = logging.getLogger("eg.yarn")
_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="eg-yarn-rm")
FINAL_STATES = frozenset({"FINISHED", "FAILED", "KILLED"})
LIVE_STATES = ["NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING"]

for noisy in ("yarn_api_client", "urllib3.connectionpool"):
    logging.getLogger(noisy).setLevel(logging.WARNING)


class RMUnavailable(EGError):
    """No ResourceManager answered (503): the message names the endpoints and the error."""

    status = 503
    reason = "YARN ResourceManager Unavailable"


class RMError(EGError):
    """The ResourceManager answered with an error (its message included)."""

    status = 502
    reason = "YARN ResourceManager Error"


def _auth(launch: Launch):
    if launch.kerberos:
        try:
            from requests_kerberos import DISABLED, OPTIONAL, REQUIRED, HTTPKerberosAuth
        except ImportError:
            raise EGError(
                "yarn_endpoint_security_enabled needs Kerberos support: pip install 'eg-yarn[kerberos]'",
                reason="Kerberos Support Not Installed",
            ) from None
        mutual = {"REQUIRED": REQUIRED, "OPTIONAL": OPTIONAL, "DISABLED": DISABLED}[launch.mutual_authentication]
        return HTTPKerberosAuth(mutual_authentication=mutual)
    return _pseudo_auth(launch.user, launch.verify, launch.timeout)


def _pseudo_auth(user: str, verify: bool | str, timeout: float):
    """yarn-api-client's ``SimpleAuth`` (Hadoop pseudo authentication: ``user.name`` once, then
    the ``hadoop.auth`` cookie), with the CA bundle and timeout on its handshake too (the
    library's own handshake ignores ``verify``)."""
    from yarn_api_client.auth import SimpleAuth

    class PseudoAuth(SimpleAuth):
        def __call__(self, request):
            if not self.auth_done:
                with requests.Session() as session:
                    session.get(request.url, params={"user.name": self.username}, verify=verify, timeout=timeout).raise_for_status()
                    self.auth_token = session.cookies.get_dict()["hadoop.auth"]
                self.auth_done = True
            return super().__call__(request)

    return PseudoAuth(user)


def _pin_ca_bundle(session: requests.Session, bundle: str) -> None:
    """Make the configured CA bundle win: requests lets ``REQUESTS_CA_BUNDLE`` /
    ``CURL_CA_BUNDLE`` in the environment override a session's ``verify``."""
    merge = session.merge_environment_settings

    def merged(*args, **kwargs):
        settings = merge(*args, **kwargs)
        settings["verify"] = bundle
        return settings

    session.merge_environment_settings = merged


def _where(launch: Launch) -> str:
    return ", ".join(launch.endpoints) if launch.endpoints else "the RM(s) of $HADOOP_CONF_DIR/yarn-site.xml"


class RMClient:
    """ResourceManager access for one set of launch settings (endpoints, user, auth); methods are
    async. :meth:`shared` keeps one per settings, so kernels of the same user and kernelspec share
    the active-RM lookup and the authenticated session."""

    _shared: dict[Launch, "RMClient"] = {}

    @classmethod
    def shared(cls, launch: Launch) -> "RMClient":
        client = cls._shared.get(launch)
        if client is None:
            if len(cls._shared) >= 256:
                cls._shared.clear()
            client = cls._shared[launch] = cls(launch)
        return client

    def __init__(self, launch: Launch):
        self.launch = launch
        self._rm = None
        self.endpoint: str | None = None

    def _connect(self):
        from yarn_api_client.resource_manager import ResourceManager

        try:
            rm = ResourceManager(
                service_endpoints=list(self.launch.endpoints) or None, timeout=self.launch.timeout,
                auth=_auth(self.launch), verify=self.launch.verify,
            )
        except EGError:
            raise
        except Exception as exc:  # yarn-api-client raises a bare Exception("No active RMs found")
            raise RMUnavailable(f"no active YARN ResourceManager at {_where(self.launch)}: {self._probe() or exc}") from None
        if rm.service_uri is None:
            raise RMUnavailable(f"no YARN ResourceManager is configured ({_where(self.launch)})")
        if isinstance(self.launch.verify, str):
            _pin_ca_bundle(rm.session, self.launch.verify)
        self._rm = rm
        self.endpoint = rm.get_active_endpoint()
        return rm

    def _probe(self) -> str:
        """Why each configured endpoint is not usable (yarn-api-client only logs it)."""
        reasons = []
        for endpoint in self.launch.endpoints:
            try:
                response = requests.get(endpoint.rstrip("/") + "/cluster", timeout=self.launch.timeout,
                                        auth=_auth(self.launch), verify=self.launch.verify, allow_redirects=False)
                reasons.append(f"{endpoint}: HTTP {response.status_code} {response.text[:200].strip()}")
            except requests.RequestException as exc:
                reasons.append(f"{endpoint}: {type(exc).__name__}: {exc}")
        return "; ".join(reasons)

    def _call(self, fn: Callable[[Any], Any]):
        from yarn_api_client.errors import APIError

        for attempt in (1, 2):
            rm = self._rm or self._connect()
            try:
                return fn(rm)
            except requests.RequestException as exc:
                self._rm = None
                if attempt == 2:
                    raise RMUnavailable(f"YARN ResourceManager {self.endpoint} is unreachable: {exc}") from None
                log.warning("YARN ResourceManager %s did not answer (%s); looking for the active one", self.endpoint, exc)
            except APIError as exc:
                raise RMError(f"YARN ResourceManager {self.endpoint}: {exc}") from None

    async def call(self, fn: Callable[[Any], Any]):
        """Run ``fn(resource_manager)`` in the RM thread pool; returns its ``.data``."""
        result = await asyncio.get_running_loop().run_in_executor(_pool, self._call, fn)
        return getattr(result, "data", result)

    def _params(self) -> dict[str, str]:
        return {"doAs": self.launch.user} if self.launch.kerberos and self.launch.impersonate else {}

    # -- the calls eg-yarn makes ---------------------------------------------------------------

    async def scheduler(self) -> dict:
        return await self.call(lambda rm: rm.cluster_scheduler())

    async def app(self, app_id: str) -> dict:
        return (await self.call(lambda rm: rm.cluster_application(app_id)))["app"]

    async def apps(self, **filters) -> list[dict]:
        data = await self.call(lambda rm: rm.cluster_applications(**filters))
        return ((data or {}).get("apps") or {}).get("app") or []

    async def new_application(self) -> dict:
        return await self.call(lambda rm: rm.request("/ws/v1/cluster/apps/new-application", "POST", params=self._params()))

    async def submit(self, body: dict) -> None:
        await self.call(lambda rm: rm.request("/ws/v1/cluster/apps", "POST", json=body, params=self._params()))

    async def kill(self, app_id: str) -> str:
        data = await self.call(lambda rm: rm.request(
            f"/ws/v1/cluster/apps/{app_id}/state", "PUT", json={"state": "KILLED"}, params=self._params()
        ))
        return (data or {}).get("state", "")
