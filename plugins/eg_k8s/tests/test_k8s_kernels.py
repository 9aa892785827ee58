"""eg-k8s against a real Kubernetes control plane and node: kernels as pods, end to end.

Kernel pods are created by a real eg-gateway process on the cluster ci/setup.sh runs; Jupyter
Server (``--gateway-url``) is the client where the issue asks for it. Every test that creates
something checks, by label, that nothing is left behind.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest

from eg_core import Phase
from eg_core.testing import KernelSocket, places_with, wait_until_busy

from k8s_helpers import left_behind, pod_of

pytestmark = pytest.mark.timeout(300)


async def start(http, name: str, env: dict | None = None):
    return await http.post("/api/kernels", json={"name": name, **({"env": env} if env else {})})


async def test_python_kubernetes_kernelspec_ships_with_the_plugin(http):
    r = await http.get("/api/kernelspecs")
    assert r.status_code == 200, r.text
    specs = r.json()["kernelspecs"]
    assert "python_kubernetes" in specs, sorted(specs)
    assert specs["python_kubernetes"]["spec"]["metadata"]["kernel_provisioner"]["provisioner_name"] == "eg-k8s"


async def test_kernel_in_a_pod_runs_code_and_leaves_nothing(gateway, http, core, namespace, gateway_id):
    r = await start(http, "python_kubernetes")
    assert r.status_code == 201, f"{r.text}\n{gateway.output()[-4000:]}"
    kid = r.json()["id"]
    pod = await pod_of(core, namespace, kid)
    assert pod is not None and pod.status.phase == "Running"
    assert pod.metadata.labels["kernel_id"] == kid
    assert pod.metadata.labels["app"] == "enterprise-gateway" and pod.metadata.labels["component"] == "kernel"
    assert pod.metadata.labels["eg.jupyter.org/gateway"] == gateway_id
    env = {e.name: e for e in pod.spec.containers[0].env}
    assert "EG_LAUNCH_KEY" in env and env["EG_LAUNCH_KEY"].value is None, "the launch key must come from a Secret, not the pod spec"
    ks = await KernelSocket.connect(gateway, kid)
    try:
        out = await ks.execute("import socket, os; print(os.environ['KERNEL_ID'], os.environ['KERNEL_NAMESPACE'])")
        assert out["stdout"] == f"{kid} {namespace}\n", out
    finally:
        await ks.close()
    r = await http.delete(f"/api/kernels/{kid}")
    assert r.status_code == 204, r.text
    assert await left_behind(core, namespace, kid) == {}


@pytest.mark.parametrize("name, code, output", [
    ("k8s_eg_proxy", "print(1+1)", "2\n"),
    # EG's R_kubernetes with eg's R image: bootstrap-kernel.sh starts IRkernel (KERNEL_LANGUAGE=r)
    ("eg_R_kubernetes", 'cat(R.version$language, "\\n")', "R \n"),
], ids=["python", "irkernel"])
async def test_enterprise_gateway_kubernetes_kernelspec_works_unchanged(gateway, http, core, namespace, name, code, output):
    """KubernetesProcessProxy + launch_kubernetes.py argv: the image's bootstrap-kernel.sh starts
    the kernel from EG's environment contract (RESPONSE_ADDRESS, PUBLIC_KEY, PORT_RANGE...)."""
    r = await start(http, name)
    assert r.status_code == 201, f"{r.text}\n{gateway.output()[-4000:]}"
    kid = r.json()["id"]
    try:
        pod = await pod_of(core, namespace, kid)
        assert pod.spec.containers[0].command is None, "EG kernelspecs run the image's own command"
        names = {e.name for e in pod.spec.containers[0].env}
        assert {"RESPONSE_ADDRESS", "PUBLIC_KEY", "PORT_RANGE", "KERNEL_ID", "KERNEL_POD_NAME", "KERNEL_NAMESPACE",
                "KERNEL_SERVICE_ACCOUNT_NAME", "KERNEL_IMAGE"} <= names
        ks = await KernelSocket.connect(gateway, kid)
        try:
            assert (await ks.execute(code))["stdout"] == output
        finally:
            await ks.close()
    finally:
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert await left_behind(core, namespace, kid) == {}


