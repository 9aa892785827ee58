"""The test kit's Kerberos realm: a real KDC on loopback gives a user tickets, and service tickets
for a principal whose keytab holds the same key (what a GSSAPI/SPNEGO acceptor checks; eg-yarn's
SPNEGO test completes the handshake itself)."""

from __future__ import annotations

import os
import re
import subprocess


def run(cmd, env):
    return subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout


def test_realm_issues_user_and_service_tickets(kerberos_realm, tmp_path):
    keytab = kerberos_realm.add_principal("HTTP/127.0.0.1")
    ccache = kerberos_realm.kinit("alice", tmp_path / "alice.ccache")
    env = {**kerberos_realm.env, "KRB5CCNAME": ccache}
    assert re.search(r"alice@EG\.TEST", run(["klist"], env))
    kvno = run(["kvno", "HTTP/127.0.0.1@EG.TEST"], env)  # a service ticket from the KDC
    ticket_kvno = re.search(r"kvno = (\d+)", kvno).group(1)
    keys = run(["klist", "-k", str(keytab)], env)
    assert f"{ticket_kvno} HTTP/127.0.0.1@EG.TEST" in " ".join(keys.split())
    assert "HTTP/127.0.0.1@EG.TEST" in run(["klist"], env)
