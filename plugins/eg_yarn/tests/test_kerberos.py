"""Kerberos (SPNEGO) to the ResourceManager, for real: an MIT KDC on loopback
(``kerberos_realm`` from eg_core.testing), the emulated RM accepting ``Negotiate`` with its
``HTTP/127.0.0.1`` keytab through python-gssapi, and the gateway authenticating through
yarn-api-client with requests-kerberos from its ticket cache, as Enterprise Gateway does."""

from __future__ import annotations

import pytest

from conftest import gateway_env
from eg_core.testing import GatewayProcess, KernelSocket
from yarn_emulator import YarnCluster

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def service_keytab(kerberos_realm):
    return kerberos_realm.add_principal("HTTP/127.0.0.1")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, loop_thread, kerberos_realm, service_keytab):
    """An RM that requires SPNEGO; 'egsvc' (the gateway) may act for other users (doAs)."""
    import os

    os.environ.update(kerberos_realm.env)  # the acceptor in this process reads the realm's krb5.conf
    c = YarnCluster(tmp_path_factory.mktemp("yarn"), spnego_keytab=str(service_keytab), proxy_users={"egsvc": "*"})
    yield c

    async def stop():
        c.shutdown()

    loop_thread.run(stop())


def kerberos_gateway(tmp_path, realm, rm, hadoop_conf, kernel_spec_dirs, ccache, *args):
    env = {**gateway_env(tmp_path, hadoop_conf), **realm.env, "KRB5CCNAME": ccache}
    return GatewayProcess(
        tmp_path, f"--YarnSettings.yarn_endpoint={rm.url}", "--YarnSettings.yarn_endpoint_security_enabled=True",
        *args, env=env, kernel_spec_dirs=kernel_spec_dirs,
    )


async def test_kernel_through_a_kerberized_resource_manager(tmp_path, kerberos_realm, rm, hadoop_conf, kernel_spec_dirs, reset):
    cluster = reset
    ccache = kerberos_realm.kinit("egsvc", tmp_path / "egsvc.ccache")
    gw = kerberos_gateway(tmp_path, kerberos_realm, rm, hadoop_conf, kernel_spec_dirs, ccache,
                          "--YarnSettings.impersonation_enabled=True")
    try:
        async with gw.client() as http:
            r = await http.post("/api/kernels", json={"name": "python_yarn_rest"})
            assert r.status_code == 201, r.text
            kid = r.json()["id"]
            [app] = rm.call(lambda: [a for a in cluster.apps.values() if a.name == kid])
            assert app.user == "egsvc"
            assert "egsvc@EG.TEST" in rm.call(lambda: cluster.requests_principals)
            ws = await KernelSocket.connect(gw, kid)
            try:
                assert (await ws.execute("print(6 * 7)"))["stdout"] == "42\n"
            finally:
                await ws.close()
            r = await http.post("/api/kernels", json={"name": "python_yarn_rest", "env": {"KERNEL_USERNAME": "alice"}})
            assert r.status_code == 201, r.text
            kid2 = r.json()["id"]
            [app2] = rm.call(lambda: [a for a in cluster.apps.values() if a.name == kid2])
            assert app2.user == "alice"  # egsvc's ticket, doAs=alice
            for k in (kid, kid2):
                assert (await http.delete(f"/api/kernels/{k}")).status_code == 204
            assert app.state == "KILLED" and app2.state == "KILLED"
    finally:
        gw.stop()


async def test_no_ticket_is_named(tmp_path, kerberos_realm, rm, hadoop_conf, kernel_spec_dirs, reset):
    gw = kerberos_gateway(tmp_path, kerberos_realm, rm, hadoop_conf, kernel_spec_dirs, f"FILE:{tmp_path}/empty.ccache")
    try:
        async with gw.client() as http:
            r = await http.post("/api/kernels", json={"name": "python_yarn_rest"})
            assert r.status_code == 503, r.text
            assert "HTTP 401" in r.json()["message"]
    finally:
        gw.stop()
