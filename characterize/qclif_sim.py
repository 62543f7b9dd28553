"""The qCLIF neuron's ngspice decks and how a simulated deck is read back.

One transient (:func:`simulate`) clocks the sky130 netlist of
:func:`neurospice.circuits.qclif.build_circuit` through a cycle sequence from reset and
:func:`read_deck` reads every register back after each rising edge, with the supply energy
per clock period (``E = ∫ VDD·I dt``) and the settle time of every register input after each
edge (last crossing of VDD/2). :func:`simulate_gate_level` runs the same instances as XSPICE
digital gates (the logic at scale, not the timing).

Inputs switch :data:`INPUT_LAUNCH_S` after each rising edge, as if launched by upstream
registers, through ``buf_1`` drivers (their energy counts; the ideal sources' does not).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from neurospice.circuits.engine import run_netlist
from neurospice.circuits.qclif import CycleInputs, QCLIFConfig, run_cycles
from neurospice.circuits.qclif_gates import QCLIFCircuit, build_circuit
from neurospice.circuits.technology import Technology, sky130

#: Delay from a rising clock edge to the inputs' change: an upstream register's clock-to-Q
#: (sky130_fd_sc_hd__dfrtp_1 at tt/1.8 V is ~0.3 ns; this module measures its own registers').
INPUT_LAUNCH_S = 0.3e-9
#: Rise/fall time of the ideal sources (clock and inputs), before their buffers.
EDGE_S = 50e-12
#: ngspice tolerances. reltol stays at ngspice's default 1e-3: at 3e-3 the flip-flops latched
#: wrong values (a numerical artefact the bit-exact check caught: registers changing 3 ns after
#: the edge). abstol 100 pA instead of 1 pA: identical registers and settle times (to 1e-9
#: relative, 12 random cycles) and ~1.5x faster.
#: Not ``bypass=1`` (skip re-evaluating devices whose voltages barely moved, ~1.35x faster):
#: together with rbodymod=0 it let one flip-flop latch a wrong value once in 200 cycles.
#: ``method=gear`` (backward-difference integration) instead of ngspice's default trapezoidal
#: rule: at tt/1.6 V the trapezoidal rule rang on a flip-flop's internal node (a_651_413# of
#: dfrtp_1 reached −1.29 V, physically impossible) and flipped its master latch 4 ns after
#: the edge — the "tt/1.6 V not bit-exact" failure; gear (or trap with reltol 1e-4, 2.7x
#: slower) gives the golden registers there, and is ~15 % faster than trap at 1.8 V.
SIM_OPTIONS = "method=gear reltol=1e-3 abstol=1e-10"
#: sky130 with its body-resistance network (BSIM4 rbodymod=1) or without (0): without, ~1.8x
#: faster here; the effect on delay and energy is bounded in tests/test_technology.py and stated
#: in the artefact (technology label ``sky130/tt/rb0``).
BODY_RESISTANCE = False
#: Idle cycles (all inputs zero) simulated before the random ones, for the idle energy.
IDLE_CYCLES = 8


@dataclass
class QCLIFRun:
    """What one transient produced, cycle by cycle."""

    registers: dict[str, np.ndarray]   #: va, v, z read back after each edge
    golden: dict[str, np.ndarray]
    energy_J: np.ndarray               #: supply energy per cycle
    settle_s: np.ndarray               #: worst register-input settle time per cycle (from the edge)
    clk_to_q_s: float                  #: measured on the design's own registers
    period_s: float
    vdd_V: float
    wall_s: float

    @property
    def mismatches(self) -> list[int]:
        bad = np.zeros(len(self.energy_J), bool)
        for k in ("va", "v", "z"):
            bad |= self.registers[k] != self.golden[k]
        return [int(i) for i in np.flatnonzero(bad)]

    @property
    def bit_exact(self) -> bool:
        return not self.mismatches


def _bits_to_int(bits: np.ndarray, signed: bool) -> np.ndarray:
    """bits: [n_bits, cycles] (LSB first) -> integers."""
    weights = 2 ** np.arange(bits.shape[0], dtype=np.int64)
    val = (bits.astype(np.int64) * weights[:, None]).sum(0)
    if signed:
        val = np.where(bits[-1] == 1, val - 2 ** bits.shape[0], val)
    return val


def _pwl(values_V: np.ndarray, period_s: float) -> str:
    """PWL text of a bit stream that changes INPUT_LAUNCH_S after each rising edge."""
    pts = [f"0 {values_V[0]:g}"]
    for k in range(1, len(values_V)):
        if values_V[k] != values_V[k - 1]:
            t = k * period_s + INPUT_LAUNCH_S
            pts.append(f"{t:.6g} {values_V[k - 1]:g} {t + EDGE_S:.6g} {values_V[k]:g}")
    return "PWL(" + " ".join(pts) + ")"


def _deck_head(circuit: QCLIFCircuit, tech: Technology, temp_C: float, vdd_V: float, title: str) -> list[str]:
    """Title, models, the cells the neuron uses, temperature and supply."""
    return [f"* {title}", tech.header(),
            *[f'.include "{tech.cell_file(k)}"' for k in sorted(circuit.gates.kinds() | {"dfrtp_1"})],
            f".temp {temp_C:g}", f"Vdd vdd 0 {vdd_V:g}"]


def netlist(circuit: QCLIFCircuit, tech: Technology, inp: CycleInputs, period_s: float,
            vdd_V: float, temp_C: float = 27.0, skip_op: bool = False) -> str:
    """Full transient deck: models, cells, neuron, sources, analysis.

    Edge k (k = 0..cycles-1) is at ``(k+1)·period``; reset is released at ``period/2``.
    ``skip_op``: start the transient from all nodes at 0 V (``uic``) instead of a DC operating
    point — for corners where ngspice's operating point of the flip-flops does not converge
    (sky130 ff); the reset holds the registers over the first half period either way.
    """
    cfg = circuit.cfg
    inp.check(cfg)
    n = inp.cycles
    lines = _deck_head(circuit, tech, temp_C, vdd_V,
                       f"qCLIF neuron, {cfg.bits}-bit, {tech.label}, VDD={vdd_V} V, period={period_s:g} s")
    lines.append(f"Vclk clk_in 0 PULSE(0 {vdd_V:g} {period_s - EDGE_S / 2:.6g} {EDGE_S:g} {EDGE_S:g} "
                 f"{period_s / 2 - EDGE_S:.6g} {period_s:.6g})")
    lines.append(f"Vrst rst_n 0 PWL(0 0 {period_s / 2:.6g} 0 {period_s / 2 + EDGE_S:.6g} {vdd_V:g})")
    for name, nets in circuit.inputs.items():          # one net per bit, LSB first
        vals = np.asarray(getattr(inp, name), dtype=np.int64) % (2 ** len(nets))
        for i, net in enumerate(nets):
            lines.append(f"V{net} {net} 0 {_pwl(((vals >> i) & 1) * vdd_V, period_s)}")
    lines += circuit.gates.lines()
    regs = [q for qs in circuit.registers.values() for q in qs]
    lines.append(".save " + " ".join(f"v({x})" for x in regs + circuit.d_nets) + " i(vdd)")
    lines.append(f".options {SIM_OPTIONS}")
    lines.append(f".tran {period_s / 10:.6g} {(n + 1) * period_s:.6g}{' uic' if skip_op else ''}")
    lines.append(".end")
    return "\n".join(lines)


#: gate and flip-flop delays of the event-driven (XSPICE) run: far below any clock period, so
#: the gate-level run checks the logic, not the timing (the transistor-level run does that)
GATE_DELAY_S, DFF_DELAY_S = 10e-12, 50e-12
_XSPICE_MODELS = ("d_buffer", "d_inverter", "d_and", "d_or", "d_nor", "d_nand", "d_xor", "d_xnor")


def gate_level_netlist(circuit: QCLIFCircuit, inp: CycleInputs, period_s: float = 10e-9) -> str:
    """The same generated neuron as XSPICE digital gates (``circuits.qclif_gates.xspice_lines``),
    the same stimulus timing as :func:`netlist`; register outputs bridged to volts (0/1 V)."""
    from neurospice.circuits.qclif_gates import xspice_lines
    inp.check(circuit.cfg)
    n, vdd = inp.cycles, 1.8
    lines = [f"* qCLIF neuron, {circuit.cfg.bits}-bit, gate level (XSPICE), period={period_s:g} s",
             f"Vdd a_vdd 0 {vdd:g}",
             f"Vclk a_clk_in 0 PULSE(0 {vdd:g} {period_s - EDGE_S / 2:.6g} {EDGE_S:g} {EDGE_S:g} "
             f"{period_s / 2 - EDGE_S:.6g} {period_s:.6g})",
             f"Vrst a_rst_n 0 PWL(0 0 {period_s / 2:.6g} 0 {period_s / 2 + EDGE_S:.6g} {vdd:g})"]
    digital = ["clk_in", "rst_n"]
    for name, nets in circuit.inputs.items():
        vals = np.asarray(getattr(inp, name), dtype=np.int64) % (2 ** len(nets))
        for i, net in enumerate(nets):
            lines.append(f"V{net} a_{net} 0 {_pwl(((vals >> i) & 1) * vdd, period_s)}")
            digital.append(net)
    lines.append("Vzero a_0 0 0")
    analog_in = [f"a_{d}" for d in digital] + ["a_0", "a_vdd"]
    lines.append(f"aadc [{' '.join(analog_in)}] [{' '.join(digital)} d_0 d_vdd] xadc")
    lines.append(f".model xadc adc_bridge(in_low={vdd / 2:g} in_high={vdd / 2:g})")
    lines += xspice_lines(circuit.gates)
    regs = [q for qs in circuit.registers.values() for q in qs]
    lines.append(f"adac [{' '.join(regs)}] [{' '.join('v_' + q for q in regs)}] xdac")
    lines.append(".model xdac dac_bridge(out_low=0 out_high=1)")
    for m in _XSPICE_MODELS:
        lines.append(f".model x{m} {m}(rise_delay={GATE_DELAY_S:g} fall_delay={GATE_DELAY_S:g})")
    lines.append(f".model xd_dff d_dff(clk_delay={DFF_DELAY_S:g} set_delay={DFF_DELAY_S:g} "
                 f"reset_delay={DFF_DELAY_S:g})")
    lines.append(".save " + " ".join(f"v(v_{q})" for q in regs))
    lines.append(f".tran {period_s / 10:.6g} {(n + 1) * period_s:.6g}")
    lines.append(".end")
    return "\n".join(lines)


def simulate_gate_level(inp: CycleInputs, cfg: QCLIFConfig = QCLIFConfig(),
                        period_s: float = 10e-9) -> dict[str, np.ndarray]:
    """Registers after each rising edge from ngspice's event-driven (XSPICE) run of the
    generated gate netlist, read at the same instants as the transistor-level run."""
    circuit = build_circuit(cfg)
    res = run_netlist(gate_level_netlist(circuit, inp, period_s), circuit=f"qclif-{cfg.bits}bit-gates")
    p = res.plot
    sample_t = (np.arange(inp.cycles) + 1) * period_s + period_s / 2
    signed = {"va": False, "v": True, "z": False}
    return {name: _bits_to_int(np.stack([(np.interp(sample_t, p["time"], p[f"v(v_{q})"]) > 0.5) * 1
                                         for q in nets]), signed[name])
            for name, nets in circuit.registers.items()}


def _last_crossings(t: np.ndarray, v: np.ndarray, level: float, edges: np.ndarray) -> np.ndarray:
    """For each window (edges[k], edges[k+1]) the last time v crosses level (nan if none)."""
    above = v > level
    idx = np.flatnonzero(above[1:] != above[:-1])
    tc = t[idx] + (level - v[idx]) * (t[idx + 1] - t[idx]) / (v[idx + 1] - v[idx])
    out = np.full(len(edges) - 1, np.nan)
    k = np.searchsorted(edges, tc, side="right") - 1
    for j, tt in zip(k, tc):
        if 0 <= j < len(out):
            out[j] = tt if np.isnan(out[j]) else max(out[j], tt)
    return out


def simulate(inp: CycleInputs, cfg: QCLIFConfig = QCLIFConfig(), tech: Technology | None = None,
             period_s: float = 10e-9, vdd_V: float = 1.8, temp_C: float = 27.0,
             timeout_s: float = 3600.0) -> QCLIFRun:
    """Clock the neuron through ``inp`` in ngspice and read its registers back each cycle."""
    tech = tech or sky130("tt", body_resistance=BODY_RESISTANCE)
    circuit = build_circuit(cfg)
    deck = netlist(circuit, tech, inp, period_s, vdd_V, temp_C)
    return _run_deck(circuit, deck, inp, tech, period_s, vdd_V, timeout_s)


def _run_deck(circuit: QCLIFCircuit, deck: str, inp: CycleInputs, tech: Technology,
              period_s: float, vdd_V: float, timeout_s: float = 3600.0) -> QCLIFRun:
    """Run a deck made by :func:`netlist` and read registers, energy and settle times back."""
    res = run_netlist(deck, circuit=f"qclif-{circuit.cfg.bits}bit", spiceinit=tech.spiceinit,
                      timeout_s=timeout_s)
    return read_deck(res.plot, circuit, inp, period_s, vdd_V, wall_s=res.wall_s)


def read_deck(p, circuit: QCLIFCircuit, inp: CycleInputs, period_s: float, vdd_V: float,
              wall_s: float | None = None) -> QCLIFRun:
    """Registers after each edge, supply energy and settle time per cycle of a simulated deck."""
    cfg = circuit.cfg
    t = p["time"]
    n = inp.cycles
    edges = (np.arange(n) + 1) * period_s
    sample_t = edges + period_s / 2
    regs = {}
    signed = {"va": False, "v": True, "z": False}
    for name, nets in circuit.registers.items():
        bits = np.stack([(np.interp(sample_t, t, p[f"v({q})"]) > vdd_V / 2) * 1 for q in nets])
        regs[name] = _bits_to_int(bits, signed[name])
    # supply energy per cycle window [edge k-1, edge k) (the first window starts at 0)
    power = vdd_V * -p["i(vdd)"]
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (power[1:] + power[:-1]) * np.diff(t))])
    bounds = np.concatenate([[0.0], edges])
    e_cum = np.interp(bounds, t, cum)
    energy = np.diff(e_cum)       # energy of the cycle that *ends* at edge k (its inputs)
    # settle: last crossing of each D net after edge k-1, relative to that edge
    windows = np.concatenate([[period_s / 2], edges])
    settle = np.zeros(n)
    for dn in circuit.d_nets:
        last = _last_crossings(t, p[f"v({dn})"], vdd_V / 2, windows)
        rel = last - np.concatenate([[period_s / 2], edges[:-1]])
        settle = np.fmax(settle, np.nan_to_num(rel, nan=0.0))
    settle[0] = 0.0               # the first window holds the reset release, not a clock edge
    cq = []
    for q in circuit.registers["v"] + circuit.registers["va"]:
        last = _last_crossings(t, p[f"v({q})"], vdd_V / 2, np.concatenate([edges, [edges[-1] + period_s]]))
        rel = last - edges
        cq.extend(rel[np.isfinite(rel)])
    golden = run_cycles(cfg, inp)
    return QCLIFRun(registers=regs, golden=golden, energy_J=energy, settle_s=settle,
                    clk_to_q_s=float(np.max(cq)) if cq else float("nan"), period_s=period_s,
                    vdd_V=vdd_V, wall_s=wall_s)


def with_idle_prefix(inp: CycleInputs, idle: int = IDLE_CYCLES) -> CycleInputs:
    z = np.zeros(idle, dtype=np.int64)
    return CycleInputs(*(np.concatenate([z, getattr(inp, f.name)]) for f in fields(CycleInputs)))
