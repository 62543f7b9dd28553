"""Run real ngspice on a netlist and return its vectors as numpy arrays.

Each run is one ngspice process in batch mode (``ngspice -b -r out.raw``):

* memory cannot grow over thousands of runs (the process exits; PySpice's
  shared-library mode leaks ~13 MiB per transient, so it is used only where a
  comparison needs it, see ``benchmarks/sweep_throughput.py``);
* a per-run wall-clock timeout kills a stuck simulation;
* the model library is parsed once per process, so callers put *many sweep
  points into one netlist* (see :mod:`neurospice.characterize.sweep`) to pay
  the parse cost once per batch.

ngspice's own timing is read from its batch-mode console log (the statistics it prints at the
end of every run): ``Total analysis time (seconds) = ...`` (the analyses, raw-file writing
included: ngspice streams points to the raw file as it goes) becomes :attr:`SimResult.analysis_s`,
``Total elapsed time (seconds) = ...`` (ngspice's start to its statistics) :attr:`SimResult.ngspice_s`;
their difference is start-up and netlist/model parsing (:attr:`SimResult.parse_s`), the rest of
:attr:`SimResult.wall_s` process start and exit, and :attr:`SimResult.read_s` the raw-file read here.

ngspice's console output is classified: informational lines ("Note:",
"Warning:", banner, statistics) are not errors; convergence failures raise
:class:`ConvergenceError`; rejected netlists raise :class:`NetlistError`.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import (ConvergenceError, NetlistError, NgspiceNotFound, RawFileError,
                     SimulationError, SimulationTimeout)
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

#: ngspice's batch-mode statistics lines (printed by ngspice 39 on every ``-b`` run)
_ANALYSIS_TIME = re.compile(r"^\s*Total analysis time \(seconds\)\s*=\s*([-+0-9.eE]+)", re.M)
_ELAPSED_TIME = re.compile(r"^\s*Total elapsed time \(seconds\)\s*=\s*([-+0-9.eE]+)", re.M)


def _last_seconds(pattern: re.Pattern, log: str) -> float | None:
    """The last value ``pattern`` finds in ``log`` (ngspice's figures are cumulative), or None."""
    found = pattern.findall(log)
    if not found:
        return None
    try:
        value = float(found[-1])
    except ValueError:
        return None
    return value if value >= 0 else None


def analysis_seconds(log: str) -> float | None:
    """ngspice's own ``Total analysis time (seconds)`` from a console log (None if absent)."""
    return _last_seconds(_ANALYSIS_TIME, log)


def elapsed_seconds(log: str) -> float | None:
    """ngspice's own ``Total elapsed time (seconds)`` from a console log (None if absent)."""
    return _last_seconds(_ELAPSED_TIME, log)


@dataclass
class SimResult:
    """What one ngspice run produced, and where its time went."""

    circuit: str
    plots: list[Plot]
    log: str
    wall_s: float                      #: the ngspice process, start to exit, seen from here
    analysis_s: float | None = None    #: ngspice's "Total analysis time" (None: not printed)
    ngspice_s: float | None = None     #: ngspice's "Total elapsed time" (start-up + parse + analysis)
    read_s: float = 0.0                #: reading the raw file into numpy here

    @property
    def parse_s(self) -> float | None:
        """ngspice's start-up and netlist/model parsing: its elapsed time less the analysis."""
        if self.analysis_s is None or self.ngspice_s is None:
            return None
        return max(0.0, self.ngspice_s - self.analysis_s)

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


def ngspice_version() -> str:
    """ngspice's version string, e.g. ``'ngspice-39'`` (part of every cache key and provenance),
    asked once per executable (``NEUROSPICE_NGSPICE`` may change between calls)."""
    return _version_of(ngspice_executable())


@functools.lru_cache(maxsize=None)
def _version_of(exe: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, errors="replace",
                             timeout=30, stdin=subprocess.DEVNULL).stdout
    except subprocess.TimeoutExpired:
        raise SimulationError(f"ngspice executable {exe} did not answer '--version' within 30 s") from None
    except OSError as exc:
        raise NgspiceNotFound(f"ngspice executable {exe} cannot be run ({exc})") from None
    match = re.search(r"ngspice-(\S+)", out)
    return f"ngspice-{match.group(1)}" if match else "ngspice-unknown"


ngspice_version.cache_clear = _version_of.cache_clear  # the old lru_cache interface


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


def _run_ngspice(cmd: list[str], cwd: str, env: dict, timeout_s: float, circuit: str,
                 point) -> tuple[int, str]:
    """Run ngspice; on timeout (or any interruption) kill it *and every process it started*
    (a wrapper script's children would otherwise outlive the run, holding its output pipes).
    ngspice stays in the caller's process group, so killing the caller's group still ends it.
    Returns (exit status, console output)."""
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                errors="replace")
    except OSError as exc:
        raise NgspiceNotFound(f"ngspice executable {cmd[0]} cannot be run ({exc})") from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        raise SimulationTimeout(circuit, timeout_s, point) from None
    except BaseException:
        _kill_tree(proc)
        raise
    return proc.returncode, out + "\n" + err


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children, their children, ...), from ``/proc``; none where
    there is no ``/proc``."""
    children: dict[int, list[int]] = {}
    try:
        entries = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return []
    for name in entries:
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL ngspice and its descendants (listed before the kill: orphans lose their parent
    link), then reap it."""
    below = _descendants(proc.pid)
    for pid in [proc.pid, *below]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()
    proc.wait()


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
        returncode, log = _run_ngspice([exe, "-b", "-r", str(raw), str(cir)], tmp, env, timeout_s,
                                       circuit, point)
        wall = time.perf_counter() - t0
        classify_log(log, circuit, point)
        where = f" at point {point}" if point is not None else ""
        crashed = returncode < 0 or returncode >= 128   # a signal (directly, or through a shell)
        if not raw.exists() or raw.stat().st_size == 0:
            tail = "\n".join(log.strip().splitlines()[-8:])
            if crashed:
                signum = -returncode if returncode < 0 else returncode - 128
                raise SimulationError(f"ngspice crashed (signal {signum}) on circuit "
                                      f"{circuit!r}{where}: {tail}")
            raise NetlistError(circuit, f"ngspice wrote no results (exit {returncode}): {tail}",
                               point)
        t1 = time.perf_counter()
        try:
            plots = read_raw(raw)
        except RawFileError as exc:
            raise RawFileError(f"ngspice (exit {returncode}) wrote a damaged raw file for circuit "
                               f"{circuit!r}{where}: {exc}") from None
        return SimResult(circuit=circuit, plots=plots, log=log, wall_s=wall,
                         analysis_s=analysis_seconds(log), ngspice_s=elapsed_seconds(log),
                         read_s=time.perf_counter() - t1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
