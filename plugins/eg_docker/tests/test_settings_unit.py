"""The settings checks alone (no engine): layering, request overrides, UID/GID rules, sizes,
volumes, GPUs, labels, addresses; and the container/service bodies built from them."""

from __future__ import annotations

import pytest

from eg_core import BadRequest, KernelContext, LaunchRefused
from eg_docker._client import split_image
from eg_docker._command import container_command, container_env, uses_image_command
from eg_docker._containers import container_config
from eg_docker._services import service_spec
from eg_docker._settings import DockerSettings, parse_size, resolve


def make_kernel(config=None, env=None, spec_env=None, **spec) -> KernelContext:
    return KernelContext(
        kernel_id="6f1c2a64-8d4e-4f7a-9a61-0f2b7d7c9e11",
        kernel_name="python_docker",
        resource_manager="docker",
        spec={"language": "python", "env": spec_env or {}, "metadata": spec.get("metadata", {})},
        config={"image_name": "eg/kernel-py:local", **(config or {})},
        env=env or {},
        user="alice@example.org",
    )


@pytest.fixture
def gateway():
    return DockerSettings(docker_host="unix:///tmp/x.sock", gateway_id="gw1")


def test_defaults(gateway):
    kc = resolve(make_kernel(), gateway)
    assert (kc.mode, kc.image, kc.network, kc.uid, kc.gid) == ("container", "eg/kernel-py:local", "host", 1000, 100)
    assert kc.name == "alice-example.org-6f1c2a64-8d4e-4f7a-9a61-0f2b7d7c9e11"
    assert kc.host == "127.0.0.1" and kc.bind_ip == "127.0.0.1"  # local engine, host network
    assert kc.labels["eg.gateway"] == "gw1" and kc.labels["component"] == "kernel"
    assert kc.cpus is None and kc.memory is None and kc.gpus is None and kc.mounts == []


@pytest.mark.parametrize(
    "value,expected",
    [("1000", 1000), (" 1000 ", 1000), ("+1000", 1000), ("01000", 1000), (4294967295, 4294967295)],
)
def test_uid_normalized(gateway, value, expected):
    assert resolve(make_kernel(env={"KERNEL_UID": str(value)}), gateway).uid == expected


@pytest.mark.parametrize("value", ["0", "00", " 0", "+0", "-1", "4294967296", "1e3", "root", "", "1 000"])
def test_uid_refused(gateway, value):
    with pytest.raises(LaunchRefused) as err:
        resolve(make_kernel(env={"KERNEL_UID": value}), gateway)
    assert err.value.status == 403


def test_prohibited_gids_from_env(monkeypatch):
    monkeypatch.setenv("EG_PROHIBITED_GIDS", "0,50")
    settings = DockerSettings()
    assert settings.prohibited_gids == [0, 50]
    with pytest.raises(LaunchRefused, match="GID value of '50' has been denied via EG_PROHIBITED_GIDS"):
        resolve(make_kernel(env={"KERNEL_GID": "050"}), settings)


def test_request_overrides_need_permission(gateway):
    with pytest.raises(LaunchRefused, match="KERNEL_NETWORK may not be set"):
        resolve(make_kernel(env={"KERNEL_NETWORK": "other"}), gateway)
    kc = resolve(make_kernel(config={"request_overrides": "network"}, env={"KERNEL_NETWORK": "other"}), gateway)
    assert kc.network == "other" and kc.host == ""  # dialled at the container's own address


def test_working_dir_ignored_unless_mirrored_or_forbidden(gateway):
    kernel = make_kernel(env={"KERNEL_WORKING_DIR": "/home/alice"})
    assert resolve(kernel, gateway).working_dir is None
    assert "KERNEL_WORKING_DIR" not in kernel.env
    mirrored = make_kernel(config={"mirror_working_dirs": True}, env={"KERNEL_WORKING_DIR": "/home/alice"})
    assert resolve(mirrored, gateway).working_dir == "/home/alice"
    with pytest.raises(LaunchRefused, match="KERNEL_WORKING_DIR may not be set"):
        resolve(make_kernel(config={"ignored_overrides": []}, env={"KERNEL_WORKING_DIR": "/home/alice"}), gateway)


def test_kernelspec_env_is_not_a_request(gateway):
    """A KERNEL_* value that comes from the kernelspec's own env is the operator's."""
    kernel = make_kernel(env={"KERNEL_WORKING_DIR": "/srv"}, spec_env={"KERNEL_WORKING_DIR": "/srv"})
    assert resolve(kernel, gateway).working_dir == "/srv"


