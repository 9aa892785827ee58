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


# Sync hook functions: a firstresult hook stops at the first answer that is not None, and a
# coroutine is one, so without a webhook they must return None itself (the file store answers).


@hookimpl
def eg_store_save(record):
    return _answered(_store.save(record)) if _store.configured() else None


@hookimpl
def eg_store_delete(kernel_id):
    return _answered(_store.delete(kernel_id)) if _store.configured() else None


@hookimpl
def eg_store_load(kernel_id):
    return _store.load(kernel_id) if _store.configured() else None


@hookimpl
def eg_store_load_all():
    return _store.load_all() if _store.configured() else None


async def _answered(call) -> bool:
    await call
    return True


@hookimpl
async def eg_shutdown():
    await _store.close()