async def test_launch_progress_is_logged_and_emitted(gateway, http):
    r = await start(http, "python_kubernetes")
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    await http.delete(f"/api/kernels/{kid}")
    log = gateway.output()
    steps = [json.loads(line[line.index("{"):])["details"]["step"] for line in log.splitlines()
             if '"event":"progress"' in line.replace(" ", "") and kid in line]
    steps = [step for step in steps if step not in Phase.ALL]  # the core's phases are progress events too
    assert steps[:1] == ["scheduled"] and "started" in steps, f"{steps}\n{log[-3000:]}"


# -- failures: fast, named, nothing left -----------------------------------------------------------


async def failed_launch(http, core, namespace, name: str, env: dict | None = None):
    """Start a kernel that must fail; returns (status, body, seconds) after checking that
    nothing labelled with its id is left. A 502 naming the phase (not the launch timeout's 504)
    shows it failed on the cluster's reason, not by waiting."""
    kernel_id = __import__("uuid").uuid4()
    started = time.monotonic()
    r = await start(http, name, {"KERNEL_ID": str(kernel_id), **(env or {})})
    took = time.monotonic() - started
    body = r.json()
    assert await left_behind(core, namespace, str(kernel_id)) == {}, f"left behind after {body}"
    return r.status_code, body, took


async def test_image_not_present_with_pull_policy_never_fails_in_image_pull(gateway, http, core, namespace):
    status, body, _ = await failed_launch(http, core, namespace, "k8s_never_pull")
    assert status == 502, body
    assert body["message"].startswith("image_pull:") and "ErrImageNeverPull" in body["message"], body


async def test_image_not_pullable_fails_in_image_pull(gateway, http, core, namespace):
    status, body, _ = await failed_launch(http, core, namespace, "k8s_unpullable")
    assert status == 502, body
    assert body["message"].startswith("image_pull:"), body
    assert "ErrImagePull" in body["message"] or "ImagePullBackOff" in body["message"], body


async def test_unschedulable_pod_fails_in_schedule_with_the_schedulers_message(gateway, http, core, namespace):
    status, body, _ = await failed_launch(http, core, namespace, "k8s_unschedulable")
    assert status == 502, body
    assert body["message"].startswith("schedule:") and "node(s) didn't match" in body["message"], body


async def test_container_exiting_at_start_reports_its_last_log_lines(gateway, http, core, namespace):
    status, body, _ = await failed_launch(http, core, namespace, "k8s_crash_at_start")
    assert status == 502, body
    assert body["message"].startswith("confirm_startup:") and "exited with status 3" in body["message"], body
    assert "no module named nope" in body["message"], body


async def test_launch_timeout_leaves_nothing(gateway, http, core, namespace):
    status, body, _ = await failed_launch(http, core, namespace, "k8s_never_calls_back", {"KERNEL_LAUNCH_TIMEOUT": "8"})
    assert status == 504, body
    assert body["message"].startswith("confirm_startup:"), body


# -- the pod the operator declares, and what requests may change -------------------------------------


