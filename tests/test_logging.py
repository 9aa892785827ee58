"""Logs an operator can read: one line per failed launch (ERROR) or refusal (WARNING), the kernel
id on every line about a kernel, slow phases logged as they happen, and JSON lines on demand."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.timeout(180)


def lines_about(output: str, kernel_id: str) -> list[str]:
    return [line for line in output.splitlines() if kernel_id in line and "eg.events" not in line]


def problem_lines(output: str, kernel_id: str) -> list[str]:
    """WARNING and ERROR lines about the kernel or its request (not other plugins' startup notes)."""
    return [
        line for line in output.splitlines()
        if re.match(r"\[[WE] ", line) and (kernel_id in line or "eg.access]" in line)
    ]


async def test_failed_launch_is_one_error_line(gateway_factory):
    gw = gateway_factory()
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "crash_at_start", "env": {"KERNEL_ID": "0b9a4c1e-1111-4f7a-9a61-0f2b7d7c9e11"}})
        assert r.status_code == 502
        await http.get("/api")  # a later request: the failure's lines are all written
    output = gw.output()
    problems = problem_lines(output, "0b9a4c1e-1111-4f7a-9a61-0f2b7d7c9e11")
    assert len(problems) == 1, output
    line = problems[0]
    assert line.startswith("[E ") and "[kernel 0b9a4c1e-1111-4f7a-9a61-0f2b7d7c9e11]" in line
    assert "failed in phase kernel_info" in line and "boom: this kernel cannot start" in line
    assert "Traceback" not in output


async def test_refusal_over_a_limit_is_one_warning_line(gateway_factory):
    gw = gateway_factory("--KernelLimits.max_kernels=0", "--KernelLimits.max_kernels_per_user=0")
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python3", "env": {"KERNEL_ID": "7e5e7e5e-3333-4f7a-9a61-0f2b7d7c9e11"}})
        assert r.status_code == 403
        await http.get("/api")
    problems = problem_lines(gw.output(), "7e5e7e5e-3333-4f7a-9a61-0f2b7d7c9e11")
    assert len(problems) == 1 and problems[0].startswith("[W "), gw.output()
    assert "refused (403 Forbidden)" in problems[0] and "[kernel " in problems[0]
    assert "Traceback" not in gw.output()


async def test_slow_phase_is_logged_while_it_runs_and_lines_carry_the_kernel_id(gateway_factory):
    gw = gateway_factory()
    kernel_id = "5c0ffee0-2222-4f7a-9a61-0f2b7d7c9e11"
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "slow_start", "env": {"KERNEL_ID": kernel_id, "KERNEL_LAUNCH_TIMEOUT": "8"}})
        assert r.status_code == 504
        await http.get("/api")
    about = lines_about(gw.output(), kernel_id)
    assert any("kernel_info: still waiting for the kernel's kernel_info reply after 5s" in line for line in about), about
    assert sum(line.startswith("[E ") for line in about) == 1
    assert all(f"[kernel {kernel_id}]" in line for line in about if " eg] " in line)


async def test_json_log_format(gateway_factory):
    gw = gateway_factory("--log-format=json")
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 201
        kernel_id = r.json()["id"]
        assert (await http.delete(f"/api/kernels/{kernel_id}")).status_code == 204
    gw.stop()
    records = [json.loads(line) for line in gw.output().splitlines() if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    launched = [r for r in records if r["logger"] == "eg" and "launched python3" in r["message"]]
    assert launched and launched[0]["kernel_id"] == kernel_id and launched[0]["level"] == "INFO"
