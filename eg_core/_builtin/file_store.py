"""The builtin session store: one JSON file per kernel under ``persistence_root`` (0600).

A corrupt or partial file is skipped with a logged reason. Files are written atomically
(temporary file, then rename) in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from traitlets import Unicode, default
from traitlets.config import SingletonConfigurable

from eg_core import hookimpl
from eg_core.config import EnvDefaults

log = logging.getLogger("eg")


class FileSessionStore(EnvDefaults, SingletonConfigurable):
    """Where kernel sessions are kept when availability_mode is set."""

    persistence_root = Unicode(config=True, help="Directory of the kernel session files (shared by replicated gateways).").tag(
        env=("EG_PERSISTENCE_ROOT", "EG_KERNEL_SESSION_LOCATION")
    )

    @default("persistence_root")
    def _default_root(self) -> str:
        return os.path.join(jupyter_data_dir(), "eg_kernel_sessions")


def _root() -> Path:
    root = Path(FileSessionStore.instance().persistence_root)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


def _path(kernel_id: str) -> Path:
    if not kernel_id or "/" in kernel_id or kernel_id.startswith("."):
        raise ValueError(f"invalid kernel id {kernel_id!r}")
    return _root() / f"{kernel_id}.json"


def _write(record: dict) -> None:
    path = _path(record["kernel_id"])
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
    os.replace(tmp, path)


def _read(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("Skipping kernel session file %s: %s", path, exc)
        return None
    if not isinstance(record, dict) or not isinstance(record.get("kernel_id"), str) or "provisioner" not in record:
        log.warning("Skipping kernel session file %s: not a kernel session record", path)
        return None
    return record


def _read_all() -> list[dict]:
    return [r for p in sorted(_root().glob("*.json")) if (r := _read(p)) is not None]


@hookimpl
def eg_configurables():
    return [FileSessionStore]


@hookimpl
async def eg_store_save(record):
    await asyncio.to_thread(_write, record)
    return True


@hookimpl
async def eg_store_delete(kernel_id):
    await asyncio.to_thread(lambda: _path(kernel_id).unlink(missing_ok=True))
    return True


@hookimpl
async def eg_store_load(kernel_id):
    try:
        path = _path(kernel_id)
    except ValueError:
        return None
    return await asyncio.to_thread(_read, path)


@hookimpl
async def eg_store_load_all():
    return await asyncio.to_thread(_read_all)