async def test_overlay_and_allowed_request_values_shape_the_pod(gateway, http, core, namespace):
    volumes = json.dumps([{"name": "settings", "configMap": {"name": "kernel-settings", "optional": True}}])
    mounts = json.dumps([{"name": "settings", "mountPath": "/etc/settings"}])
    r = await start(http, "k8s_overlay", {"KERNEL_CPUS": "100m", "KERNEL_MEMORY": "256Mi", "KERNEL_VOLUMES": volumes,
                                          "KERNEL_VOLUME_MOUNTS": mounts, "KERNEL_UID": "1000", "KERNEL_GID": "100"})
    assert r.status_code == 201, f"{r.text}\n{gateway.output()[-3000:]}"
    kid = r.json()["id"]
    try:
        pod = await pod_of(core, namespace, kid)
        spec, container = pod.spec, pod.spec.containers[0]
        assert spec.node_selector == {"kubernetes.io/hostname": "eg-k8s-node"}
        assert any(t.key == "example.com/gpu-node" for t in spec.tolerations)
        assert pod.metadata.annotations["example.com/team"] == "data"
        assert pod.metadata.labels["example.com/tier"] == "notebooks"
        assert container.resources.requests == {"cpu": "100m", "memory": "256Mi"}
        assert container.resources.limits == {"memory": "1Gi"}
        assert {v.name for v in spec.volumes} >= {"scratch", "settings", "dshm"}
        shm = next(v for v in spec.volumes if v.name == "dshm")
        assert shm.empty_dir.medium == "Memory" and shm.empty_dir.size_limit == "64Mi"
        assert {m.mount_path for m in container.volume_mounts} >= {"/scratch", "/etc/settings", "/dev/shm"}
        assert spec.security_context.run_as_user == 1000 and spec.security_context.run_as_group == 100
        ks = await KernelSocket.connect(gateway, kid)
        try:
            out = await ks.execute("import os; print(os.getuid(), os.environ['EG_OVERLAY'], os.path.isdir('/scratch'))")
            assert out["stdout"] == "1000 yes True\n", out
        finally:
            await ks.close()
    finally:
        await http.delete(f"/api/kernels/{kid}")
    assert await left_behind(core, namespace, kid) == {}


@pytest.mark.parametrize("env, status, words", [
    ({"KERNEL_IMAGE": "evil/image:latest"}, 403, "KERNEL_IMAGE may not be set"),
    ({"KERNEL_NAMESPACE": "kube-system"}, 403, "KERNEL_NAMESPACE may not be set"),
    ({"KERNEL_SERVICE_ACCOUNT_NAME": "admin"}, 403, "KERNEL_SERVICE_ACCOUNT_NAME may not be set"),
    ({"KERNEL_GPUS": "1"}, 403, "KERNEL_GPUS may not be set"),
    ({"KERNEL_MEMORY": "lots"}, 400, "Kubernetes quantity"),
    ({"KERNEL_CPUS": "-1"}, 400, "Kubernetes quantity"),
    ({"KERNEL_UID": "0"}, 403, "denied via EG_PROHIBITED_UIDS"),
    ({"KERNEL_VOLUMES": '[{"name": "root", "hostPath": {"path": "/"}}]'}, 403, "'hostPath'"),
    ({"KERNEL_VOLUMES": "not: [a list"}, 400, "KERNEL_VOLUMES must be"),
    ({"KERNEL_VOLUME_MOUNTS": '[{"name": "x", "mountPath": "relative"}]'}, 400, "absolute 'mountPath'"),
])
async def test_request_values_are_checked_before_anything_is_created(gateway, http, core, namespace, env, status, words):
    got, body, _ = await failed_launch(http, core, namespace, "k8s_overlay", env)
    assert got == status, body
    assert set(body) >= {"reason", "message"} and words in body["message"], body


INJECTION = 'mallory" ]: {kind: Secret} # '


async def test_enterprise_gateway_pod_template_with_a_config_map(gateway, http, core, namespace):
    r = await start(http, "k8s_template", {"KERNEL_CPUS": "50m", "KERNEL_USERNAME": INJECTION})
    assert r.status_code == 201, f"{r.text}\n{gateway.output()[-3000:]}"
    kid = r.json()["id"]
    try:
        pod = await pod_of(core, namespace, kid)
        assert pod.metadata.labels["source"] == "kernel-pod.yaml"
        assert pod.spec.containers[0].resources.requests == {"cpu": "50m"}
        cms = await asyncio.to_thread(core.list_namespaced_config_map, namespace, label_selector=f"kernel_id={kid}")
        assert len(cms.items) == 1
        cm = cms.items[0]
        assert cm.data == {"owner": INJECTION}, "a template value must stay one YAML scalar"
        assert cm.metadata.owner_references[0].uid == pod.metadata.uid
        ks = await KernelSocket.connect(gateway, kid)
        try:
            out = await ks.execute("import os; print(os.environ['FROM_TEMPLATE'], open('/etc/kernel-settings/owner').read())")
            assert out["stdout"] == f"template-value {INJECTION}\n", out
        finally:
            await ks.close()
    finally:
        await http.delete(f"/api/kernels/{kid}")
    assert await left_behind(core, namespace, kid) == {}


