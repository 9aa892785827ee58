"""The webhook store's settings (Enterprise Gateway's names and variables)."""

from __future__ import annotations

from traitlets import CaselessStrEnum, Float, Unicode
from traitlets.config import SingletonConfigurable

from eg_core.config import EnvDefaults


class WebhookSessionStore(EnvDefaults, SingletonConfigurable):
    """Where kernel sessions are kept when availability_mode is set and webhook_url is: a web
    service answering Enterprise Gateway's webhook protocol. Without webhook_url the plugin
    stays out of the way (the file store answers)."""

    webhook_url = Unicode(
        "", config=True, help="Base URL of the session webhook, e.g. https://sessions.example.org/eg.",
    ).tag(env=("EG_WEBHOOK_URL",))
    webhook_username = Unicode("", config=True, help="User name for the webhook's authentication.").tag(
        env=("EG_WEBHOOK_USERNAME",)
    )
    webhook_password = Unicode("", config=True, help="Password for the webhook's authentication.").tag(
        env=("EG_WEBHOOK_PASSWORD",)
    )
    auth_type = CaselessStrEnum(
        ["", "basic", "digest"], "", config=True, help="HTTP authentication: basic, digest, or none ('').",
    ).tag(env=("EG_AUTH_TYPE",))
    timeout = Float(60.0, config=True, help="Seconds a webhook request may take.")
