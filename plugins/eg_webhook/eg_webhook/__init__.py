"""eg-webhook: a session store plugin for eg that keeps kernel sessions behind a webhook, with
Enterprise Gateway's ``WebhookKernelSessionManager`` protocol (see README.md)."""

from ._settings import WebhookSessionStore

__all__ = ["WebhookSessionStore"]
