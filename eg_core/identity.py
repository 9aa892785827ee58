"""Who a request's token belongs to: the identity providers' answer, and the cache in front of them.

A client's token is either the gateway's own service token (compared by the core, acting for any
user) or a user's credential, which the ``eg_identify`` hook turns into an :class:`Identity`:
the builtin users file (``Gateway.users_file``), JupyterHub (``eg-jupyterhub``), OIDC/JWT
(``eg-oidc``), or any plugin. Public for plugins: :class:`Identity`,
:class:`IdentityRefused`, :class:`IdentityUnavailable` and :func:`get_json` (asking a provider's
HTTP API).

The core asks the providers once per token and keeps the answer (:class:`IdentityCache`), so a
request costs one dictionary lookup, never a round trip to a Hub or an issuer: answers are kept
for ``Gateway.identity_cache_seconds`` (or until the credential expires, if sooner), refusals
for a few seconds, at most ``MAX_ENTRIES`` of them. Requests with the same token while a lookup
is under way wait for that one lookup; other requests do not wait at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from ._runtime.errors import EGError

MAX_ENTRIES = 10_000
REFUSAL_SECONDS = 10.0


@dataclass(frozen=True)
class Identity:
    """A user as an identity provider names them.

    - ``name``: the user's name: the kernels' owner and, with ``Gateway.bind_username``, their
      ``KERNEL_USERNAME``.
    - ``groups``: the groups the provider reports (``Gateway.admin_groups``, group authorization
      and limits per group use them).
    - ``expires``: when the credential stops being valid (seconds since the epoch), if it says;
      the core forgets the answer then even if its cache time is not over.
    """

    name: str
    groups: frozenset[str] = field(default_factory=frozenset)
    expires: float | None = None


class IdentityRefused(EGError):
    """Raised by a provider for a credential that is its own but not valid (expired, signed by
    an unknown key, for another audience): a 401 whose message says why."""

    def __init__(self, message: str):
        super().__init__(message, status=401, reason="Unauthorized")


class IdentityUnavailable(EGError):
    """Raised by a provider that cannot answer now (its server is down or too slow): a 503;
    the client may try again. Not cached."""

    def __init__(self, message: str):
        super().__init__(message, status=503, reason="Service Unavailable")


Lookup = Callable[[str], Awaitable["Identity | None"]]


class IdentityCache:
    """Answers of :data:`Lookup` by token, bounded, with expiry; one lookup per token at a time.

    Tokens are kept as SHA-256 digests. Known users are kept ``ttl`` seconds (or until their
    ``expires``), unknown or refused tokens ``REFUSAL_SECONDS`` (never longer than ``ttl``);
    :class:`IdentityUnavailable` is not kept. ``clear()`` forgets everything (a reload of the
    users file, so a removed token stops working at once).
    """

    def __init__(self, lookup: Lookup, ttl: float, max_entries: int = MAX_ENTRIES):
        self.lookup = lookup
        self.ttl = ttl
        self.max_entries = max_entries
        self._answers: OrderedDict[bytes, tuple[float, Identity | EGError | None]] = OrderedDict()
        self._pending: dict[bytes, asyncio.Future] = {}

    def clear(self) -> None:
        self._answers.clear()

    async def identify(self, token: str) -> Identity | None:
        """The identity ``token`` stands for, None when no provider knows it; raises
        :class:`IdentityRefused` or :class:`IdentityUnavailable` as the provider did."""
        key = hashlib.sha256(token.encode()).digest()
        kept = self._answers.get(key)
        now = time.monotonic()
        if kept is not None:
            if kept[0] > now:
                self._answers.move_to_end(key)
                return _answer(kept[1])
            del self._answers[key]
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = asyncio.ensure_future(self._ask(key, token))
            pending.add_done_callback(lambda _f: self._pending.pop(key, None))
        return _answer(await asyncio.shield(pending))

    async def _ask(self, key: bytes, token: str) -> Identity | EGError | None:
        try:
            answer: Identity | EGError | None = await self.lookup(token)
        except IdentityUnavailable as exc:
            return exc
        except IdentityRefused as exc:
            answer = exc
        now = time.monotonic()
        if isinstance(answer, Identity):
            keep = self.ttl
            if answer.expires is not None:
                keep = min(keep, answer.expires - time.time())
        else:
            keep = min(self.ttl, REFUSAL_SECONDS)
        if keep > 0:
            self._answers[key] = (now + keep, answer)
            while len(self._answers) > self.max_entries:
                self._answers.popitem(last=False)
        return answer


def _answer(kept: Identity | EGError | None) -> Identity | None:
    if isinstance(kept, EGError):
        raise type(kept)(kept.message)
    return kept


async def get_json(url: str, what: str, *, headers: dict[str, str] | None = None, timeout: float = 5.0) -> dict[str, Any] | None:
    """GET ``url`` for an identity provider, without blocking the event loop: the JSON object it
    answers (200), or None for 401, 403 or 404 (the provider does not know the credential).
    Anything else (refused, unreachable, timed out, another status, not a JSON object) raises
    :class:`IdentityUnavailable` with the message "<what> (<why>); try again later"."""
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError

    try:
        response = await AsyncHTTPClient().fetch(
            url, headers={"Accept": "application/json", **(headers or {})},
            request_timeout=timeout, connect_timeout=timeout, raise_error=False,
        )
    except (OSError, HTTPClientError) as exc:  # refused, unreachable, timed out
        raise IdentityUnavailable(f"{what} ({getattr(exc, 'strerror', None) or exc}); try again later") from None
    if response.code in (401, 403, 404):
        return None
    if response.code != 200:
        raise IdentityUnavailable(f"{what} (HTTP {response.code}); try again later")
    try:
        body = json.loads(response.body)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise IdentityUnavailable(f"{what} (the answer from {url} is not a JSON object); try again later")
    return body
