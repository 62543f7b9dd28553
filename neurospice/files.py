"""File helpers every stage shares: atomic writes and content hashes (one copy each).

A write goes to a temporary file in the destination's folder, is flushed, then renamed over
the destination: a reader sees the old file or the new one, never half of one, and a run
killed mid-write leaves at worst a ``*.tmp*`` file that nothing reads.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def atomic_write(path, write: Callable[[Path], None]) -> Path:
    """``write(tmp_path)`` fills a temporary file that then replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path, obj, **kw) -> Path:
    return atomic_write_text(path, json.dumps(obj, **kw))


def sha256_file(path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_or_none(path) -> str | None:
    """:func:`sha256_file`, or ``None`` where ``path`` is empty or names no file."""
    return sha256_file(path) if path and Path(path).is_file() else None
