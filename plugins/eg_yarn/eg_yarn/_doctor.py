"""``eg-gateway doctor`` for YARN: each YARN kernelspec's settings are valid, its ResourceManager
answers (with the configured authentication) and has its queue, and its submit command exists."""

from __future__ import annotations

import os
import shutil

from eg_core import EGError
from eg_core.doctor import Check, each_kernelspec

from ._capacity import find_queue
from ._rm import RMClient
from ._settings import resolve


def _submit_command(kernel) -> Check | None:
    argv = kernel.spec.get("argv") or []
    if not argv:
        return Check(f"kernelspec {kernel.kernel_name}", False, "its argv is empty", "give it the submit command (run.sh)")
    program = argv[0]
    if "{resource_dir}" in program:  # the kernelspec's own script: it ships with it
        program = ""
    elif os.path.isabs(program) and not os.access(program, os.X_OK):
        return Check(f"kernelspec {kernel.kernel_name}", False, f"{program} is not an executable file", "install it, or fix the kernelspec's argv")
    elif program and not os.path.isabs(program) and shutil.which(program) is None:
        return Check(f"kernelspec {kernel.kernel_name}", False, f"{program} is not on PATH", "install it, or fix the kernelspec's argv")
    spark_home = (kernel.spec.get("env") or {}).get("SPARK_HOME") or os.environ.get("SPARK_HOME")
    if spark_home and not os.access(os.path.join(spark_home, "bin", "spark-submit"), os.X_OK):
        return Check(f"kernelspec {kernel.kernel_name}", False, f"no spark-submit in SPARK_HOME {spark_home}",
                     "set SPARK_HOME in the kernelspec's env to a Spark distribution")
    return None


async def checks(kernels) -> list[Check]:
    found: list[Check] = []
    answered: dict[tuple, str | None] = {}  # (endpoints, kerberos) -> why the RM does not answer
    for kernel in kernels:
        kernel.env = {}
    for kernel, what, launch in each_kernelspec(kernels, resolve, found, "fix the kernelspec's config or YarnSettings"):
        rm = RMClient(launch)
        key = (launch.endpoints, launch.kerberos)
        try:
            scheduler = await rm.scheduler()
        except EGError as exc:
            if key not in answered:
                found.append(Check(f"ResourceManager {', '.join(launch.endpoints) or '(yarn-site.xml)'}", False, exc.message,
                                   "start the ResourceManager, or set YarnSettings.yarn_endpoint / alt_yarn_endpoint"
                                   + (" (and kinit for the gateway's principal)" if launch.kerberos else "")))
            answered[key] = exc.message
            continue
        if key not in answered:
            found.append(Check(f"ResourceManager {rm.endpoint}", True, "answers"))
            answered[key] = None
        queue = launch.queue or "default"
        if scheduler["scheduler"]["schedulerInfo"].get("type") == "capacityScheduler" and find_queue(scheduler, queue) is None:
            found.append(Check(what, False, f"queue {queue!r} does not exist", "set the kernelspec's or YarnSettings' queue"))
            continue
        problem = _submit_command(kernel) if launch.submission == "spark-submit" else None
        found.append(problem or Check(what, True, f"{launch.submission} to queue {queue!r}"))
    return found
