"""A real MIT Kerberos realm on loopback, for tests of plugins that authenticate with Kerberos
(eg-yarn's SPNEGO to a ResourceManager, eg-ssh's GSSAPI logins).

:class:`KerberosRealm` creates a realm database, starts ``krb5kdc`` listening on 127.0.0.1 only
(TCP and UDP on one free port), makes principals with keytabs and gets tickets with ``kinit``.
Everything lives in one directory; ``realm.env`` is the environment a process needs to use it
(``KRB5_CONFIG``, no replay cache). It needs Debian's ``krb5-kdc``, ``krb5-admin-server`` and
``krb5-user`` packages (MIT Kerberos); without them :class:`KerberosRealm` raises a
``RuntimeError`` saying so. The ``kerberos_realm`` fixture of :mod:`eg_core.testing` gives one
realm per test session::

    def test_login(kerberos_realm, tmp_path):
        keytab = kerberos_realm.add_principal("HTTP/127.0.0.1")           # a service's keytab
        ccache = kerberos_realm.kinit("alice", tmp_path / "alice.ccache")  # a user's tickets
        env = {**kerberos_realm.env, "KRB5CCNAME": ccache}
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = "krb5-kdc krb5-admin-server krb5-user"
_TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit")


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if not path:
        raise RuntimeError(f"{name} is not installed: a Kerberos realm for tests needs MIT Kerberos (apt-get install {PACKAGES})")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KerberosRealm:
    """A KDC for realm ``realm`` in ``directory``; :meth:`start` it, :meth:`stop` it."""

    def __init__(self, directory: Path, realm: str = "EG.TEST"):
        self.dir = Path(directory)
        self.realm = realm
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None
        self.krb5_conf = self.dir / "krb5.conf"
        self.kdc_conf = self.dir / "kdc.conf"
        self.log = self.dir / "kdc.log"
        self.tools = {name: _tool(name) for name in _TOOLS}

    @property
    def env(self) -> dict[str, str]:
        """What a client or service process needs to use the realm (add ``KRB5CCNAME`` or
        ``KRB5_KTNAME`` for its own credentials)."""
        return {"KRB5_CONFIG": str(self.krb5_conf), "KRB5_KDC_PROFILE": str(self.kdc_conf), "KRB5RCACHETYPE": "none"}

    def _write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        address = f"127.0.0.1:{self.port}"
        self.krb5_conf.write_text(
            "[libdefaults]\n"
            f"  default_realm = {self.realm}\n"
            "  dns_lookup_kdc = false\n  dns_lookup_realm = false\n  rdns = false\n"
            "  dns_canonicalize_hostname = false\n  udp_preference_limit = 1\n"
            f"  default_ccache_name = FILE:{self.dir}/ccache\n"
            "[realms]\n"
            f"  {self.realm} = {{\n    kdc = {address}\n  }}\n"
            "[domain_realm]\n"
            f"  127.0.0.1 = {self.realm}\n  localhost = {self.realm}\n"
        )
        (self.dir / "kadm5.acl").write_text(f"*/admin@{self.realm} *\n")
        self.kdc_conf.write_text(
            "[kdcdefaults]\n"
            f"  kdc_listen = {address}\n  kdc_tcp_listen = {address}\n"
            "[realms]\n"
            f"  {self.realm} = {{\n"
            f"    database_name = {self.dir}/principal\n"
            f"    key_stash_file = {self.dir}/stash\n"
            f"    acl_file = {self.dir}/kadm5.acl\n"
            f"    kdc_listen = {address}\n    kdc_tcp_listen = {address}\n"
            "    kadmind_listen = 127.0.0.1:0\n"
            "    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n"
            "  }\n"
            "[logging]\n"
            f"  kdc = FILE:{self.log}\n  default = FILE:{self.log}\n"
        )

    def _run(self, *cmd: str, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(cmd, env={**os.environ, **self.env, **(env or {})}, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:3])} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def start(self, timeout: float = 30.0) -> "KerberosRealm":
        """Create the database and start the KDC; returns once it accepts connections."""
        self._write_config()
        self._run(self.tools["kdb5_util"], "create", "-s", "-r", self.realm, "-P", secrets.token_hex(16))
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [self.tools["krb5kdc"], "-n", "-r", self.realm], env={**os.environ, **self.env},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"krb5kdc exited with {self.proc.returncode}: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"krb5kdc did not listen on 127.0.0.1:{self.port} within {timeout:g}s") from None
                time.sleep(0.1)

    def principal(self, name: str) -> str:
        return name if "@" in name else f"{name}@{self.realm}"

    def add_principal(self, name: str, keytab: Path | None = None) -> Path:
        """Create principal ``name`` (e.g. ``alice`` or ``HTTP/127.0.0.1``) with a random key and
        write its key to ``keytab`` (default: ``<dir>/<name>.keytab``); returns the keytab path."""
        principal = self.principal(name)
        keytab = Path(keytab or self.dir / (name.replace("/", "_") + ".keytab"))
        kadmin = self.tools["kadmin.local"]
        self._run(kadmin, "-r", self.realm, "-q", f"addprinc -randkey {principal}")
        self._run(kadmin, "-r", self.realm, "-q", f"ktadd -k {keytab} -norandkey {principal}")
        return keytab

    def kinit(self, name: str, ccache: Path, keytab: Path | None = None) -> str:
        """Get tickets for ``name`` into ``ccache`` (creating the principal when no keytab is
        given); returns the ``KRB5CCNAME`` value."""
        keytab = keytab or self.add_principal(name)
        value = f"FILE:{ccache}"
        self._run(self.tools["kinit"], "-k", "-t", str(keytab), self.principal(name), env={"KRB5CCNAME": value})
        return value

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


__all__ = ["KerberosRealm", "PACKAGES"]
