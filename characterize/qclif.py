"""Characterize the qCLIF gate-level neuron in ngspice: bit-exactness, energy, speed, leakage, area.

One transient run (:func:`simulate`) clocks the sky130 netlist of
:func:`neurospice.circuits.qclif.build_circuit` through a cycle sequence from reset, reads every
register back after each rising edge and compares it with the golden model
(:func:`neurospice.circuits.qclif.run_cycles`). The same run gives

* energy per cycle (supply current integrated over each clock period, ``E = ∫ VDD·I dt``),
  idle (all inputs zero, clock running) and active (random inputs), and per output spike
  (active energy / output spikes, at the run's spike rate, stated);
* the settle time of every register input after each edge (last crossing of VDD/2),
  whose maximum over the run plus a guard band gives ``fmax`` (:data:`FMAX_GUARD`); the
  bit-exact run is then repeated *at* that fmax, which is the real evidence.

Inputs switch :data:`INPUT_LAUNCH_S` after each rising edge, as if launched by upstream
registers, through ``buf_1`` drivers (their energy counts; the ideal sources' does not).
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from neurospice.circuits.engine import ngspice_version, run_netlist
from neurospice.circuits.errors import ConvergenceError
from neurospice.circuits.qclif import (CycleInputs, QCLIFCircuit, QCLIFConfig,
                                       build_circuit, cell_area_um2, random_inputs, run_cycles,
                                       transistor_count)
from neurospice.circuits.technology import Technology, sky130

#: Delay from a rising clock edge to the inputs' change: an upstream register's clock-to-Q
#: (sky130_fd_sc_hd__dfrtp_1 at tt/1.8 V is ~0.3 ns; this module measures its own registers').
INPUT_LAUNCH_S = 0.3e-9
#: Rise/fall time of the ideal sources (clock and inputs), before their buffers.
EDGE_S = 50e-12
#: fmax = 1 / (FMAX_GUARD · worst observed settle time): 15 % for the registers' setup time and
#: paths the random patterns did not excite. The bit-exact run at fmax checks the result.
FMAX_GUARD = 1.15
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
    """The same generated neuron as XSPICE digital gates (``circuits.qclif.xspice_lines``),
    the same stimulus timing as :func:`netlist`; register outputs bridged to volts (0/1 V)."""
    from neurospice.circuits.qclif import xspice_lines
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
    cfg = circuit.cfg
    res = run_netlist(deck, circuit=f"qclif-{cfg.bits}bit", spiceinit=tech.spiceinit,
                      timeout_s=timeout_s)
    p = res.plot
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
                    vdd_V=vdd_V, wall_s=res.wall_s)


def with_idle_prefix(inp: CycleInputs, idle: int = IDLE_CYCLES) -> CycleInputs:
    z = np.zeros(idle, dtype=np.int64)
    return CycleInputs(*(np.concatenate([z, getattr(inp, f.name)]) for f in fields(CycleInputs)))


# --------------------------------------------------------------------------------------------
# Orchestration: chunks in parallel (each from reset), cached so an interrupted run resumes
# --------------------------------------------------------------------------------------------
#: Random cycles per ngspice run; a characterization splits its cycles into such chunks and
#: runs them on the worker processes (each chunk starts from reset with its own seed).
CHUNK_CYCLES = 50
#: Random cycles checked bit-exact (each costs ~3.5 s of one core at transistor level).
FULL_CYCLES, QUICK_CYCLES = 200, 80
#: 45 nm scaling, first order (constant-field): linear dimensions × 45/130, so area × (45/130)²;
#: switching energy C·V² with C × 45/130 and VDD 1.8 V → 1.1 V (a typical 45 nm core supply).
NODE_NM, TARGET_NODE_NM, TARGET_VDD_V = 130.0, 45.0, 1.1
#: The seed's reported 45 nm numbers (200-neuron qCLIF RSNN layer at 100 MHz).
SEED_LAYER = {"neurons": 200, "area_mm2": 1.86, "energy_per_spike_pJ": 17.9, "clock_MHz": 100.0}


def _chunk_key(*parts) -> str:
    import hashlib
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _run_chunk(job: dict) -> dict:
    """One cached ngspice run (a worker-process entry point; plain-data in and out)."""
    cfg = QCLIFConfig(**job["cfg"])
    tech = sky130(job["corner"], body_resistance=BODY_RESISTANCE)
    inp = random_inputs(cfg, job["cycles"], seed=job["seed"])
    if job["idle"]:
        inp = with_idle_prefix(inp, job["idle"])
    circuit = build_circuit(cfg)
    deck = netlist(circuit, tech, inp, job["period_s"], job["vdd_V"])   # the circuit as run
    key = _chunk_key(job, tech.fingerprint, ngspice_version(), deck)
    cache = Path(job["cache_dir"]) / f"{key}.json"
    if cache.exists():
        try:
            return json.loads(cache.read_text())
        except json.JSONDecodeError:
            pass                                   # a torn write: simulate again
    operating_point = "dc"
    try:
        r = _run_deck(circuit, deck, inp, tech, job["period_s"], job["vdd_V"])
    except ConvergenceError:       # e.g. sky130 ff: the flip-flops' DC operating point fails
        deck = netlist(circuit, tech, inp, job["period_s"], job["vdd_V"], skip_op=True)
        r = _run_deck(circuit, deck, inp, tech, job["period_s"], job["vdd_V"])
        operating_point = "skipped (uic): DC operating point did not converge"
    out = {"job": {k: v for k, v in job.items() if k != "cache_dir"}, "mismatches": r.mismatches,
           "operating_point": operating_point,
           "cycles": inp.cycles, "energy_J": r.energy_J.tolist(), "settle_s": r.settle_s.tolist(),
           "clk_to_q_s": r.clk_to_q_s, "wall_s": r.wall_s,
           "registers": {k: v.tolist() for k, v in r.registers.items()},
           "golden": {k: v.tolist() for k, v in r.golden.items()}}
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(out))
    tmp.replace(cache)
    return out


def run_chunks(jobs: list[dict], workers: int, progress: bool, desc: str,
               keep_errors: bool = False) -> list[dict]:
    """Run (or read from cache) every job; ``keep_errors``: a job whose simulation fails
    (no convergence, timeout) yields ``{"error": message}`` instead of stopping the others."""
    from tqdm.auto import tqdm

    from neurospice.circuits.errors import NeurospiceError
    bar = tqdm(total=len(jobs), disable=not progress, desc=desc)
    results = [None] * len(jobs)
    with ProcessPoolExecutor(max(1, min(workers, len(jobs)))) as pool:
        futures = {pool.submit(_run_chunk, job): k for k, job in enumerate(jobs)}
        from concurrent.futures import as_completed
        for fut in as_completed(futures):
            try:
                results[futures[fut]] = fut.result()
            except NeurospiceError as exc:
                if not keep_errors:
                    raise
                results[futures[fut]] = {"error": f"{type(exc).__name__}: {exc}"}
            bar.update()
    bar.close()
    return results


def random_cycle_jobs(cfg: QCLIFConfig, cycles: int, period_s: float, vdd_V: float, corner: str,
                      seed: int, cache_dir: Path, idle: int = 0, chunk_cycles: int = CHUNK_CYCLES) -> list[dict]:
    n_chunks = -(-cycles // max(1, min(chunk_cycles, CHUNK_CYCLES)))
    sizes = [cycles // n_chunks + (k < cycles % n_chunks) for k in range(n_chunks)]
    return [{"cfg": asdict(cfg), "corner": corner, "cycles": sizes[k],
             "seed": seed + k, "idle": idle if k == 0 else 0, "period_s": period_s, "vdd_V": vdd_V,
             "cache_dir": str(cache_dir)} for k in range(n_chunks)]


def _summary(chunks: list[dict]) -> dict:
    """Bit-exactness, energies and settle times over the chunks of one operating point."""
    mism = sum(len(c["mismatches"]) for c in chunks)
    active_E, idle_E, spikes, settle = [], [], 0, 0.0
    for c in chunks:
        e = np.array(c["energy_J"])
        skip = c["job"]["idle"]
        if skip:
            idle_E.extend(e[2:skip])             # after reset release and the first edge
        active_E.extend(e[skip:])
        spikes += int(np.sum(c["registers"]["z"][skip:]))
        settle = max(settle, float(np.max(c["settle_s"])))
    random_cycles = sum(c["cycles"] - c["job"]["idle"] for c in chunks)
    return {"bit_exact": mism == 0, "mismatched_cycles": mism, "cycles": random_cycles,
            "energy_per_cycle_active_pJ": float(np.mean(active_E)) * 1e12,
            "energy_per_cycle_idle_pJ": float(np.mean(idle_E)) * 1e12 if idle_E else None,
            "spikes": spikes, "spikes_per_cycle": spikes / random_cycles,
            "energy_per_spike_pJ": float(np.sum(active_E)) * 1e12 / max(spikes, 1),
            "settle_max_ns": settle * 1e9,
            "clk_to_q_ns": max(c["clk_to_q_s"] for c in chunks) * 1e9,
            "wall_s": sum(c["wall_s"] for c in chunks)}


def fmax_from_settle(settle_max_ns: float) -> float:
    return 1e3 / (FMAX_GUARD * settle_max_ns)


def leakage_W(cfg: QCLIFConfig, tech: Technology, vdd_V: float = 1.8, temp_C: float = 27.0,
              settle_s: float = 40e-9) -> float:
    """Static supply power with the clock stopped (low) and all inputs 0, after a reset.

    A transient, not a DC operating point: ``.op`` may park the flip-flops' latches at their
    metastable mid-rail point, which draws crowbar current no real latch holds. The reset pulse
    puts every register in a defined state; the mean current over the last quarter is taken.
    """
    circuit = build_circuit(cfg)
    lines = _deck_head(circuit, tech, temp_C, vdd_V, f"qCLIF leakage {tech.label}")
    lines += ["Vclk clk_in 0 0", f"Vrst rst_n 0 PWL(0 0 2n 0 2.1n {vdd_V:g})"]
    lines += [f"V{net} {net} 0 0" for nets in circuit.inputs.values() for net in nets]
    lines += circuit.gates.lines()
    # ngspice's default abstol (1 pA): leakage currents per device are below SIM_OPTIONS' 100 pA
    lines += [".save i(vdd)", ".options reltol=1e-3", f".tran {settle_s / 100:g} {settle_s:g}", ".end"]
    res = run_netlist("\n".join(lines), circuit="qclif-leakage", spiceinit=tech.spiceinit)
    t, i = res.plot["time"], -res.plot["i(vdd)"]
    late = t >= 0.75 * settle_s
    return float(np.trapezoid(i[late], t[late]) / (t[late][-1] - t[late][0]) * vdd_V)


def area_and_transistors(cfg: QCLIFConfig, tech: Technology) -> dict:
    circuit = build_circuit(cfg)
    counts = circuit.cell_counts()
    per_cell = transistor_count(tech, counts)
    area = {k: cell_area_um2(tech, k) for k in counts}
    return {"cells": counts, "cell_count": sum(counts.values()),
            "transistors": sum(per_cell[k] * n for k, n in counts.items()),
            "area_um2": sum(area[k] * n for k, n in counts.items()),
            "area_note": "sum of the standard cells' placement areas (LEF SIZE), no routing overhead; "
                         "the input buffers stand for the upstream drivers and are included"}


def scaled_to_45nm(area_um2: float, energy_pJ: float, vdd_V: float) -> dict:
    s = TARGET_NODE_NM / NODE_NM
    return {"area_um2": area_um2 * s * s, "energy_per_spike_pJ": energy_pJ * s * (TARGET_VDD_V / vdd_V) ** 2,
            "method": f"first-order constant-field scaling from sky130 ({NODE_NM:g} nm) to "
                      f"{TARGET_NODE_NM:g} nm: area × ({TARGET_NODE_NM:g}/{NODE_NM:g})², energy × "
                      f"({TARGET_NODE_NM:g}/{NODE_NM:g}) × ({TARGET_VDD_V:g} V/{vdd_V:g} V)²",
            "seed_layer": SEED_LAYER,
            "seed_area_per_neuron_um2": SEED_LAYER["area_mm2"] * 1e6 / SEED_LAYER["neurons"],
            "seed_note": "the seed's area is for a 200-neuron layer with its synapse weight storage and "
                         "routing; ours is one neuron's logic with one synapse port per compartment"}


def characterize_qclif(quick: bool = False, out="runs/qclif", cfg: QCLIFConfig = QCLIFConfig(),
                       cycles: int | None = None, workers: int | None = None, seed: int = 0,
                       progress: bool = False) -> dict:
    """Bit-exactness vs the golden model over ``cycles`` random cycles at tt/1.8 V/100 MHz
    (default :data:`FULL_CYCLES`, :data:`QUICK_CYCLES` with ``quick``),
    energy (idle, active, per spike), settle-time fmax, leakage, transistors and area; full mode
    adds the bit-exact run at the characterized fmax and fmax per corner (tt/ss/ff) and VDD.
    Artefact ``qclif.json`` + plots under ``out``; chunk results cached under ``out/chunks``."""
    from .artefact import now_iso, save_artefact
    t0 = time.perf_counter()
    cycles = cycles or (QUICK_CYCLES if quick else FULL_CYCLES)
    out = Path(out)
    cache = out / "chunks"
    workers = workers or os.cpu_count() or 1
    tech = sky130("tt", body_resistance=BODY_RESISTANCE)
    nominal_period_s, vdd = 10e-9, 1.8
    jobs = random_cycle_jobs(cfg, cycles, nominal_period_s, vdd, "tt", seed, cache, idle=IDLE_CYCLES,
                             chunk_cycles=-(-cycles // workers))   # every worker busy on short runs
    nominal_chunks = run_chunks(jobs, workers, progress, "qclif tt 100 MHz")
    nominal = _summary(nominal_chunks)
    fmax = fmax_from_settle(nominal["settle_max_ns"])
    result = {"bit_exact": nominal["bit_exact"], "cycles": nominal["cycles"],
              "energy_per_spike_pJ": nominal["energy_per_spike_pJ"], "fmax_MHz": fmax,
              "nominal": {"corner": "tt", "vdd_V": vdd, "clock_MHz": 1e3 / (nominal_period_s * 1e9), **nominal}}
    result["leakage_nW"] = leakage_W(cfg, tech, vdd) * 1e9
    result.update(area_and_transistors(cfg, tech))
    if not quick:
        period = 1e-6 / fmax
        at = _summary(run_chunks(random_cycle_jobs(cfg, cycles, period, vdd, "tt", seed + 1000, cache),
                                 workers, progress, f"qclif tt {fmax:.0f} MHz"))
        result["at_fmax"] = {"clock_MHz": fmax, **at}
        result["bit_exact_at_fmax"] = at["bit_exact"]
        corners = []
        points = [(c, vdd) for c in ("tt", "ss", "ff")] + [("tt", v) for v in (1.6, 1.95)]
        slow_period = 20e-9          # every corner settles well inside it
        jobs = [random_cycle_jobs(cfg, CHUNK_CYCLES, slow_period, v, c, seed + 2000, cache)[0]
                for c, v in points]
        for (c, v), chunk in zip(points, run_chunks(jobs, workers, progress, "qclif corners",
                                                   keep_errors=True)):
            if "error" in chunk:
                corners.append({"corner": c, "vdd_V": v, "fmax_MHz": None, "error": chunk["error"]})
                continue
            s = _summary([chunk])
            corners.append({"corner": c, "vdd_V": v,            # fmax only where the logic was right
                            "fmax_MHz": fmax_from_settle(s["settle_max_ns"]) if s["bit_exact"] else None,
                            "bit_exact_at_50MHz": s["bit_exact"], "settle_max_ns": s["settle_max_ns"],
                            "energy_per_cycle_active_pJ": s["energy_per_cycle_active_pJ"],
                            "operating_point": chunk.get("operating_point", "dc")})
        result["fmax_by_corner"] = corners
    result["scaled_45nm"] = scaled_to_45nm(result["area_um2"], result["energy_per_spike_pJ"], vdd)
    result.update({"config": cfg.as_dict(), "technology": tech.label, "ngspice": ngspice_version(),
                   "fmax_guard": FMAX_GUARD, "input_launch_s": INPUT_LAUNCH_S, "sim_options": SIM_OPTIONS,
                   "energy_note": "supply energy of the neuron (cells incl. input buffers and clock buffer), "
                                  "integrated per clock period; per spike = active energy / output spikes "
                                  f"at {nominal['spikes_per_cycle']:.2f} spikes per cycle (random inputs)",
                   "created": now_iso(), "quick": quick})
    out.mkdir(parents=True, exist_ok=True)
    result["plot"] = str(plot_qclif(nominal_chunks[0], cfg, out / "qclif.png"))
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    result["artefact"] = str(save_artefact({"kind": "qclif", **result}, out / "qclif.json"))
    return result


def plot_qclif(chunk: dict, cfg: QCLIFConfig, path) -> Path:
    """Left: SPICE registers read back vs golden model per cycle. Right: float CLIF vs qCLIF
    on one stimulus (the justification of the integer form)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurospice.circuits.qclif import compare_float_integer
    fig, ax = plt.subplots(1, 2, figsize=(12, 4))
    k = np.arange(len(chunk["golden"]["v"]))
    ax[0].step(k, chunk["golden"]["v"], where="post", lw=3, alpha=0.4, label="golden V")
    ax[0].plot(k, chunk["registers"]["v"], "k.", ms=4, label="ngspice V register")
    ax[0].step(k, chunk["golden"]["va"], where="post", lw=3, alpha=0.4, label="golden Va")
    ax[0].plot(k, chunk["registers"]["va"], "r.", ms=4, label="ngspice Va register")
    zc = np.flatnonzero(np.array(chunk["registers"]["z"]))
    ax[0].plot(zc, np.full(len(zc), cfg.threshold), "g^", label="spike (z)")
    ax[0].set_xlabel("clock cycle")
    ax[0].set_ylabel("register value (integer)")
    ax[0].set_title(f"sky130 transistor level vs golden model ({cfg.bits}-bit, tt, 100 MHz)")
    ax[0].legend(fontsize=7)
    cmp_ = compare_float_integer(cfg)
    t = np.arange(len(cmp_["q_v"]))
    ax[1].plot(t, cmp_["f_v"], label="float CLIF V (scaled to θ_int)")
    ax[1].step(t, cmp_["q_v"], where="post", label="qCLIF V (integer)")
    ax[1].plot(t, cmp_["f_va"], "--", label="float CLIF V_a")
    ax[1].step(t, cmp_["q_va"], "--", where="post", label="qCLIF Va")
    ax[1].axhline(cfg.threshold, color="gray", lw=0.5)
    ax[1].set_xlabel("time step")
    ax[1].set_title("same stimulus: float CLIF vs integer qCLIF")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
