"""Enterprise Gateway options migrating operators look for, each under its EG env name too:
kernel_headers, allowed_message_types, kernel_info_timeout, authorized_origin, ssl_version,
per-resource-manager log levels, EG_KERNEL_SESSION_LOCATION (EG_PROHIBITED_LOCAL_IPS: eg-ssh's tests)."""

from __future__ import annotations

import ssl
import subprocess
import time

import httpx
import pytest

from eg_core.testing import TOKEN, KernelSocket, gateway_exit

pytestmark = pytest.mark.timeout(180)


async def test_kernel_headers_reach_the_kernel_env(gateway_factory):
    gw = gateway_factory(env={"EG_KERNEL_HEADERS": "X-Forwarded-User,X-Absent"})
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python3"}, headers={"X-Forwarded-User": "alice"})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        ws = await KernelSocket.connect(gw, kid)
        out = await ws.execute("import os; print(os.environ.get('KERNEL_HEADER_X_FORWARDED_USER'), os.environ.get('KERNEL_HEADER_X_ABSENT'))")
        assert out["stdout"].strip() == "alice None"
        await ws.close()
        await http.delete(f"/api/kernels/{kid}")


async def test_allowed_message_types_drop_the_others(gateway_factory):
    gw = gateway_factory("--Gateway.allowed_message_types=['kernel_info_request','execute_request']")
    async with gw.client() as http:
        kid = (await http.post("/api/kernels", json={"name": "python3"})).json()["id"]
        ws = await KernelSocket.connect(gw, kid)
        dropped = await ws.request("complete_request", {"code": "pri", "cursor_pos": 3})
        out = await ws.execute("print('ran')")  # replies come in order: a complete_reply would be first
        assert out["stdout"].strip() == "ran"
        assert f"dropped a 'complete_request' message: not in allowed_message_types" in gw.output()
        assert dropped
        await ws.close()
        await http.delete(f"/api/kernels/{kid}")


async def test_kernel_info_timeout_bounds_the_kernel_info_phase(gateway_factory):
    gw = gateway_factory("--RemoteMappingKernelManager.kernel_info_timeout=3", "--Gateway.launch_timeout=120")
    async with gw.client() as http:
        start = time.monotonic()
        r = await http.post("/api/kernels", json={"name": "slow_start"})
    assert r.status_code == 504 and r.json()["message"].startswith("kernel_info: no answer within the launch timeout of 3s")
    assert time.monotonic() - start < 100  # not the 120 s launch timeout
    assert "Enterprise Gateway's c.RemoteMappingKernelManager.kernel_info_timeout read as c.Gateway.kernel_info_timeout" in gw.output()


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path):
    """A server certificate for 127.0.0.1, and two client certificates signed by a test CA."""
    files = {name: tmp_path / name for name in ("server.key", "server.pem", "ca.key", "ca.pem")}
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(files["server.key"]), "-out", str(files["server.pem"]),
            "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(files["ca.key"]), "-out", str(files["ca.pem"]),
            "-days", "2", "-subj", "/CN=eg-test-ca")
    for who in ("good", "evil"):
        key, csr, pem = tmp_path / f"{who}.key", tmp_path / f"{who}.csr", tmp_path / f"{who}.pem"
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={who}.example.org")
        openssl("x509", "-req", "-in", str(csr), "-CA", str(files["ca.pem"]), "-CAkey", str(files["ca.key"]), "-CAcreateserial",
                "-out", str(pem), "-days", "2")
        files[who] = (pem, key)
    return files


def client_context(pki, who: str, maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["server.pem"]))
    context.load_cert_chain(*map(str, pki[who]))
    if maximum:
        context.maximum_version = maximum
    return context


async def test_authorized_origin_and_ssl_version(gateway_factory, pki):
    gw = gateway_factory(
        f"--certfile={pki['server.pem']}", f"--keyfile={pki['server.key']}", f"--client-ca={pki['ca.pem']}",
        env={"EG_AUTHORIZED_ORIGIN": "good.example.org", "EG_SSL_VERSION": "TLSv1_3"},
    )
    url = gw.url.replace("http:", "https:")
    headers = {"Authorization": f"token {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, verify=client_context(pki, "good"), headers=headers) as good:
        assert (await good.get("/api/kernelspecs")).status_code == 200
    async with httpx.AsyncClient(base_url=url, verify=client_context(pki, "evil"), headers=headers) as evil:
        r = await evil.get("/api/kernelspecs")
        assert r.status_code == 403 and "does not match authorized_origin" in r.json()["message"]
    with pytest.raises(httpx.HTTPError):  # below the ssl_version floor
        async with httpx.AsyncClient(base_url=url, verify=client_context(pki, "good", ssl.TLSVersion.TLSv1_2), headers=headers) as old:
            await old.get("/api")


def test_authorized_origin_without_client_certificates_stops_the_gateway(tmp_path):
    result = gateway_exit(tmp_path, "--no-auth", "--Gateway.authorized_origin=good.example.org")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("eg-gateway: Gateway.authorized_origin needs client certificates")


async def test_log_level_per_resource_manager(gateway_factory):
    gw = gateway_factory(env={"EG_LOCAL_LOG_LEVEL": "DEBUG"})
    async with gw.client() as http:
        kid = (await http.post("/api/kernels", json={"name": "python3"})).json()["id"]
        await http.delete(f"/api/kernels/{kid}")
    lines = gw.output().splitlines()
    assert any(line.startswith("[D ") and "eg.local]" in line and "started local process" in line for line in lines)
    assert not any(line.startswith("[D ") and "eg.access]" in line for line in lines)  # the rest stays at INFO


def test_kernel_session_location_is_the_file_store_root(tmp_path, monkeypatch):
    from eg_core._builtin.file_store import FileSessionStore

    monkeypatch.setenv("EG_KERNEL_SESSION_LOCATION", str(tmp_path / "sessions"))
    FileSessionStore.clear_instance()
    try:
        assert FileSessionStore.instance().persistence_root == str(tmp_path / "sessions")
    finally:
        FileSessionStore.clear_instance()
