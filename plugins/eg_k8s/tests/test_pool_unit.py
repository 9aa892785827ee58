"""A warm pool's pod kernel without a cluster: its marks, which requests it fits, and how the
orphan sweep judges a waiting pod."""

from __future__ import annotations

import json
import os
import socket

from eg_core import KernelContext, procinfo
from eg_k8s import _pool as pool
from eg_k8s._manifest import build
from eg_k8s._request import resolve

KERNEL_ID = "0b7a6d4e-6f5a-4c47-9a0e-2f8a1c9b3d21"


def kernel(user="root", env=None, config=None, pooled=False, kernel_id=KERNEL_ID):
    k = KernelContext(
        kernel_id=kernel_id, kernel_name="python_kubernetes", resource_manager="k8s", spec={"env": {}, "resource_dir": "/nonexistent"},
        config={"image_name": "eg/kernel-py:local", **(config or {})}, env=env or {}, user=user,
    )
    k.pooled = pooled
    return k


def test_a_waiting_pod_and_its_secret_carry_the_pools_marks_and_a_claimed_one_none():
    k = kernel(pooled=True)
    pod = build(k, resolve(k), None, {}, "s")["Pod"]
    assert pod["metadata"]["labels"][pool.LABEL_POOL] == "python_kubernetes"
    assert pod["metadata"]["labels"][pool.LABEL_HOLDER] == pool.HOLDER
    assert json.loads(pod["metadata"]["annotations"][pool.ANNOTATION_HOLDER])["pid"] == os.getpid()
    k.pooled = False
    pod = build(k, resolve(k), None, {}, "s")["Pod"]
    assert pool.LABEL_POOL not in pod["metadata"]["labels"] and pool.ANNOTATION_HOLDER not in pod["metadata"]["annotations"]


def test_a_request_fits_a_waiting_pod_when_its_pod_would_be_the_same():
    request = kernel(user="alice", env={"KERNEL_USERNAME": "alice"}, kernel_id="1b7a6d4e-6f5a-4c47-9a0e-2f8a1c9b3d21")
    request.cwd = "/home/alice"
    assert pool.misfit(kernel(pooled=True), request) is None
    assert request.cwd is None  # the pod's working directory is its own


def test_a_per_user_namespace_or_a_named_pod_is_a_miss():
    config = {"namespace_mode": "per-user"}
    request = kernel(user="alice", config=config)
    assert "namespace" in pool.misfit(kernel(pooled=True, config=config), request)
    assert pool.misfit(kernel(pooled=True, config=config), kernel(user="root", config=config)) is None
    named = kernel(user="alice", env={"KERNEL_POD_NAME": "mine"})
    assert "KERNEL_POD_NAME" in pool.misfit(kernel(pooled=True), named)


def test_a_request_the_launch_would_refuse_is_a_miss():
    refused = kernel(user="alice", env={"KERNEL_UID": "0"})
    assert "not accepted" in pool.misfit(kernel(pooled=True), refused)


def waiting_pod(holder: str, identity: dict) -> dict:
    return {"metadata": {"labels": {pool.LABEL_POOL: "p", pool.LABEL_HOLDER: holder},
                         "annotations": {pool.ANNOTATION_HOLDER: json.dumps(identity)}}}


def test_the_sweep_knows_whose_waiting_pod_it_sees():
    assert pool.waiting_verdict({"metadata": {"labels": {}}}) is None
    assert pool.waiting_verdict(waiting_pod(pool.HOLDER, procinfo.identity())) == "ours"
    parent = os.getppid()
    live = {"host": socket.gethostname(), "pid": parent, "started": procinfo.start_time(parent)}
    assert pool.waiting_verdict(waiting_pod("other", live)) == "live"
    assert pool.waiting_verdict(waiting_pod("other", {**live, "started": -1})) == "dead"
    assert pool.waiting_verdict(waiting_pod("other", {**live, "host": "another-host"})) == "elsewhere"