def test_images(gateway):
    with pytest.raises(LaunchRefused, match="KERNEL_IMAGE may not be set"):
        resolve(make_kernel(env={"KERNEL_IMAGE": "other:1"}), gateway)
    allowed = {"allowed_images": ["eg/*"]}
    assert resolve(make_kernel(config=allowed, env={"KERNEL_IMAGE": "eg/kernel-r:2"}), gateway).image == "eg/kernel-r:2"
    with pytest.raises(LaunchRefused, match="not among the images allowed"):
        resolve(make_kernel(config=allowed, env={"KERNEL_IMAGE": "evil/x:1"}), gateway)
    with pytest.raises(BadRequest, match="no image"):
        resolve(make_kernel(config={"image_name": ""}), gateway)
    with pytest.raises(BadRequest, match="not a valid Docker image"):
        resolve(make_kernel(config={"image_name": "bad image"}), gateway)


def test_sizes_and_limits():
    assert parse_size("512m") == 512 * 1024**2
    assert parse_size("2G") == 2 * 1024**3
    assert parse_size("1Gi") == 1024**3
    assert parse_size("1.5gb") == int(1.5 * 1024**3)
    assert parse_size(1000) == 1000
    settings = DockerSettings(max_memory="1g", max_cpus=2.0)
    kc = resolve(make_kernel(env={"KERNEL_MEMORY": "1g", "KERNEL_CPUS": "2"}), settings)
    assert kc.memory == 1024**3 and kc.cpus == 2.0
    with pytest.raises(LaunchRefused, match="exceeds the limit"):
        resolve(make_kernel(env={"KERNEL_MEMORY": "2g"}), settings)
    with pytest.raises(LaunchRefused, match="exceeds the limit"):
        resolve(make_kernel(env={"KERNEL_CPUS": "3"}), settings)
    # the operator's own kernelspec values are not capped by the request limits
    assert resolve(make_kernel(config={"memory": "4g"}), settings).memory == 4 * 1024**3


def test_volumes(gateway):
    config = {"volumes": ["/data:/data:ro", "scratch:/scratch", {"source": "/home/a", "target": "/home/a", "read_only": "true"}]}
    kc = resolve(make_kernel(config=config), gateway)
    assert kc.mounts == [
        {"Type": "bind", "Source": "/data", "Target": "/data", "ReadOnly": True},
        {"Type": "volume", "Source": "scratch", "Target": "/scratch", "ReadOnly": False},
        {"Type": "bind", "Source": "/home/a", "Target": "/home/a", "ReadOnly": True},
    ]
    for bad in (["/a:/b:rx"], ["/a"], [{"source": "/a", "target": "b"}], [{"source": "x", "target": "/b", "type": "tmpfs"}], "{}"):
        with pytest.raises(BadRequest):
            resolve(make_kernel(config={"volumes": bad}), gateway)


@pytest.mark.parametrize(
    "value,device_request",
    [
        ("all", {"Driver": "", "Capabilities": [["gpu"]], "Count": -1}),
        ("2", {"Driver": "", "Capabilities": [["gpu"]], "Count": 2}),
        ("0,1", {"Driver": "", "Capabilities": [["gpu"]], "DeviceIDs": ["0", "1"]}),
        ("GPU-3a5b", {"Driver": "", "Capabilities": [["gpu"]], "DeviceIDs": ["GPU-3a5b"]}),
    ],
)
def test_gpus(gateway, value, device_request):
    assert resolve(make_kernel(env={"KERNEL_GPUS": value}), gateway).gpus == device_request


def test_labels_cannot_forge_identity(gateway):
    kc = resolve(make_kernel(config={"labels": {"team": "a"}}), gateway)
    assert kc.labels["team"] == "a" and kc.labels["kernel_id"] == "6f1c2a64-8d4e-4f7a-9a61-0f2b7d7c9e11"
    for key in ("kernel_id", "app", "component", "eg.gateway"):
        with pytest.raises(BadRequest, match="cannot be overridden"):
            resolve(make_kernel(config={"labels": {key: "x"}}), gateway)


def test_swarm_mode_from_eg_class_name(gateway):
    metadata = {"process_proxy": {"class_name": "enterprise_gateway.services.processproxies.docker_swarm.DockerSwarmProcessProxy"}}
    assert resolve(make_kernel(metadata=metadata), gateway).mode == "swarm"
    with pytest.raises(BadRequest, match="config.mode is not valid.*container"):
        resolve(make_kernel(config={"mode": "kubernetes"}), gateway)


