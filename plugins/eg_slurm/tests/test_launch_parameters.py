"""The launch parameters a Slurm kernelspec publishes (``metadata.parameters``) are what its
request validation accepts: a kernel job of the real one-node cluster starts with every value
the schema offers (the allowed partition, the least and the most CPUs and memory), and every
value just outside is refused with a 4xx naming the variable, before anything is submitted."""

from __future__ import annotations

import subprocess

import pytest

from eg_core.testing import check_launch_parameters

pytestmark = pytest.mark.timeout(300)


async def test_every_published_value_starts_a_job_and_every_value_outside_is_refused(gateway_factory, kernel_jobs):
    gw = gateway_factory('--SlurmSettings.request_overrides=["cpus", "memory"]', '--SlurmSettings.allowed_partitions=["debug"]',
                         "--SlurmSettings.max_cpus=2", "--SlurmSettings.max_memory=1G")
    async with gw.client() as http:
        schema = await check_launch_parameters(http, "python_slurm_test")
    assert schema["properties"] == {
        "KERNEL_PARTITION": {"type": "string", "description": "Slurm partition of the kernel's job", "enum": ["debug"]},
        "KERNEL_CPUS": {"type": "integer", "description": "CPUs of the kernel's job (--cpus-per-task)", "minimum": 1, "maximum": 2},
        "KERNEL_MEMORY": {"type": "integer", "description": "Memory of the kernel's job in MB (--mem; 4G is accepted too)",
                          "minimum": 1, "maximum": 1024},
    }


async def test_request_values_reach_the_job_and_others_are_refused(gateway_factory):
    gw = gateway_factory('--SlurmSettings.request_overrides=["cpus"]', "--SlurmSettings.max_cpus=2")
    async with gw.client() as http:
        r = await http.post("/api/kernels", json={"name": "python_slurm_test", "env": {"KERNEL_CPUS": "2"}})
        assert r.status_code == 201, r.text
        kid = r.json()["id"]
        job = subprocess.run(["squeue", "--noheader", f"--name=eg-kernel-{kid}", "--format=%C"], capture_output=True, text=True).stdout
        assert job.strip() == "2", job
        assert (await http.delete(f"/api/kernels/{kid}")).status_code == 204
        r = await http.post("/api/kernels", json={"name": "python_slurm_test", "env": {"KERNEL_MEMORY": "512"}})
        assert r.status_code == 403 and "KERNEL_MEMORY may not be set" in r.json()["message"], r.text


async def test_resource_quotas_count_what_the_job_asks(gateway_factory):
    """KERNEL_MEMORY is MB for Slurm (--mem): the quota counts 800 MB, not 800 bytes."""
    gw = gateway_factory('--ResourceQuotas.per_user={"memory": "1Gi", "cpus": 3}', "--SlurmSettings.max_cpus=2")
    async with gw.client() as http:
        first = await http.post("/api/kernels", json={"name": "python_slurm_test", "env": {"KERNEL_MEMORY": "800", "KERNEL_CPUS": "2"}})
        assert first.status_code == 201, first.text
        r = await http.post("/api/kernels", json={"name": "python_slurm_test", "env": {"KERNEL_MEMORY": "300"}})
        assert r.status_code == 403 and "holds 0.78125 GiB of memory" in r.json()["message"], r.text
        r = await http.post("/api/kernels", json={"name": "python_slurm_test", "env": {"KERNEL_CPUS": "2"}})
        assert r.status_code == 403 and "holds 2 CPUs" in r.json()["message"], r.text
        assert (await http.delete(f"/api/kernels/{first.json()['id']}")).status_code == 204
