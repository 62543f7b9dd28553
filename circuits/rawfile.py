"""Reader for ngspice raw files (binary and ASCII), independent of PySpice.

A raw file holds one or more *plots* (one per analysis). Each plot has a
header (``Title``, ``Plotname``, ``Flags``, ``No. Variables``, ``No. Points``,
``Variables:`` table) followed by either ``Binary:`` (float64, or complex128
for complex plots, stored point-major) or ``Values:`` (ASCII).

Vector names are lower-cased, as ngspice treats them case-insensitively.
Units come from the variable type column (``time`` → s, ``voltage`` → V,
``current`` → A).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import RawFileError

class MissingVector(RawFileError, KeyError):
    """A plot lacks a vector a caller asked for (the raw file is of another circuit, or ngspice
    did not save it). A :class:`KeyError` too, for callers that test with ``try``."""

    __str__ = RawFileError.__str__


UNIT_OF_TYPE = {"time": "s", "voltage": "V", "current": "A", "frequency": "Hz",
                "notype": "", "charge": "C"}


@dataclass
class Plot:
    """One analysis result: named vectors (numpy arrays) with units."""

    title: str
    name: str
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        key = name.lower()
        if key not in self.vectors:
            raise MissingVector(f"vector {name!r} not in plot {self.name!r} ({self.title!r}); "
                                f"have {sorted(self.vectors)[:20]}")
        return self.vectors[key]

    def __contains__(self, name: str) -> bool:
        return name.lower() in self.vectors


def read_raw(path: str | Path) -> list[Plot]:
    """Read every plot of an ngspice raw file; a missing, truncated or malformed file raises
    :class:`RawFileError` naming the file and what is wrong."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise RawFileError(f"{path}: cannot read raw file ({exc.strerror or exc})") from None
    plots: list[Plot] = []
    pos = 0
    while pos < len(data):
        plot, pos = _read_one(data, pos, path)
        plots.append(plot)
        while pos < len(data) and data[pos:pos + 1] in (b"\n", b"\r", b" ", b"\t"):
            pos += 1
    if not plots:
        raise RawFileError(f"{path}: no plot in raw file (empty file)")
    return plots


def _count(header: dict, key: str, path) -> int:
    """A non-negative integer header field (``No. Variables``, ``No. Points``)."""
    if key not in header:
        raise RawFileError(f"{path}: raw-file header lacks {key.title()!r}")
    try:
        n = int(header[key])
    except ValueError:
        n = -1
    if n < 0:
        raise RawFileError(f"{path}: raw-file header {key.title()!r} is {header[key]!r}, "
                           "not a count")
    return n


def _read_one(data: bytes, pos: int, path) -> tuple[Plot, int]:
    header: dict[str, str] = {}
    variables: list[tuple[str, str]] = []
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise RawFileError(f"{path}: truncated header (no 'Binary:' or 'Values:' line)")
        line = data[pos:end].decode("latin-1").rstrip("\r")
        pos = end + 1
        if line.startswith("Variables:"):
            nvars = _count(header, "no. variables", path)
            for k in range(nvars):
                end = data.find(b"\n", pos)
                if end < 0:
                    raise RawFileError(f"{path}: truncated variable table ({k} of {nvars} lines)")
                parts = data[pos:end].decode("latin-1").split()
                pos = end + 1
                if len(parts) < 3:
                    raise RawFileError(f"{path}: malformed variable line {k}: {parts}")
                variables.append((parts[1].lower(), parts[2].lower()))
            continue
        if line.startswith(("Binary:", "Values:")):
            binary = line.startswith("Binary:")
            break
        if ":" in line:
            key, _, value = line.partition(":")
            header[key.strip().lower()] = value.strip()
    nvars = _count(header, "no. variables", path)
    npoints = _count(header, "no. points", path)
    if not variables or len(variables) != nvars:
        raise RawFileError(f"{path}: header says {nvars} variables, the variable table lists "
                           f"{len(variables)}")
    is_complex = "complex" in header.get("flags", "real").lower()
    dtype = np.dtype(np.complex128 if is_complex else np.float64)
    if binary:
        nbytes = npoints * nvars * dtype.itemsize
        if pos + nbytes > len(data):
            raise RawFileError(f"{path}: truncated binary data ({len(data) - pos} of {nbytes} bytes)")
        arr = np.frombuffer(data, dtype=dtype, count=npoints * nvars, offset=pos).reshape(npoints, nvars)
        pos += nbytes
    else:
        arr, pos = _read_values(data, pos, npoints, nvars, is_complex, path)
    plot = Plot(title=header.get("title", ""), name=header.get("plotname", ""))
    for j, (name, vtype) in enumerate(variables):
        plot.vectors[name] = np.array(arr[:, j])
        plot.units[name] = UNIT_OF_TYPE.get(vtype, "")
    return plot, pos


_TOKEN = re.compile(rb"\S+")


def _read_values(data: bytes, pos: int, npoints: int, nvars: int, is_complex: bool, path):
    """The ASCII ``Values:`` table: per point its index, then ``nvars`` numbers (``re,im`` for
    complex plots). Returns the array and the offset just after the last number read."""
    # each point needs at least nvars + 1 tokens of one byte and a separator each
    if npoints * (nvars + 1) * 2 > len(data) - pos + 1:
        raise RawFileError(f"{path}: truncated values ({npoints} points of {nvars} variables "
                           f"cannot fit in {len(data) - pos} bytes)")
    arr = np.empty((npoints, nvars), dtype=np.complex128 if is_complex else np.float64)
    tokens = _TOKEN.finditer(data, pos)
    end = pos
    for p in range(npoints):
        for v in range(-1, nvars):
            match = next(tokens, None)
            if match is None:
                raise RawFileError(f"{path}: truncated values (point {p} of {npoints})")
            tok, end = match.group().decode("latin-1"), match.end()
            try:
                if v < 0:
                    if int(tok) != p:
                        raise ValueError
                elif is_complex:
                    re_, im = tok.split(",")
                    arr[p, v] = complex(float(re_), float(im))
                else:
                    arr[p, v] = float(tok)
            except ValueError:
                what = "index" if v < 0 else f"variable {v}"
                raise RawFileError(f"{path}: malformed value {tok[:40]!r} (point {p}, {what})") from None
    return arr, end
