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

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import RawFileError

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
            raise KeyError(f"vector {name!r} not in plot {self.name!r}; have {sorted(self.vectors)[:20]}")
        return self.vectors[key]

    def __contains__(self, name: str) -> bool:
        return name.lower() in self.vectors


def read_raw(path: str | Path) -> list[Plot]:
    """Read every plot of an ngspice raw file."""
    data = Path(path).read_bytes()
    plots: list[Plot] = []
    pos = 0
    while pos < len(data):
        plot, pos = _read_one(data, pos, path)
        plots.append(plot)
        while pos < len(data) and data[pos:pos + 1] in (b"\n", b"\r", b" "):
            pos += 1
    if not plots:
        raise RawFileError(f"{path}: no plot in raw file")
    return plots


def _read_one(data: bytes, pos: int, path) -> tuple[Plot, int]:
    header: dict[str, str] = {}
    variables: list[tuple[str, str]] = []
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise RawFileError(f"{path}: truncated header")
        line = data[pos:end].decode("latin-1").rstrip("\r")
        pos = end + 1
        if line.startswith("Variables:"):
            nvars = int(header["no. variables"])
            for _ in range(nvars):
                end = data.find(b"\n", pos)
                parts = data[pos:end].decode("latin-1").split()
                pos = end + 1
                if len(parts) < 3:
                    raise RawFileError(f"{path}: malformed variable line {parts}")
                variables.append((parts[1].lower(), parts[2].lower()))
            continue
        if line.startswith("Binary:") or line.startswith("Values:"):
            kind = line[:-1]
            break
        if ":" in line:
            key, _, value = line.partition(":")
            header[key.strip().lower()] = value.strip()
    try:
        npoints = int(header["no. points"])
        flags = header.get("flags", "real").lower()
    except KeyError as exc:
        raise RawFileError(f"{path}: header lacks {exc}") from exc
    nvars = len(variables)
    is_complex = "complex" in flags
    if kind == "Binary":
        dtype = np.complex128 if is_complex else np.float64
        nbytes = npoints * nvars * np.dtype(dtype).itemsize
        if pos + nbytes > len(data):
            raise RawFileError(f"{path}: truncated binary data ({len(data) - pos} of {nbytes} bytes)")
        arr = np.frombuffer(data, dtype=dtype, count=npoints * nvars, offset=pos).reshape(npoints, nvars)
        pos += nbytes
    else:
        arr = np.empty((npoints, nvars), dtype=np.complex128 if is_complex else np.float64)
        lines = data[pos:].decode("latin-1").split("\n")
        tokens = " ".join(lines).split()
        idx = 0
        for p in range(npoints):
            idx += 1  # point index
            for v in range(nvars):
                tok = tokens[idx]
                idx += 1
                if is_complex:
                    re, im = tok.split(",")
                    arr[p, v] = complex(float(re), float(im))
                else:
                    arr[p, v] = float(tok)
        pos = len(data)
    plot = Plot(title=header.get("title", ""), name=header.get("plotname", ""))
    for j, (name, vtype) in enumerate(variables):
        plot.vectors[name] = np.array(arr[:, j])
        plot.units[name] = UNIT_OF_TYPE.get(vtype, "")
    return plot, pos
