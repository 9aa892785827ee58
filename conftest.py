"""The core's and the bundled plugins' tests use eg's pytest plugin (it is opt-in)."""

from importlib.metadata import entry_points

# An environment installed before eg_core.testing became opt-in still loads it as an entry
# point; declaring it again would register it twice.
_loaded_by_entry_point = any(ep.value == "eg_core.testing" for ep in entry_points(group="pytest11"))
pytest_plugins = [] if _loaded_by_entry_point else ["eg_core.testing"]


# -- test tiers --------------------------------------------------------------------------------
# A test that needs a backend service or a system package beyond Python (sshd, dockerd, the
# Kubernetes cluster, Slurm, a JupyterHub with its npm proxy, a Kerberos KDC, Chromium, R with
# IRkernel, Java for Spark) is marked
# ``service``: the fixtures that bring each one up are named here, in one place, by the folder
# whose tests use them. ``bash scripts/test.sh --fast`` runs the rest (``-m "not service"``),
# with no ci/setup.sh and no system package; the full run keeps everything.
SERVICE_FIXTURES = {
    "plugins/eg_ssh/": {"sshd"},
    "plugins/eg_docker/": {"docker_engine"},
    "plugins/eg_k8s/": {"cluster", "cluster2"},
    "plugins/eg_slurm/": {"slurm_cluster"},
    "plugins/eg_jupyterhub/": {"hub"},
    "tests/test_e2e_jupyterlab.py": {"chromium"},
    "": {"kerberos_realm", "irkernel", "spark_runtime"},
}

# The full run (scripts/test.sh) runs the tests of the Kubernetes cluster, marked ``kubernetes``,
# in a pytest of their own beside the other services' tests: the cluster shares nothing with the
# other backends, and on a fresh machine its setup builds Kubernetes (about 12 minutes) while the
# other backends' tests run.
KUBERNETES_FIXTURES = {"plugins/eg_k8s/": {"cluster", "cluster2"}}


def pytest_configure(config):
    config.addinivalue_line("markers", "service: needs a backend service or a system package (not in the --fast tier)")
    config.addinivalue_line("markers", "kubernetes: needs the Kubernetes test cluster (a part of its own in the full run)")


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if any(path.startswith(where) and needs & set(item.fixturenames) for where, needs in SERVICE_FIXTURES.items()):
            item.add_marker(pytest.mark.service)
        if any(path.startswith(where) and needs & set(item.fixturenames) for where, needs in KUBERNETES_FIXTURES.items()):
            item.add_marker(pytest.mark.kubernetes)
