"""File helpers every stage shares: atomic writes and content hashes (one copy each).

A write goes to a temporary file in the destination's folder, is flushed, then renamed over
the destination: a reader sees the old file or the new one, never half of one. A write that
fails (a full disk, a folder that cannot be written) raises :class:`WriteError` naming the
file, removes its temporary file and leaves the destination as it was. A run killed
mid-write leaves a ``.NAME.tmp…`` file that nothing reads; the first write into that folder
by a later process removes it (only temporaries of processes of this machine that are gone).
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import socket
import threading
import zlib
from pathlib import Path
from typing import Callable

from neurospice.circuits.errors import NeurospiceError

#: this machine, in temporary names: a folder shared between machines never loses another
#: machine's write in progress to the clean-up of stale temporaries
_HOST = f"{zlib.crc32(socket.gethostname().encode()):08x}"
_TEMPORARY = re.compile(r"^\..+\.tmp(\d+)-\d+-([0-9a-f]{8})$")
_cleaned: set[str] = set()           # folders this process has cleaned of stale temporaries
_cleaned_lock = threading.Lock()


class WriteError(NeurospiceError):
    """A result file could not be written (disk full, folder not writable); the message names
    the file. The file's previous version, if any, is intact and no temporary file is left."""


def _temporary(path: Path) -> Path:
    # pid and thread: two threads (or processes) writing one file never share a temporary
    return path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}-{_HOST}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:        # another user's process
        return True
    return True


def remove_stale_temporaries(folder) -> list[Path]:
    """Remove the temporaries in ``folder`` that processes of this machine left when they were
    killed mid-write (their pid is gone); returns them."""
    folder, removed = Path(folder), []
    try:
        names = [e.name for e in os.scandir(folder) if ".tmp" in e.name]
    except OSError:
        return removed
    for name in names:
        m = _TEMPORARY.match(name)
        if not m or m.group(2) != _HOST or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        try:
            (folder / name).unlink()
            removed.append(folder / name)
        except OSError:
            pass
    return removed


def _clean_once(folder: Path) -> None:
    """:func:`remove_stale_temporaries` of ``folder``, once per process (a folder of a big cache
    is listed once, not at every write)."""
    key = str(folder)
    with _cleaned_lock:
        if key in _cleaned:
            return
        _cleaned.add(key)
    remove_stale_temporaries(folder)


def _write_error(path: Path, exc: OSError) -> WriteError:
    why = exc.strerror or str(exc) or type(exc).__name__
    hint = {errno.ENOSPC: " (the disk is full: free some space and run the same command again)",
            errno.EDQUOT: " (disk quota exceeded: free some space and run the same command again)",
            errno.EACCES: " (no permission to write there: choose another --out)",
            errno.EROFS: " (read-only file system: choose another --out)"}.get(exc.errno, "")
    return WriteError(f"cannot write {path}: {why}{hint}; its previous version, if any, is unchanged")


def atomic_write(path, write: Callable[[Path], None]) -> Path:
    """``write(tmp_path)`` fills a temporary file that then replaces ``path``; an ``OSError``
    on the way is a :class:`WriteError` naming ``path``."""
    path = Path(path)
    tmp = _temporary(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _clean_once(path.parent)
        write(tmp)
        tmp.replace(path)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_bytes(path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_json(path, obj, **kw) -> Path:
    return atomic_write_text(path, json.dumps(obj, **kw))


def atomic_savefig(fig, path, **kw) -> Path:
    """``fig.savefig`` through :func:`atomic_write` (the format from ``path``'s suffix)."""
    path = Path(path)
    fmt = kw.pop("format", None) or path.suffix.lstrip(".") or "png"
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, **kw))


def atomic_torch_save(path, obj) -> Path:
    """``torch.save`` through :func:`atomic_write`. Serialized in memory first: torch's own file
    writer reports a full disk as a ``RuntimeError`` without the file's name."""
    import torch
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


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