def test_remote_engine_addresses():
    settings = DockerSettings(docker_host="tcp://10.0.0.5:2375")
    kc = resolve(make_kernel(), settings)
    assert kc.host == "10.0.0.5" and kc.bind_ip == "0.0.0.0"


def test_container_and_service_bodies(gateway):
    kernel = make_kernel(config={"memory": "256m", "cpus": "1.5", "working_dir": "/work", "volumes": ["/d:/d"]}, env={"KERNEL_X": "1"})
    kc = resolve(kernel, gateway)
    argv = ["python", "/l.py", "--kernel-id", "{kernel_id}", "--ip", "{kernel_bind_ip}"]
    cmd = container_command(kernel, kc, argv)
    assert cmd == ["python", "/l.py", "--kernel-id", kernel.kernel_id, "--ip", "127.0.0.1"]
    env = container_env(kernel, kc, argv, "secret-key")
    assert env["EG_LAUNCH_KEY_FILE"] == "/tmp/eg-launch.key" and "secret-key" not in env.values() and env["KERNEL_X"] == "1" and env["KERNEL_UID"] == "1000"
    assert "RESPONSE_ADDRESS" not in env
    config = container_config(kc, cmd, ["A=1"])
    assert config["HostConfig"]["Memory"] == 256 * 1024**2 and config["HostConfig"]["NanoCpus"] == 1_500_000_000
    assert config["HostConfig"]["GroupAdd"] == ["100"] and config["User"] == "1000:100"
    assert config["WorkingDir"] == "/work" and config["Cmd"] == cmd and "Hostname" not in config
    spec = service_spec(kc, cmd, ["A=1"])
    assert spec["TaskTemplate"]["ContainerSpec"]["Args"] == cmd
    assert spec["TaskTemplate"]["Resources"]["Limits"] == {"NanoCPUs": 1_500_000_000, "MemoryBytes": 256 * 1024**2}
    assert spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "none"


def test_enterprise_gateway_argv_uses_the_image_command(gateway):
    kernel = make_kernel()
    kc = resolve(kernel, gateway)
    argv = ["python", "/k/scripts/launch_docker.py", "--RemoteProcessProxy.kernel-id", kernel.kernel_id,
            "--RemoteProcessProxy.port-range", "40000..41000"]
    assert uses_image_command(kernel, argv) and container_command(kernel, kc, argv) is None
    env = container_env(kernel, kc, argv, None)
    assert env["PORT_RANGE"] == "40000..41000" and env["KERNEL_ID"] == kernel.kernel_id and "EG_LAUNCH_KEY" not in env


def test_client_helpers():
    assert split_image("eg/kernel-py:local") == ("eg/kernel-py", "local")
    assert split_image("localhost:5000/img") == ("localhost:5000/img", "latest")
    assert split_image("img@sha256:abc") == ("img@sha256:abc", "")


def test_enterprise_gateway_kernelspecs_get_the_legacy_launcher_by_default(gateway):
    eg_spec = {"process_proxy": {"class_name": "enterprise_gateway.services.processproxies.docker_swarm.DockerProcessProxy"}}
    assert resolve(make_kernel(metadata=eg_spec), gateway).legacy_launcher is True
    assert resolve(make_kernel(metadata=eg_spec, config={"legacy_launcher": False}), gateway).legacy_launcher is False
    assert resolve(make_kernel(), gateway).legacy_launcher is False
    assert resolve(make_kernel(config={"legacy_launcher": "true"}), gateway).legacy_launcher is True
    with pytest.raises(BadRequest, match="legacy_launcher must be true or false"):
        resolve(make_kernel(config={"legacy_launcher": "sometimes"}), gateway)


def test_requested_resources_are_what_the_container_will_ask(gateway):
    from eg_docker._settings import requested_resources

    kernel = make_kernel(config={"cpus": "2", "memory": "1g"}, env={"KERNEL_GPUS": "1"})
    assert requested_resources(resolve(kernel, gateway)) == {"cpus": 2.0, "memory": 1024**3, "gpus": 1.0}
    assert requested_resources(resolve(make_kernel(env={"KERNEL_CPUS": "0.5"}), gateway)) == {"cpus": 0.5, "memory": 0.0, "gpus": 0.0}
    assert requested_resources(resolve(make_kernel(env={"KERNEL_GPUS": "0,1"}), gateway))["gpus"] == 2.0
    assert requested_resources(resolve(make_kernel(env={"KERNEL_GPUS": "all"}), gateway))["gpus"] == float("inf")
