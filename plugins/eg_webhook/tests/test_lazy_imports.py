"""httpx stays out of a gateway whose sessions are not kept behind a webhook: importing the plugin
does not load it, and without ``webhook_url`` its store hooks decline without it. Fresh
interpreters, real imports."""

from __future__ import annotations

import os

from eg_core.testing import fresh_python

SDK = ("httpx",)
NO_SETTINGS = {k: v for k, v in os.environ.items() if not k.startswith("EG_")}


def test_importing_the_plugin_loads_no_http_client():
    assert fresh_python("import eg_webhook.plugin", SDK, NO_SETTINGS).loaded == []


def test_without_a_webhook_the_store_declines_without_the_http_client():
    code = """
from eg_webhook import plugin
answer = [plugin.eg_store_load_all(), plugin.eg_store_load("k1"), plugin.eg_store_save({"kernel_id": "k1"}), plugin.eg_store_delete("k1")]
"""
    ran = fresh_python(code, SDK, NO_SETTINGS)
    assert (ran.answer, ran.loaded) == ([None, None, None, None], [])
