"""Kernelspec overrides of the ``yarn`` settings: one allow-list (traits tagged
``kernelspec=True``), each value checked by its trait, before anything is submitted."""

from __future__ import annotations

import pytest

from eg_core import BadRequest, KernelContext
from eg_yarn._settings import YarnSettings, resolve


@pytest.fixture
def yarn_settings():
    YarnSettings.clear_instance()
    yield YarnSettings.instance(yarn_endpoint="http://127.0.0.1:1")
    YarnSettings.clear_instance()


def kernel(**config) -> KernelContext:
    return KernelContext(kernel_id="k1", kernel_name="spark", resource_manager="yarn", config=config)


def test_kernelspec_overrides_the_tagged_settings(yarn_settings):
    launch = resolve(kernel(yarn_endpoint="http://127.0.0.1:2", submission="rest", queue="spark",
                            driver_memory="2g", yarn_endpoint_security_enabled="false", port_range="0..0"))
    assert launch.endpoints == ("http://127.0.0.1:2",) and launch.submission == "rest"
    assert launch.queue == "spark" and launch.driver_memory_mb == 2048 and launch.kerberos is False


@pytest.mark.parametrize("config, words", [
    ({"check_queue": False}, "may not override; it may set: alt_yarn_endpoint, driver_memory"),
    ({"submission": "carrier-pigeon"}, "config.submission is not valid"),
    ({"yarn_endpoint_security_enabled": "maybe"}, "is not true or false"),
])
def test_kernelspec_values_are_checked_by_the_traits(yarn_settings, config, words):
    with pytest.raises(BadRequest) as refused:
        resolve(kernel(**config))
    assert words in refused.value.message
