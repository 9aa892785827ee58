"""Benchmark: R (IRkernel) against Python (ipykernel) kernel start, per resource manager.

    python bench/bench_languages.py [--rounds 5] [--rm local,ssh,docker,slurm,yarn,k8s]

For each resource manager one gateway starts its Python and its R kernelspec (``KERNELSPECS``:
every pair runs eg's launcher, but local's, which is jupyter_client's plain launch) in
alternating order, and times POST /api/kernels until a kernel_info_reply is in hand over the
websocket; kernels are shut down between rounds (not timed), one warm-up round is not counted.
Prints the medians side by side. Needs root and each plugin's ci/setup.sh (idempotent; YARN is
the tests' emulated ResourceManager).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import uuid
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from eg_core.testing import GatewayProcess  # noqa: E402
from _common import interleaved_starts  # noqa: E402

KERNELSPECS = {
    "local": ("python3", "ir"), "ssh": ("python_ssh", "R_ssh"), "docker": ("python_docker", "R_docker"),
    "slurm": ("python_slurm_test", "R_slurm_test"), "yarn": ("python_yarn_rest", "R_yarn_rest"),
    "k8s": ("k8s_launcher", "R_kubernetes"),  # both through eg's launcher in the pod
}
PLUGINS = ROOT / "plugins"


def setup(plugin: str) -> dict[str, str]:
    """Run a plugin's idempotent ci/setup.sh; its ``NAME=value`` lines."""
    proc = subprocess.run(["bash", str(PLUGINS / plugin / "ci" / "setup.sh")], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{plugin}'s setup.sh failed:\n{proc.stderr[-3000:]}")
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


def local_gateway(tmp: Path):
    return GatewayProcess(tmp), lambda: None


def ssh_gateway(tmp: Path):
    with warnings.catch_warnings():  # asyncssh's import warns about DSA (cryptography)
        warnings.simplefilter("ignore")
        from eg_ssh.testing import TestSSHD, ensure_setup

    ensure_setup()
    sshd = TestSSHD(addresses=("127.0.0.1",)).start()
    (tmp / "config").mkdir()
    (tmp / "config" / "eg_gateway_config.py").write_text(sshd.gateway_config())
    gw = GatewayProcess(tmp, env={"JUPYTER_CONFIG_DIR": str(tmp / "config"), "EG_RESPONSE_PORT": "0"})
    return gw, sshd.stop


def docker_gateway(tmp: Path):
    values = setup("eg_docker")
    gw = GatewayProcess(tmp, "--DockerSettings.gateway_id=eg-bench-languages",
                        env={"DOCKER_HOST": values["DOCKER_HOST"], "EG_RESPONSE_ADDRESS": "127.0.0.1:0"})
    return gw, lambda: None


def slurm_gateway(tmp: Path):
    setup("eg_slurm")
    gw = GatewayProcess(tmp, "--SlurmSettings.gateway_id=eg-bench-languages",
                        kernel_spec_dirs=[str(PLUGINS / "eg_slurm" / "tests" / "kernelspecs")])
    return gw, lambda: None


def yarn_gateway(tmp: Path):
    sys.path.insert(0, str(PLUGINS / "eg_yarn" / "tests"))
    from yarn_emulator import Emulator, LoopThread, YarnCluster, write_hadoop_conf

    thread = LoopThread()
    cluster = YarnCluster(tmp / "yarn")
    cluster.state_delay = 0.0
    rm = Emulator(cluster, thread)
    conf = write_hadoop_conf(tmp / "conf", [rm.address])
    gw = GatewayProcess(tmp, f"--YarnSettings.yarn_endpoint={rm.url}",
                        env={"HADOOP_CONF_DIR": str(conf), "SPARK_STAGING_DIR": str(tmp / "staging")})

    def stop():
        rm.stop()

        async def shutdown():
            cluster.shutdown()

        thread.run(shutdown())
        thread.close()

    return gw, stop


def k8s_gateway(tmp: Path):
    from kubernetes import client, config

    values = setup("eg_k8s")
    namespace = f"eg-bench-lang-{uuid.uuid4().hex[:6]}"
    configuration = client.Configuration()
    config.load_kube_config(config_file=values["KUBECONFIG"], client_configuration=configuration)
    core = client.CoreV1Api(client.ApiClient(configuration))
    core.create_namespace({"metadata": {"name": namespace}})
    tmp.chmod(0o755)
    gw = GatewayProcess(
        tmp, f"--KubernetesSettings.kubeconfig={values['KUBECONFIG']}", f"--KubernetesSettings.namespace={namespace}",
        "--KubernetesSettings.host_network=True", "--KubernetesSettings.kernel_host=127.0.0.1",
        "--KubernetesSettings.kernel_bind_ip=127.0.0.1", "--KubernetesSettings.gateway_id=eg-bench-languages",
        "--Gateway.launch_timeout=120", kernel_spec_dirs=[str(PLUGINS / "eg_k8s" / "tests" / "kernelspecs")],
    )
    return gw, lambda: core.delete_namespace(namespace)


GATEWAYS = {"local": local_gateway, "ssh": ssh_gateway, "docker": docker_gateway, "slurm": slurm_gateway,
            "yarn": yarn_gateway, "k8s": k8s_gateway}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rm", default=",".join(GATEWAYS), help="comma-separated: " + ", ".join(GATEWAYS))
    args = parser.parse_args()
    print(f"{'resource manager':18}{'python ms':>11}{'R ms':>10}{'R-python':>10}")
    for rm in [r.strip() for r in args.rm.split(",") if r.strip()]:
        if rm not in GATEWAYS:
            raise SystemExit(f"--rm {rm!r}: choose among {', '.join(GATEWAYS)}")
        with tempfile.TemporaryDirectory(prefix=f"eg-bench-lang-{rm}-") as tmp:
            gw, stop = GATEWAYS[rm](Path(tmp))
            try:
                times = asyncio.run(interleaved_starts(gw, list(KERNELSPECS[rm]), args.rounds))
            finally:
                gw.stop()
                stop()
        py, r = (statistics.median(times[name]) * 1000 for name in KERNELSPECS[rm])
        print(f"{rm:18}{py:11.0f}{r:10.0f}{r - py:+10.0f}", flush=True)


if __name__ == "__main__":
    main()
