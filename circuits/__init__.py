"""Circuits: the ngspice engine, technologies and netlist builders."""
from .engine import SimResult, ngspice_version, run_netlist
from .errors import (ArtefactError, ConvergenceError, NetlistError, NeurospiceError,
                     SimulationError, SimulationTimeout, TechnologyError)

__all__ = ["SimResult", "ngspice_version", "run_netlist", "ArtefactError", "ConvergenceError",
           "NetlistError", "NeurospiceError", "SimulationError", "SimulationTimeout",
           "TechnologyError"]
