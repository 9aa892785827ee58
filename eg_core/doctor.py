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

from dataclasses import dataclass
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from ._runtime.context import KernelContext
from ._runtime.errors import EGError

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


__all__ = ["Check", "each_kernelspec"]
