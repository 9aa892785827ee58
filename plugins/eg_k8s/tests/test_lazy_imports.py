"""The ``kubernetes`` client stays out of a gateway that has no cluster: importing the plugin does
not load it, and with no configuration at all the startup hooks skip the cluster quietly (the
sweep reports it unreachable). With a configuration, the cluster check does not hold up startup.
Fresh interpreters, real imports; no cluster needed."""

from __future__ import annotations

import os

from eg_core.testing import free_port, fresh_python

SDK = ("kubernetes", "requests")
STARTUP = """
from eg_core import orphans
from eg_k8s import plugin

async def main():
    await plugin.eg_startup(None)
    checking = plugin._startup is not None and not plugin._startup.done()  # eg_startup did not wait for it
    one = plugin.eg_store_load("k1")  # while a cluster check runs: answered once it is done
    deferred = one is not None
    one = await one if deferred else None
    stored = await plugin.eg_store_load_all()
    with orphans.gathering_unreachable() as unreachable:
        await plugin.eg_reconcile(known_kernel_ids=set())
    await plugin.eg_shutdown()
    return {"checking": checking, "deferred": deferred, "one": one, "stored": stored, "unreachable": unreachable}
"""


def no_cluster_env(home) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    return {**env, "HOME": str(home)}


def test_importing_the_plugin_loads_no_sdk():
    assert fresh_python("import eg_k8s.plugin", SDK).loaded == []


def test_without_a_configuration_startup_is_quiet_and_loads_no_sdk(tmp_path):
    ran = fresh_python(STARTUP, SDK, no_cluster_env(tmp_path))
    answer, stderr = ran.answer, ran.stderr
    assert ran.loaded == []
    assert (answer["deferred"], answer["one"], answer["stored"]) == (False, None, [])
    assert answer["unreachable"] == {"k8s": "no Kubernetes configuration (KUBECONFIG, ~/.kube/config or in-cluster)"}
    assert stderr == ""


def test_an_unreachable_cluster_does_not_hold_up_startup(tmp_path):
    port = free_port()  # nothing listens there
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    ran = fresh_python(STARTUP, SDK, {**no_cluster_env(tmp_path), "KUBECONFIG": str(kubeconfig)})
    answer, stderr = ran.answer, ran.stderr
    assert answer["checking"], answer
    assert "Kubernetes API not usable at startup" in stderr  # the check ran, in the background
    assert answer["deferred"] and answer["one"] is None
    assert f"port={port}" in answer["unreachable"]["k8s"], answer
