"""Launches that fail: each fails at once (or at the launch timeout) with the remote reason in
the error, and leaves no process on the remote host."""

from __future__ import annotations

import re
import time

from eg_ssh.testing import wait_no_processes

USER = "egtest"


async def launch(gw, name="python_ssh", **env):
    async with gw.client() as http:
        start = time.monotonic()
        r = await http.post("/api/kernels", json={"name": name, "env": env})
        return r, time.monotonic() - start


async def test_login_rejected_wrong_key(ssh_gateway, sshd):
    gw = ssh_gateway(client_keys=[str(sshd.wrong_key)])
    r, took = await launch(gw)
    assert r.status_code == 502, r.text
    message = r.json()["message"]
    assert message.startswith("launch_process: SSH login to egtest@127.0.0.1")
    assert "was rejected" in message and str(sshd.wrong_key) in message
    assert took < 5
    assert await wait_no_processes(USER) == []
    assert "BEGIN OPENSSH PRIVATE KEY" not in gw.output()


async def test_login_rejected_unknown_user(ssh_gateway):
    gw = ssh_gateway(user="nosuchuser")
    r, _ = await launch(gw)
    assert r.status_code == 502 and "SSH login to nosuchuser@127.0.0.1" in r.json()["message"], r.text


async def test_unknown_host_key(ssh_gateway, sshd, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    # a known_hosts file that knows only another host: 127.0.0.1's key is unknown
    known_hosts.write_text(sshd.known_hosts.read_text().splitlines()[1] + "\n")
    gw = ssh_gateway(known_hosts=str(known_hosts))
    r, took = await launch(gw)
    assert r.status_code == 502, r.text
    message = r.json()["message"]
    assert "host key of 127.0.0.1" in message and str(known_hosts) in message and "ssh-keyscan" in message
    assert took < 5
    # a changed key is refused too
    other = sshd.known_hosts.read_text().replace(f"[127.0.0.1]:{sshd.port}", "[127.0.0.9]:1")
    wrong_key = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} ssh-ed25519 {wrong_key}\n" + other)
    r, _ = await launch(gw)
    assert r.status_code == 502 and "host key of 127.0.0.1" in r.json()["message"], r.text
    # the unverifiable host is not skipped in favour of another one: that would hide the problem
    assert "skipping host" not in gw.output()


async def test_missing_known_hosts_file(ssh_gateway, tmp_path):
    gw = ssh_gateway(known_hosts=str(tmp_path / "nope"))
    r, _ = await launch(gw)
    assert r.status_code == 502 and "known_hosts file" in r.json()["message"] and "does not exist" in r.json()["message"], r.text


async def test_kernel_crashes_at_start(ssh_gateway):
    """The launcher's kernel exits at once (unknown kernel class): the launch fails as soon as
    the launcher ends, with the remote output in the error. (The launcher calls back as soon as
    the kernel process exists, so this fails in phase kernel_info, or in confirm_startup when
    the kernel dies before the callback is sent.)"""
    gw = ssh_gateway()
    r, took = await launch(gw, "ssh_crash")
    assert r.status_code == 502, r.text
    message = r.json()["message"]
    assert message.startswith(("kernel_info: the kernel exited (status 1)", "confirm_startup: the kernel launcher ended")), message
    assert re.search(r"the remote launcher \(pid \d+\) on egtest@127.0.0.1:\d+ exited with status 1", message), message
    assert "no_such_module" in message  # the kernel's own traceback, from the remote log
    assert took < 15
    assert await wait_no_processes(USER) == []


async def test_remote_python_missing(ssh_gateway):
    gw = ssh_gateway()
    r, took = await launch(gw, "ssh_no_python")
    assert r.status_code == 502, r.text
    message = r.json()["message"]
    assert "cannot start the kernel on egtest@127.0.0.1" in message and "/nonexistent/bin/python3" in message
    assert message.count("No such file or directory") == 1, message  # stated once
    assert took < 5


async def test_launch_timeout_when_nothing_calls_back(ssh_gateway):
    """A command that starts and never calls back: the launch fails at KERNEL_LAUNCH_TIMEOUT with
    what the gateway knows (started, no callback received), and the remote process is killed."""
    gw = ssh_gateway()
    r, took = await launch(gw, "ssh_sleep", KERNEL_LAUNCH_TIMEOUT="3")
    assert r.status_code == 504, r.text
    message = r.json()["message"]
    assert message.startswith("confirm_startup: no answer within the launch timeout of 3s")
    assert "started but has not called back" in message
    assert "received nothing" in message  # the response listener's account
    assert "sleeper started" in message  # the remote process's output, from its log
    assert 2.5 < took < 10
    assert await wait_no_processes(USER) == []


async def test_launcher_cannot_reach_the_gateway(ssh_gateway):
    """The launcher runs but cannot reach the response address: the error says so (from the
    launcher's stderr in the remote log), as soon as the launcher gives up."""
    gw = ssh_gateway()
    r, took = await launch(gw, "ssh_unreachable_gateway", KERNEL_LAUNCH_TIMEOUT="20")
    assert r.status_code == 502, r.text
    message = r.json()["message"]
    assert "cannot reach the gateway's response address 127.0.0.1:9" in message
    assert took < 10
    assert await wait_no_processes(USER) == []


async def test_launcher_killed_on_timeout_before_reaching_gateway(ssh_gateway):
    """Same launcher, shorter launch timeout: it is still retrying when the launch times out;
    the error tells that it started but never reached us, and it is killed."""
    gw = ssh_gateway()
    r, took = await launch(gw, "ssh_unreachable_gateway", KERNEL_LAUNCH_TIMEOUT="0.7")
    assert r.status_code == 504, r.text
    message = r.json()["message"]
    assert "started but has not called back" in message and "never reached the gateway" in message
    assert await wait_no_processes(USER) == []
