"""Recipes: how one sweep point becomes a netlist piece and how its plot becomes numbers.

A recipe has ``name``, ``version`` (bump it when measurements change: it is part of
the cache key), ``build``, ``assemble``, ``analysis`` and ``measure``; it is registered by
name with :func:`register_recipe` (each family registers its own in its characterize
module). The generic ones here: an inverter (sky130 or generic) and an RC low-pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neurospice.circuits.errors import NeurospiceError
from neurospice.circuits.technology import Technology

#: Monte-Carlo spreads used with the generic technology (sky130 uses the PDK's own
#: per-device mismatch statistics instead). Illustrative values, stated in every artefact:
#: sigma(Vth) from Pelgrom's law with A_VT = 5 mV·um (a typical 0.18 um figure, Pelgrom
#: et al., IEEE JSSC 24(5), 1989 gives the law), evaluated per device area; membrane and
#: memcapacitor capacitance spreads of 2 % and 5 %.
GENERIC_MISMATCH = {"a_vt_mV_um": 5.0, "c_mem_sigma": 0.02, "memcap_sigma": 0.05}


def mc_sample(point: dict) -> np.random.Generator | None:
    if point.get("mc") is None:
        return None
    return np.random.default_rng([int(point.get("seed", 1)), int(point["mc"])])


def pelgrom_shifts_V(areas_um2: dict, rng: np.random.Generator) -> dict:
    """Threshold shift (V) per device role, ``σ = A_VT/√(W·L)`` (:data:`GENERIC_MISMATCH`),
    drawn in sorted role order."""
    return {role: GENERIC_MISMATCH["a_vt_mV_um"] * 1e-3 / math.sqrt(a) * rng.standard_normal()
            for role, a in sorted(areas_um2.items())}


@dataclass
class InverterRecipe:
    """A ``sky130_fd_sc_hd__inv_1`` (or generic inverter) driving a load: delay and energy.

    Axes: ``load_fF``, ``slew_ps``. Used by ``benchmarks/sweep_throughput.py``.
    """

    name: str = "inverter"
    version: int = 1
    vdd_V: float = 1.8
    period_s: float = 4e-9

    def build(self, point, tag, tech: Technology, options):
        slew = float(point.get("slew_ps", 50)) * 1e-12
        load = float(point.get("load_fF", 5)) * 1e-15
        lines = [f"Vdd_{tag} {tag}_vdd 0 {self.vdd_V:g}",
                 f"Vin_{tag} {tag}_a 0 PULSE(0 {self.vdd_V:g} 1n {slew:g} {slew:g} "
                 f"{self.period_s / 2:g} {self.period_s:g})",
                 f"C_{tag} {tag}_y 0 {load:g}"]
        if tech.cells_dir:
            lines.append(f"X{tag} {tag}_a 0 0 {tag}_vdd {tag}_vdd {tag}_y sky130_fd_sc_hd__inv_1")
        else:
            n, nc = tech.mosfet(f"n{tag}", f"{tag}_y", f"{tag}_a", "0", "0", "n", 0.65, 0.18, scope="")
            p, pc = tech.mosfet(f"p{tag}", f"{tag}_y", f"{tag}_a", f"{tag}_vdd", f"{tag}_vdd", "p",
                                1.0, 0.18, scope="")
            lines = pc + nc + lines + [n, p]
        return _Piece(tag, "\n".join(lines), [f"v({tag}_a)", f"v({tag}_y)", f"i(vdd_{tag})"])

    def analysis(self, piece, options) -> str:
        return f".tran 1p {2 * self.period_s + 1e-9:g}"

    def assemble(self, tech, pieces, temperature_C, options) -> str:
        inc = f'.include "{tech.cell_file("inv_1")}"' if tech.cells_dir else ""
        body = "\n".join(p.text for p in pieces)
        saves = " ".join(s for p in pieces for s in p.saves)
        return (f"* inverter sweep\n{tech.header()}\n{inc}\n{body}\n.save {saves}\n"
                f".temp {temperature_C:g}\n{self.analysis(None, options)}\n.end\n")

    def measure(self, plot, piece, point, options) -> dict:
        t, a, y = plot["time"], plot[f"v({piece.tag}_a)"], plot[f"v({piece.tag}_y)"]
        half = self.vdd_V / 2
        ta = _crossing(t, a, half, rising=True)
        ty = _crossing(t, y, half, rising=False, after=ta)
        e = float(-np.trapezoid(self.vdd_V * plot[f"i(vdd_{piece.tag})"], t))
        return {"tphl_s": ty - ta, "energy_J": e}


@dataclass
class _Piece:
    tag: str
    text: str
    saves: list
    n_steps: int = 1

    def netlist_text(self) -> str:
        return self.text


def _crossing(t, v, level, rising=True, after=0.0) -> float:
    s = (v > level) if rising else (v < level)
    idx = np.nonzero(s[1:] & ~s[:-1] & (t[1:] > after))[0]
    if not len(idx):
        return float("nan")
    i = idx[0]
    return float(t[i] + (level - v[i]) * (t[i + 1] - t[i]) / (v[i + 1] - v[i]))


@dataclass
class RCRecipe:
    """An RC low-pass driven by a step: the smallest real circuit (tests, Dask checks).

    Axes: ``r_ohm``, ``c_F``, optional ``v_V``. ``measure`` returns the voltage at t = RC
    (analytically (1 - 1/e)·v) and at t = 3 RC.
    """

    name: str = "rc"
    version: int = 1

    def build(self, point, tag, tech, options):
        r, c, v = float(point["r_ohm"]), float(point["c_F"]), float(point.get("v_V", 1.0))
        text = (f"V_{tag} {tag}_in 0 PWL(0 0 1p {v:g})\nR_{tag} {tag}_in {tag}_out {r:g}\n"
                f"C_{tag} {tag}_out 0 {c:g}")
        return _Piece(tag, text, [f"v({tag}_out)"])

    def analysis(self, piece, options) -> str:
        return f".tran {options.get('tstep_s', 1e-12):g} {options.get('tstop_s', 5e-9):g}"

    def assemble(self, tech, pieces, temperature_C, options) -> str:
        body = "\n".join(p.text for p in pieces)
        saves = " ".join(s for p in pieces for s in p.saves)
        return (f"* rc sweep\n{body}\n.save {saves}\n.temp {temperature_C:g}\n"
                f"{self.analysis(None, options)}\n.end\n")

    def measure(self, plot, piece, point, options) -> dict:
        tau = float(point["r_ohm"]) * float(point["c_F"])
        t, y = plot["time"], plot[f"v({piece.tag}_out)"]
        return {"v_at_tau_V": float(np.interp(tau + 1e-12, t, y)),
                "v_at_3tau_V": float(np.interp(3 * tau + 1e-12, t, y))}


@dataclass
class DeckPiece:
    """A sweep point that is a whole deck with its own analysis card (``text``); ``data`` holds
    what the recipe's ``measure`` needs to read it back."""
    tag: str
    text: str
    data: dict

    def netlist_text(self) -> str:
        return self.text


class WholeDeckRecipe:
    """Base of recipes whose points are whole decks of their own length: one point per ngspice
    run, the analysis card inside the deck (SFQ benches, qCLIF cycle chunks)."""
    points_per_run: int = 1

    def analysis(self, piece, options) -> str:
        return ""

    def assemble(self, tech, pieces, temperature_C, options) -> str:
        return pieces[0].text


_RECIPES: dict = {}


def register_recipe(recipe):
    """Register a recipe (class or instance) under its ``name``; usable as a class decorator.
    The sweep runner passes the recipe's module to its workers (:func:`get_recipe`), so a
    recipe registered when its module is imported is found in every worker process."""
    inst = recipe() if isinstance(recipe, type) else recipe
    _RECIPES[inst.name] = inst
    return recipe


def get_recipe(name: str, module: str | None = None):
    """The recipe called ``name``; ``module`` (where it is defined) is imported first if the
    name is not registered yet (a fresh worker process)."""
    if name not in _RECIPES and module:
        import importlib
        importlib.import_module(module)
    try:
        return _RECIPES[name]
    except KeyError:
        raise NeurospiceError(f"unknown recipe {name!r}; have {sorted(_RECIPES)}") from None


register_recipe(InverterRecipe)
register_recipe(RCRecipe)
