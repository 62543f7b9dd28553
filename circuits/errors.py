"""Typed errors. Each names the circuit (and the sweep point, where there is one)."""
from __future__ import annotations


class NeurospiceError(Exception):
    """Base class of every error neurospice raises on purpose."""


class NgspiceNotFound(NeurospiceError):
    """The ngspice executable is missing (install Debian's ``ngspice``)."""


class _CircuitError(NeurospiceError):
    """An error about one circuit (and sweep point); picklable, so worker processes can
    send it back to the parent."""

    def __reduce__(self):
        return type(self), tuple(self.__dict__[k] for k in self._ARGS)


class NetlistError(_CircuitError):
    """ngspice rejected the netlist (syntax, unknown model or subcircuit)."""
    _ARGS = ("circuit", "detail", "point")

    def __init__(self, circuit: str, detail: str, point=None):
        self.circuit, self.detail, self.point = circuit, detail, point
        where = f" at point {point}" if point is not None else ""
        super().__init__(f"netlist error in circuit {circuit!r}{where}: {detail}")


class ConvergenceError(_CircuitError):
    """ngspice did not converge (timestep too small, singular matrix, gmin/source stepping failed)."""
    _ARGS = ("circuit", "detail", "point")

    def __init__(self, circuit: str, detail: str, point=None):
        self.circuit, self.detail, self.point = circuit, detail, point
        where = f" at point {point}" if point is not None else ""
        super().__init__(f"no convergence in circuit {circuit!r}{where}: {detail}")


class SimulationTimeout(_CircuitError):
    """One ngspice run exceeded its wall-clock limit."""
    _ARGS = ("circuit", "timeout_s", "point")

    def __init__(self, circuit: str, timeout_s: float, point=None):
        self.circuit, self.timeout_s, self.point = circuit, timeout_s, point
        where = f" at point {point}" if point is not None else ""
        super().__init__(f"ngspice run of circuit {circuit!r}{where} exceeded {timeout_s:g} s")


class SimulationError(NeurospiceError):
    """ngspice failed for another reason (crash, no output)."""


class RawFileError(NeurospiceError):
    """An ngspice raw file is truncated or malformed."""


class TechnologyError(NeurospiceError):
    """A technology (model library) cannot be found or has no such corner."""


class ArtefactError(NeurospiceError):
    """A curve artefact or checkpoint file is damaged, foreign or of an unknown version."""


class ConfigError(NeurospiceError, ValueError):
    """An option or configuration field outside what it may be; the message names the field,
    the value given and what to change (refused before any simulation, training or file write)."""
