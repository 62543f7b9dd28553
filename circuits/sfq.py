"""Superconducting (SFQ) circuits in ngspice: a behavioural RCSJ Josephson junction and cells.

ngspice has no Josephson-junction device, so each junction is a subcircuit of standard
elements (resistively-and-capacitively-shunted junction, RCSJ):

* a **phase node** ``ph``: a capacitor ``C_PHASE_F`` charged by the current
  ``C_PHASE_F·(2π/Φ0)·V(a, b)``, so ``V(ph)`` *is* the phase φ in radians
  (``dφ/dt = 2π·V/Φ0``); a 1e15 Ω resistor gives the node a DC path (time constant
  ~1 s, far beyond any SFQ transient);
* the **supercurrent** ``I_c·sin φ`` (B source);
* the **junction capacitance** ``C``;
* the **quasiparticle current** ``G(V)·V`` with ``G = 1/R0`` below the gap voltage and
  ``1/Rn`` above, joined smoothly by a tanh of width ``V_TRANSITION_V``;
* the **external shunt** ``R_shunt`` (a plain resistor), chosen for a target β_c.

A **sub-gap deck** (``subgap_only=True``) writes the quasiparticle branch as the plain resistor
``R0``: while a junction's ``|V|`` stays below ``V_gap − SUBGAP_MARGIN_TRANSITIONS·V_TRANSITION_V``
the tanh term is below ``e^(−2·SUBGAP_MARGIN_TRANSITIONS)`` (2·10⁻⁹) and the dropped current
below 2·10⁻⁸ of ``V/R0`` — far inside ngspice's ``reltol`` — so the two decks agree; the
nonlinear source is most of a transient's cost. :func:`above_subgap` tells, from a finished
run, whether that held for every junction; callers re-run the full deck when it did not.

Reference parameters (MIT LL SFQ5ee-style model of public SFQ cell libraries, per unit
area): ``I_c = 100 µA``, ``C = 0.07 pF``, ``R0 = 160 Ω``, ``Rn = 16 Ω``, ``V_gap = 2.8 mV``;
``I_c``, ``C`` scale with the area, ``R0``, ``Rn`` inversely.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import NetlistError

PHI0_WB = 2.067833848e-15          #: magnetic flux quantum h/2e (CODATA 2018, exact)
C_PHASE_F = 1e-15                  #: phase-node capacitor: sets current scale of the phase integrator
R_PHASE_DC_OHM = 1e15              #: DC path of the phase node
V_TRANSITION_V = 0.1e-3            #: width of the subgap → normal transition (tanh)
#: a sub-gap deck is exact while every junction's |V| stays this many transition widths below
#: the gap (see the module docstring)
SUBGAP_MARGIN_TRANSITIONS = 10


@dataclass(frozen=True)
class JJModel:
    """Per-unit-area junction parameters (SFQ5ee-style reference values)."""

    ic_A: float = 100e-6
    c_F: float = 0.07e-12
    r0_ohm: float = 160.0
    rn_ohm: float = 16.0
    v_gap_V: float = 2.8e-3

    def scaled(self, area: float) -> "JJModel":
        """The junction of ``area`` units: ``I_c``, ``C`` × area; ``R0``, ``Rn`` ÷ area."""
        if not area > 0 or not math.isfinite(area):
            raise NetlistError("jj", f"junction area must be a positive number, got {area!r}")
        return JJModel(self.ic_A * area, self.c_F * area, self.r0_ohm / area, self.rn_ohm / area,
                       self.v_gap_V)

    def shunt_for_beta_c(self, beta_c: float = 1.0) -> float:
        """External shunt (Ω) giving the McCumber parameter ``β_c = 2π·I_c·R²·C/Φ0`` with the
        subgap resistance in parallel (so the *total* damping resistance meets ``β_c``)."""
        r_total = math.sqrt(beta_c * PHI0_WB / (2 * math.pi * self.ic_A * self.c_F))
        if r_total >= self.r0_ohm:
            raise NetlistError("jj", f"β_c = {beta_c} needs R = {r_total:.3g} Ω ≥ R0 = {self.r0_ohm} Ω; "
                                     "no external shunt can reach it")
        return 1.0 / (1.0 / r_total - 1.0 / self.r0_ohm)

    def plasma_frequency_Hz(self) -> float:
        """Small-signal plasma frequency ``f_p = sqrt(2π·I_c/(Φ0·C))/2π``."""
        return math.sqrt(2 * math.pi * self.ic_A / (PHI0_WB * self.c_F)) / (2 * math.pi)


def jj_subckt(name: str = "jj", model: JJModel = JJModel(), subgap_only: bool = False) -> str:
    """``.subckt NAME a b ph``: one unshunted RCSJ junction of unit ``model`` (already scaled);
    ``subgap_only``: the quasiparticle branch as ``R0`` (exact below the gap, module docstring)."""
    k = C_PHASE_F * 2 * math.pi / PHI0_WB
    g0, gn = 1.0 / model.r0_ohm, 1.0 / model.rn_ohm
    # the sub-gap deck names the limit it was written for (a change of it is a new deck)
    quasiparticle = (f"Rqp a b {model.r0_ohm:.10g}\n* sub-gap deck: exact while |V| < {subgap_limit_V(model):.6g} V"
                     if subgap_only else
                     f"Bqp a b I=V(a,b)*({g0:.10g}+{gn - g0:.10g}*0.5*(1+tanh((abs(V(a,b))-{model.v_gap_V:.6g})"
                     f"/{V_TRANSITION_V:.6g})))")
    return "\n".join([
        f".subckt {name} a b ph",
        f"* RCSJ junction: Ic={model.ic_A:.6g} A, C={model.c_F:.6g} F, R0={model.r0_ohm:.6g} Ω, "
        f"Rn={model.rn_ohm:.6g} Ω, Vgap={model.v_gap_V:.6g} V",
        f"Cph ph 0 {C_PHASE_F:g}",
        f"Rph ph 0 {R_PHASE_DC_OHM:g}",
        f"Bph 0 ph I={k:.10g}*V(a,b)",
        f"Bs a b I={model.ic_A:.10g}*sin(V(ph))",
        f"Cj a b {model.c_F:.10g}",
        quasiparticle,
        f".ends {name}",
    ])


@dataclass(frozen=True)
class JJ:
    """One junction instance in a cell: nodes, area, external shunt (None: unshunted)."""

    name: str
    a: str
    b: str
    area: float = 1.0
    beta_c: float | None = 1.0

    def lines(self, unit: JJModel = JJModel()) -> list[str]:
        m = unit.scaled(self.area)
        out = [f"X{self.name} {self.a} {self.b} ph_{self.name} {subckt_name(self.area)}"]
        if self.beta_c is not None:
            out.append(f"Rsh_{self.name} {self.a} {self.b} {m.shunt_for_beta_c(self.beta_c):.6g}")
        return out


def subckt_name(area: float) -> str:
    return "jj_a" + f"{area:.4f}".replace(".", "p")


def jj_models(jjs, unit: JJModel = JJModel(), subgap_only: bool = False) -> str:
    """The subcircuit definitions every distinct area of ``jjs`` needs."""
    areas = sorted({j.area for j in jjs})
    return "\n".join(jj_subckt(subckt_name(a), unit.scaled(a), subgap_only) for a in areas)


def subgap_limit_V(unit: JJModel = JJModel()) -> float:
    """The largest junction voltage at which a sub-gap deck is exact (module docstring)."""
    return unit.v_gap_V - SUBGAP_MARGIN_TRANSITIONS * V_TRANSITION_V


def above_subgap(plot, jjs, unit: JJModel = JJModel()) -> list[str]:
    """Names of the junctions of ``jjs`` whose ``|V(a) − V(b)|`` reached :func:`subgap_limit_V`
    in the transient ``plot`` (a sub-gap deck's results hold only when this is empty)."""
    limit = subgap_limit_V(unit)

    def v(node):
        return 0.0 if node.lower() in ("0", "gnd") else plot[f"v({node.lower()})"]
    return [j.name for j in jjs if float(np.max(np.abs(v(j.a) - v(j.b)))) >= limit]


#: the largest time step is this fraction of the plasma period (~3 ps for these junctions):
#: inside it ngspice's truncation-error control (``trtol`` 1, trapezoidal) shortens the step
#: wherever a phase moves, so a pulse gets many points and the quiet time between pulses few.
#: A cap of a third of the period still lets the error estimate see the start of every
#: oscillation. (``tests/test_sfq.py``: a JTL's delay at this cap against an independent ODE;
#: the README gives the measured slip-time differences against a 0.05 ps fixed step.)
MAX_STEP_PLASMA_PERIODS = 1 / 3


def check_timestep(step_s: float, models) -> None:
    """Refuse a maximum time step too coarse to resolve SFQ pulses (see
    ``MAX_STEP_PLASMA_PERIODS``) for any of the scaled junction ``models``."""
    for m in models:
        period = 1.0 / m.plasma_frequency_Hz()
        limit = period * MAX_STEP_PLASMA_PERIODS
        if step_s > limit:
            raise NetlistError("sfq", f"time step {step_s:.3g} s cannot resolve SFQ pulses: the "
                                      f"plasma period is {period:.3g} s, use ≤ {limit:.3g} s")


#: the simulator options of every SFQ transient: tight tolerances, the truncation-error control
#: at its strictest (``trtol=1``; ngspice's default 7 lets slip times drift by ~2 ps over a
#: 7 ns neuron bench), trapezoidal integration (no numerical damping)
ANALYSIS_OPTIONS = ".options reltol=1e-4 abstol=1e-12 vntol=1e-9 trtol=1 method=trap"


def transient_netlist(title: str, body_lines, jjs, stop_s: float, step_s: float = 0.05e-12,
                      unit: JJModel = JJModel(), subgap_only: bool = False) -> str:
    """A complete SFQ transient netlist: the junction subcircuits ``jjs`` need, ``body_lines``,
    and the analysis — maximum step ``step_s`` (checked against every junction) under
    :data:`ANALYSIS_OPTIONS`."""
    check_timestep(step_s, [unit.scaled(a) for a in sorted({j.area for j in jjs})])
    return "\n".join([
        f"* {title}", jj_models(jjs, unit, subgap_only), *body_lines,
        ANALYSIS_OPTIONS,
        f".tran {step_s:g} {stop_s:g} 0 {step_s:g} uic",
        ".end",
    ])


#: typical SFQ5ee-style cell values: 250 µA junctions biased at 70 % of I_c, JTL loop
#: inductance with β_L = 2π·L·I_c/Φ0 ≈ 1.5 (reliable forward propagation)
JTL_AREA = 2.5
JTL_BIAS_FRACTION = 0.7
JTL_L_H = 2.0e-12


@dataclass
class Cell:
    """A netlist fragment: its element lines and its junctions (added with their shunts)."""

    name: str
    lines: list[str]
    jjs: list[JJ]
    #: ``(node, current_A)`` of every bias source (already scaled by the global bias)
    biases: list = field(default_factory=list)

    def bias_total_A(self) -> float:
        return sum(i for _, i in self.biases)

    def netlist_lines(self, unit: JJModel = JJModel()) -> list[str]:
        out = [f"* cell {self.name}", *self.lines]
        for j in self.jjs:
            out += j.lines(unit)
        return out


def jtl(name: str, n_in: str, n_out: str, stages: int = 4, area: float = JTL_AREA,
        l_H: float = JTL_L_H, bias_fraction: float = JTL_BIAS_FRACTION,
        bias_scale: float = 1.0, unit: JJModel = JJModel()) -> Cell:
    """Josephson transmission line driven directly by a current source at its first junction
    (the physics tests use it; cells chain with :func:`neurospice.circuits.sfq_cells.jtl`):
    ``stages`` grounded junctions joined by inductors, each
    biased at ``bias_fraction·I_c·bias_scale`` (ideal current sources standing for the bias
    network). Node ``n_in`` is the first junction's node, ``n_out`` the last one's (a single
    stage has only ``n_in``)."""
    if stages < 1:
        raise NetlistError(name, "a JTL needs at least one stage")
    ic = unit.scaled(area).ic_A
    nodes = [n_in] + [f"{name}_n{k}" for k in range(1, stages - 1)] + ([n_out] if stages > 1 else [])
    lines, jjs, biases = [], [], []
    for k, node in enumerate(nodes):
        jjs.append(JJ(f"{name}_J{k}", node, "0", area))
        lines.append(f"I{name}_b{k} 0 {node} {bias_fraction * ic * bias_scale:.6g}")
        biases.append((node, bias_fraction * ic * bias_scale))
        if k:
            lines.append(f"L{name}_{k} {nodes[k - 1]} {node} {l_H:.6g}")
    return Cell(name, lines, jjs, biases)


def pulse_source(name: str, node: str, times_s, amplitude_A: float = 500e-6,
                 width_s: float = 3e-12) -> str:
    """A current source injecting a triangular pulse of ``amplitude_A`` at each time in
    ``times_s``. The defaults switch the first junction of a default JTL once (measured:
    300 µA for 2 ps does not switch it)."""
    pts = [(0.0, 0.0)]
    for t in sorted(times_s):
        pts += [(t, 0.0), (t + width_s / 2, amplitude_A), (t + width_s, 0.0)]
    return f"I{name} 0 {node} PWL(" + " ".join(f"{t:.6g} {i:.6g}" for t, i in pts) + ")"