# -- namespaces --------------------------------------------------------------------------------------


async def test_per_kernel_namespace_with_role_binding_is_deleted_at_shutdown(gateway, http, core, api):
    from kubernetes import client

    r = await start(http, "k8s_per_kernel", {"KERNEL_USERNAME": "bob"})
    assert r.status_code == 201, f"{r.text}\n{gateway.output()[-3000:]}"
    kid = r.json()["id"]
    ns = f"bob-{kid}"
    namespace = await asyncio.to_thread(core.read_namespace, ns)
    assert namespace.metadata.labels["kernel_id"] == kid
    binding = await asyncio.to_thread(client.RbacAuthorizationV1Api(api).read_namespaced_role_binding, "eg-kernel", ns)
    assert binding.role_ref.name == "view" and binding.subjects[0].name == "default"
    deadline = time.monotonic() + 60  # the kubelet reports Running after the kernel may already answer
    while (await pod_of(core, ns, kid)).status.phase != "Running":
        assert time.monotonic() < deadline, (await pod_of(core, ns, kid)).status
        await asyncio.sleep(0.5)
    assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    namespace = await asyncio.to_thread(core.list_namespace, field_selector=f"metadata.name={ns}")
    assert not namespace.items or namespace.items[0].status.phase == "Terminating"


async def test_per_user_namespace_lives_while_the_user_has_kernels(gateway, http, core):
    first = await start(http, "k8s_per_user", {"KERNEL_USERNAME": "carol"})
    assert first.status_code == 201, f"{first.text}\n{gateway.output()[-3000:]}"
    second = await start(http, "k8s_per_user", {"KERNEL_USERNAME": "carol"})
    assert second.status_code == 201, second.text
    ns = "eg-test-user-carol"
    assert {p.metadata.labels["kernel_id"] for p in (await asyncio.to_thread(core.list_namespaced_pod, ns)).items} == {
        first.json()["id"], second.json()["id"]}
    await http.delete(f"/api/kernels/{first.json()['id']}")
    assert (await asyncio.to_thread(core.read_namespace, ns)).status.phase == "Active"
    await http.delete(f"/api/kernels/{second.json()['id']}")
    namespace = await asyncio.to_thread(core.list_namespace, field_selector=f"metadata.name={ns}")
    assert not namespace.items or namespace.items[0].status.phase == "Terminating"


async def test_a_users_next_kernel_races_the_deletion_of_their_namespace(gateway, http, core):
    """Shutting down a user's last kernel deletes their namespace; a launch for the same user
    right after, or at the same time, gets a working kernel in a namespace that exists."""
    env = {"KERNEL_USERNAME": "dave"}
    ns = "eg-test-user-dave"

    async def works(r) -> str:
        assert r.status_code == 201, f"{r.text}\n{gateway.output()[-3000:]}"
        kid = r.json()["id"]
        ks = await KernelSocket.connect(gateway, kid)
        try:
            assert (await ks.execute("import os; print(os.environ['KERNEL_NAMESPACE'])"))["stdout"] == f"{ns}\n"
        finally:
            await ks.close()
        return kid

    async def later(delay: float, request):  # not for ordering: each round meets the shutdown elsewhere
        await asyncio.sleep(delay)
        return await request

    kid = await works(await start(http, "k8s_per_user", env))
    for round in range(6):
        if round % 2:  # the next launch while the shutdown runs, at a different point each time
            deleted, r = await asyncio.gather(http.delete(f"/api/kernels/{kid}"), later(0.2 * round, start(http, "k8s_per_user", env)))
        else:  # the next launch as soon as the shutdown is answered
            deleted = await http.delete(f"/api/kernels/{kid}")
            r = await start(http, "k8s_per_user", env)
        assert deleted.status_code == 204, deleted.text
        assert await left_behind(core, ns, kid) == {}
        kid = await works(r)
        assert (await asyncio.to_thread(core.read_namespace, ns)).status.phase == "Active"
    assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    namespace = await asyncio.to_thread(core.list_namespace, field_selector=f"metadata.name={ns}")
    assert not namespace.items or namespace.items[0].status.phase == "Terminating"


