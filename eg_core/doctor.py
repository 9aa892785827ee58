"""``eg-gateway doctor``: every plugin checks its backend, one line per check, with the fix.

A plugin answers the ``eg_doctor`` hook with :class:`Check` results::

    from eg_core import hookimpl
    from eg_core.doctor import Check

    @hookimpl
    async def eg_doctor(kernels):
        up = await controller_answers()
        return [Check("controller", up, "answers" if up else "does not answer", fix="start it")]

The command prints ``ok``/``FAIL``, the plugin's name and the check's text (and ``fix: ...``
for a failure), and exits with status 1 when any check failed. It runs with the gateway's
config (file, command line, ``EG_*`` variables), so it checks what the gateway would use.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from jupyter_client.kernelspec import KernelSpec

from ._runtime.calling import acall
from ._runtime.catalog import resource_manager_of
from ._runtime.context import KernelContext
from ._runtime.errors import EGError, NotFound

PLUGIN_TIMEOUT = 60.0
T = TypeVar("T")


@dataclass
class Check:
    """One result of ``eg_doctor``: what was checked, whether it passed, what was found, and
    (for a failure) what the operator should do."""

    what: str
    ok: bool
    detail: str = ""
    fix: str = ""

    def line(self, plugin: str) -> str:
        """The check as ``eg-gateway doctor`` prints it: one line (a multi-line detail is joined)."""
        text = f"{'ok  ' if self.ok else 'FAIL'}  {plugin}: {self.what}"
        if self.detail:
            text += ": " + " / ".join(line.strip() for line in self.detail.splitlines() if line.strip())
        if not self.ok and self.fix:
            text += f"; fix: {self.fix}"
        return text


def each_kernelspec(
    kernels: Iterable[KernelContext], resolve: Callable[[KernelContext], T], found: list[Check],
    fix: str = "fix the kernelspec's config",
) -> Iterator[tuple[KernelContext, str, T]]:
    """The doctor loop over a resource manager's kernelspecs, for its ``eg_doctor(kernels)``.

    Calls ``resolve(kernel)`` (e.g. the plugin's settings for that kernelspec) for each of
    ``kernels``; one that raises an :class:`eg_core.EGError` becomes a failed :class:`Check`
    ``"kernelspec <name>"`` (its message, and ``fix``) appended to ``found``. Yields
    ``(kernel, "kernelspec <name>", resolved)`` for the others, to check their backend::

        found = []
        for kernel, what, settings in each_kernelspec(kernels, my_settings, found):
            found.append(Check(what, await queue_exists(settings.queue), ...))
    """
    for kernel in kernels:
        what = f"kernelspec {kernel.kernel_name}"
        try:
            resolved = resolve(kernel)
        except EGError as exc:
            found.append(Check(what, False, exc.message, fix))
            continue
        yield kernel, what, resolved


def _kernelspec_contexts(pm: Any, catalog: Any) -> tuple[dict[str, list[KernelContext]], list[Check]]:
    """A context per kernelspec, grouped by resource manager, and a failed check for each
    kernelspec whose resource manager is not installed (those of disabled plugins are skipped)."""
    by_rm: dict[str, list[KernelContext]] = {}
    missing = []
    aliases = {**catalog.dormant_aliases(), **catalog.aliases}  # disabled plugins' names too
    for name, resource_dir in sorted(catalog.ksm.find_kernel_specs().items()):
        try:
            entry = catalog.get(name)
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


__all__ = ["Check", "each_kernelspec", "run_checks", "doctor"]
