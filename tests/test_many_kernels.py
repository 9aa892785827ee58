"""No limit below the OS's: a gateway started with a low soft open-files limit raises it to the
hard one, and holds several hundred kernels (the tiny test kernel) with descriptors past
select()'s 1024, still starting the next one."""

from __future__ import annotations

import asyncio
import resource

import psutil

from eg_core.testing import KernelSocket

MAX_KERNELS = 600  # an idle tiny kernel holds 3 descriptors: about 340 cross 1024


def open_files_limits(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/limits") as f:
        line = next(l for l in f if l.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    return int(soft), int(hard)


async def test_hundreds_of_kernels_past_descriptor_1024(gateway_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    try:
        gw = gateway_factory("--Gateway.default_kernel_name=tiny")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert open_files_limits(gw.proc.pid)[0] == open_files_limits(gw.proc.pid)[1]

    async with gw.client() as http:
        async def start() -> str:
            r = await http.post("/api/kernels", json={})
            assert r.status_code == 201, r.text
            return r.json()["id"]

        ids: list[str] = []
        while psutil.Process(gw.proc.pid).num_fds() <= 1024:
            assert len(ids) < MAX_KERNELS
            ids += await asyncio.gather(*(start() for _ in range(20)))
        last = await start()
        ks = await KernelSocket.connect(gw, last)
        try:
            assert (await ks.execute("hello"))["reply"]["status"] == "ok"
        finally:
            await ks.close()
        assert len((await http.get("/api/kernels")).json()) == len(ids) + 1
