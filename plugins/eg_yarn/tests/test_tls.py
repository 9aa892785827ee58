"""An https ResourceManager: verified with YarnSettings.cert_bundle (EG_YARN_CERT_BUNDLE), and
refused, naming the certificate error, without it."""

from __future__ import annotations

import pytest

from conftest import gateway_env
from eg_core.testing import GatewayProcess
from yarn_emulator import Emulator, self_signed_certificate

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def https_rm(cluster, loop_thread, tmp_path):
    emulator = Emulator(cluster, loop_thread, active=False, tls=self_signed_certificate(tmp_path / "tls"))
    emulator.active = True  # serves, without taking the http RM's place in the shared state
    yield emulator
    emulator.stop()


async def test_https_resource_manager_with_a_ca_bundle(tmp_path, kernel_spec_dirs, hadoop_conf, https_rm, reset):
    cluster = reset
    ca = https_rm.tls[0]
    for env, expected in (({"EG_YARN_CERT_BUNDLE": ca}, 201), ({}, 503)):
        gw = GatewayProcess(tmp_path, f"--YarnSettings.yarn_endpoint={https_rm.url}",
                            env={**gateway_env(tmp_path, hadoop_conf), **env}, kernel_spec_dirs=kernel_spec_dirs)
        try:
            async with gw.client() as http:
                r = await http.post("/api/kernels", json={"name": "python_yarn_rest"})
                assert r.status_code == expected, r.text
                if expected == 201:
                    kid = r.json()["id"]
                    assert rm_requests(https_rm, cluster)
                    assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
                else:
                    assert "CERTIFICATE_VERIFY_FAILED" in r.json()["message"]
        finally:
            gw.stop()


def rm_requests(rm, cluster):
    return rm.call(lambda: [r for r in cluster.requests if r[1] == "/ws/v1/cluster/apps"])
