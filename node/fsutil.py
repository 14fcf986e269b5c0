"""Small durable-file helpers: atomic 0600 writes with fsync, fsync of a path."""

from __future__ import annotations

import os
from pathlib import Path


def write_private_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically and durably, creating it with ``mode``.

    Writes a temporary file in the same directory (created with ``mode``, never
    wider), fsyncs it, renames it over ``path`` and fsyncs the directory, so a
    crash at any instant leaves either the old or the new content.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_path(path.parent)


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory (what makes a rename or a new file in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
