"""Enterprise Gateway's webhook protocol, spoken with httpx (imported with the first request:
a gateway with no ``webhook_url`` never loads it):

- save: ``POST {url}/{kernel_id}`` with ``{kernel_id: record}``;
- delete: ``DELETE {url}`` with the JSON list ``[kernel_id]``;
- load one: ``GET {url}/{kernel_id}`` answering ``{"kernel_session": record}`` (404 or empty: none);
- load all: ``GET {url}`` answering ``[{"kernel_session": record}, ...]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._settings import WebhookSessionStore

if TYPE_CHECKING:
    import httpx


class WebhookError(Exception):
    """The webhook failed or answered with an error (the gateway logs it)."""


_client: httpx.AsyncClient | None = None


def configured() -> bool:
    return bool(WebhookSessionStore.instance().webhook_url)


def _http() -> httpx.AsyncClient:
    global _client
    if _client is None:
        import httpx

        settings = WebhookSessionStore.instance()
        auth = None
        if settings.auth_type and settings.webhook_username:
            auth_class = httpx.DigestAuth if settings.auth_type == "digest" else httpx.BasicAuth
            auth = auth_class(settings.webhook_username, settings.webhook_password)
        _client = httpx.AsyncClient(auth=auth, timeout=settings.timeout)
    return _client


async def close() -> None:
    global _client
    if _client is not None:
        await _client.aclose()
        _client = None


async def _call(method: str, path: str = "", **kwargs: Any) -> httpx.Response:
    import httpx

    url = WebhookSessionStore.instance().webhook_url.rstrip("/") + path
    try:
        response = await _http().request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise WebhookError(f"session webhook {method} {url} failed: {exc or type(exc).__name__}") from exc
    if response.status_code >= 400 and response.status_code != 404:
        raise WebhookError(f"session webhook {method} {url} answered {response.status_code} {response.reason_phrase}")
    return response


async def save(record: dict[str, Any]) -> None:
    kernel_id = record["kernel_id"]
    await _call("POST", f"/{kernel_id}", json={kernel_id: record})


async def delete(kernel_id: str) -> None:
    await _call("DELETE", json=[kernel_id])


def _session(item: Any) -> dict[str, Any] | None:
    session = item.get("kernel_session") if isinstance(item, dict) else None
    return session if isinstance(session, dict) else None


async def load(kernel_id: str) -> dict[str, Any] | None:
    response = await _call("GET", f"/{kernel_id}")
    if response.status_code == 404 or not response.content:
        return None
    return _session(response.json())


async def load_all() -> list[dict[str, Any]]:
    response = await _call("GET")
    if response.status_code == 404 or not response.content:
        return []
    items = response.json()
    return [s for item in (items if isinstance(items, list) else []) if (s := _session(item)) is not None]
