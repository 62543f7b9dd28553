"""Run real ngspice on a netlist and return its vectors as numpy arrays.

Each run is one ngspice process in batch mode (``ngspice -b -r out.raw``):

* memory cannot grow over thousands of runs (the process exits; PySpice's
  shared-library mode leaks ~13 MiB per transient, so it is used only where a
  comparison needs it, see ``benchmarks/sweep_throughput.py``);
* a per-run wall-clock timeout kills a stuck simulation;
* the model library is parsed once per process, so callers put *many sweep
  points into one netlist* (see :mod:`neurospice.characterize.sweep`) to pay
  the parse cost once per batch.

ngspice's console output is classified: informational lines ("Note:",
"Warning:", banner, statistics) are not errors; convergence failures raise
:class:`ConvergenceError`; rejected netlists raise :class:`NetlistError`.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import (ConvergenceError, NetlistError, NgspiceNotFound, SimulationError,
                     SimulationTimeout)
from .rawfile import Plot, read_raw

#: ngspice messages that mean the analysis did not converge.
CONVERGENCE_PATTERNS = (
    r"timestep too small",
    r"singular matrix",
    r"gmin stepping failed",
    r"source stepping failed",
    r"iteration limit reached",
    r"transient op failed",
    r"dc solution failed",
    r"no convergence",
)
#: ngspice messages that mean the netlist itself was rejected.
NETLIST_PATTERNS = (
    r"^error\b",
    r"unknown subckt",
    r"unknown model",
    r"could not find",
    r"unable to find definition of model",
    r"there aren't any circuits loaded",
    r"undefined parameter",
    r"syntax error",
    r"mismatch of ",
    r"fatal error",
)

DEFAULT_TIMEOUT_S = 300.0


@dataclass
class SimResult:
    """What one ngspice run produced."""

    circuit: str
    plots: list[Plot]
    log: str
    wall_s: float

    @property
    def plot(self) -> Plot:
        """The last analysis' plot (usually the only one)."""
        return self.plots[-1]


def ngspice_executable() -> str:
    exe = os.environ.get("NEUROSPICE_NGSPICE", "ngspice")
    path = shutil.which(exe)
    if path is None:
        raise NgspiceNotFound(
            f"ngspice executable {exe!r} not found on PATH; install it with "
            "'apt-get install -y ngspice libngspice0-dev'")
    return path


@functools.lru_cache(maxsize=None)
def ngspice_version() -> str:
    """ngspice's version string, e.g. ``'ngspice-39'`` (part of every cache key and provenance)."""
    out = subprocess.run([ngspice_executable(), "--version"], capture_output=True, text=True,
                         timeout=30).stdout
    match = re.search(r"ngspice-(\S+)", out)
    return f"ngspice-{match.group(1)}" if match else "ngspice-unknown"


def classify_log(log: str, circuit: str, point=None) -> None:
    """Raise the typed error a failing ngspice console log describes; return if it shows none."""
    lowered = log.lower()
    hits = sorted((m.start(), pattern) for pattern in CONVERGENCE_PATTERNS
                  for m in [re.search(pattern, lowered)] if m)
    if hits:
        first = _context(log, hits[0][0])
        also = sorted({p for _, p in hits[1:]} - {hits[0][1]})
        raise ConvergenceError(circuit, first + (f" (then: {', '.join(also)})" if also else ""),
                               point)
    lines = log.splitlines()
    for k, line in enumerate(lines):
        low = line.strip().lower()
        if low.startswith(("warning", "note", "info")):
            continue
        for pattern in NETLIST_PATTERNS:
            if re.search(pattern, low):
                # ngspice often puts the offending card and the reason on the next lines
                detail = " | ".join(x.strip()[:300] for x in lines[k:k + 3] if x.strip())
                raise NetlistError(circuit, detail, point)


def _context(log: str, offset: int) -> str:
    start = log.rfind("\n", 0, offset) + 1
    end = log.find("\n", offset)
    line = log[start:end if end >= 0 else None].strip()
    before = log[max(0, start - 200):start].strip().splitlines()[-1:] if start else []
    return " | ".join([*before, line])


def run_netlist(netlist: str, *, circuit: str = "circuit", spiceinit: str = "",
                timeout_s: float = DEFAULT_TIMEOUT_S, point=None,
                workdir: str | Path | None = None) -> SimResult:
    """Simulate ``netlist`` (full text with analysis cards and ``.end``) in one ngspice process.

    ``spiceinit`` is written as ``.spiceinit`` next to the netlist (ngspice reads it
    before parsing; the sky130 technology needs some ``set`` options there).
    Raises :class:`NetlistError`, :class:`ConvergenceError`,
    :class:`SimulationTimeout` or :class:`SimulationError`.
    """
    exe = ngspice_executable()
    tmp = tempfile.mkdtemp(prefix="neurospice-", dir=workdir)
    try:
        cir = Path(tmp, "circuit.cir")
        raw = Path(tmp, "out.raw")
        cir.write_text(netlist)
        Path(tmp, ".spiceinit").write_text(spiceinit + "\n")
        env = dict(os.environ, HOME=tmp)  # no user ~/.spiceinit leaks into results
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([exe, "-b", "-r", str(raw), str(cir)], cwd=tmp, env=env,
                                  capture_output=True, text=True, timeout=timeout_s,
                                  errors="replace")
        except subprocess.TimeoutExpired as exc:
            raise SimulationTimeout(circuit, timeout_s, point) from exc
        wall = time.perf_counter() - t0
        log = proc.stdout + "\n" + proc.stderr
        classify_log(log, circuit, point)
        if not raw.exists() or raw.stat().st_size == 0:
            tail = "\n".join(log.strip().splitlines()[-8:])
            if proc.returncode < 0:
                raise SimulationError(f"ngspice crashed (signal {-proc.returncode}) on circuit "
                                      f"{circuit!r}: {tail}")
            raise NetlistError(circuit, f"ngspice wrote no results (exit {proc.returncode}): {tail}",
                               point)
        plots = read_raw(raw)
        return SimResult(circuit=circuit, plots=plots, log=log, wall_s=wall)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