# -- restart, interrupt ------------------------------------------------------------------------------


async def test_restart_keeps_the_id_with_a_new_pod_and_interrupt_works(gateway, http, core, namespace):
    r = await start(http, "python_kubernetes")
    assert r.status_code == 201, r.text
    kid = r.json()["id"]
    try:
        before = await pod_of(core, namespace, kid)
        r = await http.post(f"/api/kernels/{kid}/restart")
        assert r.status_code == 200 and r.json()["id"] == kid, r.text
        after = await pod_of(core, namespace, kid)
        assert after.metadata.uid != before.metadata.uid and after.metadata.name == before.metadata.name
        ks = await KernelSocket.connect(gateway, kid)
        try:
            msg_id = await ks.request("execute_request", {"code": "import time; time.sleep(60)", "silent": False})
            await wait_until_busy(http, kid)
            assert (await http.post(f"/api/kernels/{kid}/interrupt")).status_code == 204
            while True:
                msg = await ks.recv(timeout=30)
                if msg["parent_header"].get("msg_id") == msg_id and msg["header"]["msg_type"] == "execute_reply":
                    break
            assert msg["content"]["ename"] == "KeyboardInterrupt", msg["content"]
        finally:
            await ks.close()
    finally:
        await http.delete(f"/api/kernels/{kid}")
    assert await left_behind(core, namespace, kid) == {}


async def test_launch_key_is_in_the_kernels_secret_only(gateway, http, api, core, namespace):
    """The pod spec references the key (secretKeyRef); its value is in the kernel's Secret only,
    which exists while the kernel runs and is deleted with it (this gateway's copy of the key). Nothing else the API shows (the
    pod, its annotations, services, config maps, events) holds it, nor does the kernel."""
    r = await start(http, "k8s_launcher")  # eg's launcher, which calls back signed with the key
    assert r.status_code == 201, f"{r.text}\n{gateway.output()[-4000:]}"
    kid = r.json()["id"]
    try:
        selector = f"kernel_id={kid}"
        secrets = (await asyncio.to_thread(core.list_namespaced_secret, namespace, label_selector=selector)).items
        [key] = [base64.b64decode(s.data["launch-key"]).decode() for s in secrets if (s.data or {}).get("launch-key")]
        pod = await pod_of(core, namespace, kid)
        [ref] = [e.value_from.secret_key_ref for e in pod.spec.containers[0].env if e.name == "EG_LAUNCH_KEY"]
        assert ref.name in {s.metadata.name for s in secrets}
        shown = {
            "pod": api.sanitize_for_serialization(pod),
            "services": api.sanitize_for_serialization(await asyncio.to_thread(core.list_namespaced_service, namespace)),
            "config maps": api.sanitize_for_serialization(await asyncio.to_thread(core.list_namespaced_config_map, namespace)),
            "events": api.sanitize_for_serialization(await asyncio.to_thread(core.list_namespaced_event, namespace)),
            "gateway log": gateway.output(),
        }
        assert places_with(key, **shown) == []
        ks = await KernelSocket.connect(gateway, kid)
        try:
            out = await ks.execute("import os; print([k for k in os.environ if k.startswith('EG_LAUNCH')])")
            assert out["stdout"] == "[]\n", out
        finally:
            await ks.close()
    finally:
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
    assert "secrets" not in await left_behind(core, namespace, kid)
