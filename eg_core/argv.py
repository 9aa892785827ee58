"""Filling ``{name}`` templates in a kernelspec's argv: one implementation, used by the core
(``HookProvisioner.pre_launch``) and by resource managers that fill more names later (eg-docker's
``{kernel_bind_ip}``).

Unknown names stay as they are, so a later step can fill them; values are inserted as whole
list items' text, never through a shell.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

TEMPLATE = re.compile(r"\{([A-Za-z0-9_]+)\}")


def fill(argv: Sequence[str], values: Mapping[str, Any]) -> list[str]:
    """``argv`` with every ``{name}`` whose name is in ``values`` replaced by ``str(value)``."""
    return [TEMPLATE.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), arg) for arg in argv]


def uses(argv: Sequence[str], *names: str) -> bool:
    """Whether any argument holds one of the templates ``{name}``."""
    return any(f"{{{name}}}" in arg for arg in argv for name in names)


__all__ = ["fill", "uses", "TEMPLATE"]
