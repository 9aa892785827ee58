"""``eg-gateway doctor``: ask every plugin's ``eg_doctor`` (with the contexts of its
kernelspecs) and print one line per :class:`eg_core.doctor.Check`."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_client.kernelspec import KernelSpec

from ..doctor import Check
from .._runtime.calling import acall
from .._runtime.catalog import resource_manager_of
from .._runtime.context import KernelContext
from .._runtime.errors import LaunchRefused, NotFound

PLUGIN_TIMEOUT = 60.0


def _kernelspec_contexts(pm: Any, catalog: Any) -> tuple[dict[str, list[KernelContext]], list[Check]]:
    """A context per kernelspec, grouped by resource manager, and a failed check for each
    kernelspec whose resource manager is not installed (those of disabled plugins are skipped) or
    refuses to run kernels here."""
    by_rm: dict[str, list[KernelContext]] = {}
    missing = []
    aliases = {**catalog.dormant_aliases(), **catalog.aliases}  # disabled plugins' names too
    for name, resource_dir in sorted(catalog.ksm.find_kernel_specs().items()):
        try:
            entry = catalog.get(name)
        except LaunchRefused as exc:
            detail, _, fix = exc.message.rpartition(": ")
            missing.append(Check(f"kernelspec {name}", False, detail, fix))
            continue
        except NotFound as exc:
            try:
                rm = resource_manager_of(KernelSpec.from_resource_dir(resource_dir).to_dict(), aliases)[0]
            except (OSError, ValueError):  # an unreadable kernel.json: the gateway skips it too
                rm = None
            if rm is None or not pm.is_blocked(rm):
                detail, _, fix = exc.message.rpartition(": ")  # the fix is the last part
                missing.append(Check(f"kernelspec {name}", False, detail, fix or "remove it, or install its resource manager"))
            continue
        by_rm.setdefault(entry.resource_manager, []).append(
            KernelContext(kernel_id="", kernel_name=name, resource_manager=entry.resource_manager,
                          spec=entry.spec.to_dict(), config=dict(entry.config))
        )
    return by_rm, missing


async def run_checks(pm: Any, catalog: Any) -> list[tuple[str, Check]]:
    """Ask every plugin that implements ``eg_doctor``; a plugin that raises or takes longer than
    ``PLUGIN_TIMEOUT`` seconds gives a failed check."""
    by_rm, missing = _kernelspec_contexts(pm, catalog)
    results: list[tuple[str, Check]] = [("kernelspecs", check) for check in missing]
    plugins = [(name, plugin) for name, plugin in pm.list_name_plugin() if plugin is not None]
    for name, plugin in plugins:
        if not hasattr(plugin, "eg_doctor"):
            continue
        caller = pm.subset_hook_caller("eg_doctor", remove_plugins=[p for _, p in plugins if p is not plugin])
        try:
            answers = await asyncio.wait_for(acall(caller, kernels=by_rm.get(name, [])), PLUGIN_TIMEOUT)
        except asyncio.TimeoutError:
            answers = [[Check("checks", False, f"no answer within {PLUGIN_TIMEOUT:g}s", "see why the backend hangs")]]
        except Exception as exc:  # noqa: BLE001 - a broken check is a finding, not a crash
            answers = [[Check("checks", False, f"raised {type(exc).__name__}: {exc}", f"report it to the {name} plugin's authors")]]
        results += [(name, check) for answer in answers for check in answer]
    return results


async def doctor(gateway: Any) -> int:
    """Print every check of a configured (initialized) gateway; returns the exit status."""
    results = await run_checks(gateway.pm, gateway.catalog)
    for plugin, check in results:
        print(check.line(plugin), flush=True)
    failed = sum(not check.ok for _, check in results)
    print(f"{len(results)} checks, {failed} failed")
    return 1 if failed else 0
