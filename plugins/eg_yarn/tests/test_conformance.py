"""eg-yarn passes the resource-manager conformance suite, on the emulated ResourceManager, in
both submission modes."""

from __future__ import annotations

import pytest

from conftest import gateway_env
from eg_core.testing import ResourceManagerConformance

pytestmark = pytest.mark.timeout(300)
FINAL = ("FINISHED", "FAILED", "KILLED")


class _YarnConformance(ResourceManagerConformance):
    bad_config = {"submission": "carrier-pigeon"}
    orphan_args = ("--YarnSettings.orphans_at_startup=remove",)

    @pytest.fixture
    def eg_gateway_factory(self, gateway_factory, rm, hadoop_conf, kernel_spec_dirs, tmp_path, reset):
        module_dirs = list(kernel_spec_dirs)

        def start(*args, env=None, kernel_spec_dirs=()):
            return gateway_factory(
                f"--YarnSettings.yarn_endpoint={rm.url}", "--YarnSettings.watch_interval=1", *args,
                env={**gateway_env(tmp_path, hadoop_conf), **(env or {})},
                kernel_spec_dirs=[*module_dirs, *kernel_spec_dirs],
            )

        return start

    @pytest.fixture
    def eg_probe(self, rm, cluster):
        async def applications_of_kernel(kernel_id):
            return rm.call(lambda: [
                f"{a.id} {a.state}" for a in cluster.apps.values()
                if kernel_id in a.name or kernel_id in a.tags
                if a.state not in FINAL or (a.process is not None and a.process.poll() is None)
            ])

        return applications_of_kernel


class TestYarnRestConformance(_YarnConformance):
    kernelspec = "python_yarn_rest"


class TestYarnSparkSubmitConformance(_YarnConformance):
    kernelspec = "spark_python_yarn_cluster"


class TestYarnRestConformanceIRkernel(_YarnConformance):
    """REST mode with an R kernel (IRkernel)."""

    kernelspec = "R_yarn_rest"
    language = "r"

    @pytest.fixture(autouse=True)
    def _r_installed(self, irkernel):
        """R and IRkernel on this host (the full run's tier)."""
