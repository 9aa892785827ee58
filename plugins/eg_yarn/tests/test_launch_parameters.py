"""The launch parameters a YARN kernelspec publishes (``metadata.parameters``) are what its
request validation accepts: a kernel starts on the emulated ResourceManager with every value
the schema offers (each allowed queue, the least and the most memory), and every value just
outside is refused with a 4xx naming the variable."""

from __future__ import annotations

import pytest

from eg_core.testing import check_launch_parameters

pytestmark = pytest.mark.timeout(300)


async def test_every_published_value_starts_a_kernel_and_every_value_outside_is_refused(gateway, http, rm, reset):
    schema = await check_launch_parameters(http, "python_yarn_rest")
    props = schema["properties"]
    assert props["KERNEL_QUEUE"]["enum"] == ["default", "spark"]  # the gateway's allowed_queues
    assert props["KERNEL_DRIVER_MEMORY"]["maximum"] == props["KERNEL_EXECUTOR_MEMORY"]["maximum"] == 4096  # max_memory 4g
    assert props["KERNEL_NODE_LABEL"]["pattern"].startswith("^")
