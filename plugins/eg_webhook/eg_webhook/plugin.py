"""The ``webhook_store`` plugin: the session store hooks answered through a webhook when
``WebhookSessionStore.webhook_url`` is set (registered after the builtin file store, so it
answers first); with no URL every hook returns None and the file store answers."""

from __future__ import annotations

from eg_core import hookimpl

from . import _store
from ._settings import WebhookSessionStore


@hookimpl
def eg_configurables():
    return [WebhookSessionStore]


@hookimpl
async def eg_store_save(record):
    if _store.configured():
        await _store.save(record)
        return True
    return None


@hookimpl
async def eg_store_delete(kernel_id):
    if _store.configured():
        await _store.delete(kernel_id)
        return True
    return None


@hookimpl
async def eg_store_load(kernel_id):
    return await _store.load(kernel_id) if _store.configured() else None


@hookimpl
async def eg_store_load_all():
    return await _store.load_all() if _store.configured() else None


@hookimpl
async def eg_shutdown():
    await _store.close()
