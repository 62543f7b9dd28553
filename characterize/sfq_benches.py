"""SFQ test benches: the cells' and the counting neuron's circuits with their stimuli and the
pulses expected at named probe junctions, as data (:class:`Bench`), and how one transient of a
bench is read (:func:`read_bench`): pulses are counted as 2π slips of a junction's phase (each
slip is one SFQ pulse through it), never by thresholding voltages; a circuit whose bias drives
junctions into the voltage state *never settles* and fails its check rather than producing a
wrong count; energy is the work of the bias sources per switching event (``I_b·Φ0`` for each
2π slip at a biased node).

The DC-to-SFQ converters that feed a bench stand for the test equipment: they stay at nominal
bias while everything else scales — except in the converter's own bench.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..circuits import sfq
from ..circuits import sfq_cells as cells
from ..circuits.engine import run_netlist
from ..circuits.errors import NeurospiceError

#: bias voltage of a resistive bias network (SFQ5ee-style RSFQ designs; static power is
#: ``BIAS_VOLTAGE_V · ΣI_bias``)
BIAS_VOLTAGE_V = 2.5e-3
#: maximum time step of every SFQ transient here (the plasma period of these junctions is
#: 3.0 ps; ``sfq.check_timestep`` accepts up to a third of it; ngspice's error control takes
#: shorter steps through every pulse)
STEP_S = 1e-12
#: time before the first input edge in which no junction may switch (settling of the bias)
SETTLE_S = 40e-12
#: DC-to-SFQ edge spacing used by the benches (≥ one drive trapezoid)
EDGE_GAP_S = 60e-12


class BiasError(NeurospiceError):
    """The bias drives junctions into the voltage state: the circuit never settles."""

    def __init__(self, circuit: str, bias_scale: float, junctions):
        self.circuit, self.bias_scale, self.junctions = circuit, bias_scale, list(junctions)
        super().__init__(f"{circuit}: at bias scale {bias_scale:g} junction(s) "
                         f"{', '.join(self.junctions[:5])} switch with no input — the bias drives "
                         "them into the voltage state and the circuit never settles; lower the bias")


@dataclass
class Bench:
    """One test bench. ``build(bias_scale)`` returns ``(cells, source_lines)``; ``expect`` maps
    probe junction names to the pulse count expected there; ``windows`` optionally maps a probe to
    one ``(t_lo, t_hi)`` window per expected pulse."""

    name: str
    build: Callable[[float], tuple[list, list[str]]]
    stop_s: float
    expect: dict[str, int]
    windows: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    first_input_s: float = SETTLE_S
    dut: str = ""          #: name prefix of the cell under test (for its junction count and bias)


@dataclass
class BenchRun:
    bias_scale: float
    pulses: dict[str, list[float]]       #: probe → slip times (s)
    slips: dict[str, int]                #: every junction → net slips
    early: list[str]                     #: junctions that switched before the first input
    bias_work_J: float                   #: Σ I_b·Φ0·slips over biased junction nodes
    cells: list
    plot: dict = field(repr=False, default_factory=dict)
    #: the sub-gap deck did not hold (a junction neared the gap): re-simulated with the full model
    full_quasiparticle_model: bool = False


def slip_times(t: np.ndarray, phase: np.ndarray) -> list[float]:
    """Times where ``phase`` first passes (2k+1)π, k = 0, 1, … (one per forward 2π slip)."""
    out, k = [], 0
    base = phase[0]
    while True:
        idx = np.flatnonzero(phase - base >= (2 * k + 1) * math.pi)
        if not len(idx):
            return out
        out.append(float(t[idx[0]]))
        k += 1


def bench_netlist(bench: Bench, bias_scale: float = 1.0, subgap_only: bool = True) -> tuple[str, list, list]:
    """``(netlist, cells, junctions)`` of ``bench`` at a global bias scale; by default the
    sub-gap deck (:mod:`neurospice.circuits.sfq`; :func:`exact_plot` checks it held)."""
    parts, sources = bench.build(bias_scale)
    lines, jjs = [], []
    for c in parts:
        lines += c.netlist_lines()
        jjs += c.jjs
    return (sfq.transient_netlist(bench.name, lines + sources, jjs, bench.stop_s, STEP_S,
                                  subgap_only=subgap_only), parts, jjs)


#: ngspice time limit of one bench: a verified neuron-sample of the signed neuron takes ~15 s
#: alone on a core (sub-gap deck, error-controlled steps), far longer with the full junction
#: model on a loaded machine
BENCH_TIMEOUT_S = 1800.0


def run_bench(bench: Bench, bias_scale: float = 1.0) -> BenchRun:
    """One transient of ``bench`` in ngspice (uncached; characterization goes through the sweep
    runner instead, :mod:`neurospice.characterize.sfq`)."""
    plot, parts, jjs = _simulate(bench, bias_scale, subgap_only=True)
    plot, full = exact_plot(plot, bench, bias_scale, jjs)
    return read_bench(plot, bench, parts, jjs, bias_scale, full)


def _simulate(bench: Bench, bias_scale: float, subgap_only: bool) -> tuple[dict, list, list]:
    """``(plot, cells, junctions)``: one ngspice run of ``bench``'s sub-gap or full deck."""
    net, parts, jjs = bench_netlist(bench, bias_scale, subgap_only)
    point = {"bias_scale": bias_scale, "junctions": "sub-gap" if subgap_only else "full"}
    return run_netlist(net, circuit=bench.name, point=point, timeout_s=BENCH_TIMEOUT_S).plot, parts, jjs


def exact_plot(plot, bench: Bench, bias_scale: float, jjs: list) -> tuple[dict, bool]:
    """``(plot, False)`` if every junction of the sub-gap deck's ``plot`` stayed below the gap
    (:func:`~neurospice.circuits.sfq.above_subgap`: the deck was exact), else ``(plot of the
    bench re-simulated with the full quasiparticle model, True)``. The re-run (rare: a junction
    in the voltage state) has ``BENCH_TIMEOUT_S`` and, inside a sweep, counts as the measuring
    step's time, not as ngspice analysis — the sweep's efficiency reads it as overhead."""
    if not sfq.above_subgap(plot, jjs):
        return plot, False
    return _simulate(bench, bias_scale, subgap_only=False)[0], True


def read_bench(plot, bench: Bench, parts: list, jjs: list, bias_scale: float,
               full_quasiparticle_model: bool = False) -> BenchRun:
    """Pulses, slips, early switching and bias work of one simulated bench."""
    t = plot["time"]
    slips, early = {}, []
    i_first = int(np.searchsorted(t, bench.first_input_s))
    for j in jjs:
        ph = plot[f"v(ph_{j.name.lower()})"]
        slips[j.name] = int(round((ph[-1] - ph[0]) / (2 * math.pi)))
        if np.ptp(ph[: i_first + 1]) > math.pi:
            early.append(j.name)
    pulses = {p: slip_times(t, plot[f"v(ph_{p.lower()})"]) for p in bench.expect}
    node_slips = {}
    for j in jjs:
        if j.b == "0":
            node_slips[j.a] = node_slips.get(j.a, 0) + slips[j.name]
    work = sum(i * sfq.PHI0_WB * node_slips.get(node, 0) for c in parts for node, i in c.biases)
    return BenchRun(bias_scale, pulses, slips, early, work, parts, plot, full_quasiparticle_model)


def require_settled(bench: Bench, run: BenchRun) -> BenchRun:
    """Raise :class:`BiasError` if junctions switched before the first input (a bias that never
    lets the circuit settle) — so such a run never passes for a wrong pulse count."""
    if run.early:
        raise BiasError(bench.name, run.bias_scale, run.early)
    return run


def check(bench: Bench, run: BenchRun) -> bool:
    if run.early:
        return False
    for probe, n in bench.expect.items():
        if len(run.pulses[probe]) != n or run.slips[probe] != n:
            return False
        for t, (lo, hi) in zip(run.pulses[probe], bench.windows.get(probe, [])):
            if not lo <= t <= hi:
                return False
    return True


def margin_pct(low: float, high: float) -> float:
    """The symmetric margin: the smaller of the two distances from nominal, in %."""
    return 100.0 * min(1.0 - low, high - 1.0)


# ------------------------------------------------------------------------------ benches --

def _driven(name: str, node: str, edges_s) -> tuple[cells.Cell, str]:
    """A DC-to-SFQ converter at nominal bias driven with one rising edge per time."""
    return (cells.dc_to_sfq(name, f"{name}_in", node, 1.0),
            cells.dc_drive(f"{name}_src", f"{name}_in", edges_s))


def _line_in(name: str, node: str, edges_s, bias_scale: float) -> tuple[list, str]:
    """A nominal test source and a two-stage JTL ``name`` (at ``bias_scale``) into ``node``:
    ``(cells, source line)``; the JTL's last junction ``{name}_J1`` counts the pulses sent."""
    src, line = _driven(f"D{name}", f"{name}_src", edges_s)
    return [src, cells.jtl(name, f"{name}_src", node, 2, bias_scale)], line


def _line_out(node: str, bias_scale: float) -> list:
    """A two-stage JTL ``O`` (probe ``O_J1``) and a sink after ``node``."""
    return [cells.jtl("O", node, "oo", 2, bias_scale), cells.sink("S", "oo", bias_scale)]


def _edges(n: int, start: float = SETTLE_S + 20e-12, gap: float = EDGE_GAP_S * 1.5) -> list[float]:
    return [start + k * gap for k in range(n)]


def bench_dc_to_sfq() -> Bench:
    edges = _edges(3)

    def build(s):
        return ([cells.dc_to_sfq("D", "d_in", "a", s), *_line_out("a", s)],
                [cells.dc_drive("D_src", "d_in", edges)])
    return Bench("dc_to_sfq", build, edges[-1] + 100e-12, {"O_J1": 3}, dut="D")


def bench_jtl() -> Bench:
    edges = _edges(3)

    def build(s):
        src, line = _driven("D", "i", edges)
        return [src, cells.jtl("X", "i", "a", 4, s), *_line_out("a", s)], [line]
    return Bench("jtl", build, edges[-1] + 100e-12, {"O_J1": 3}, dut="X")


def bench_splitter() -> Bench:
    edges = _edges(3)

    def build(s):
        feed, line = _line_in("I", "a", edges, s)
        return [*feed, cells.splitter("X", "a", "p", "q", s),
                cells.jtl("P", "p", "pp", 2, s), cells.jtl("Q", "q", "qq", 2, s),
                cells.sink("SP", "pp", s), cells.sink("SQ", "qq", s)], [line]
    return Bench("splitter", build, edges[-1] + 100e-12, {"P_J1": 3, "Q_J1": 3}, dut="X")


def bench_merger() -> Bench:
    a_edges = _edges(2, gap=200e-12)
    b_edges = [a_edges[0] + 100e-12, a_edges[1] + 30e-12]      # the second pair 30 ps apart

    def build(s):
        fa, la = _line_in("A", "a", a_edges, s)
        fb, lb = _line_in("B", "b", b_edges, s)
        return [*fa, *fb, cells.merger("X", "a", "b", "o", s), *_line_out("o", s)], [la, lb]
    # every input pulse arrives once at the output and never travels back into the other input
    return Bench("merger", build, b_edges[-1] + 120e-12, {"O_J1": 4, "A_J1": 2, "B_J1": 2}, dut="X")


def bench_dff() -> Bench:
    t0 = SETTLE_S + 20e-12
    d_edges = [t0, t0 + 160e-12, t0 + 230e-12]            # the third D arrives while full: escapes
    c_edges = [t0 + 60e-12, t0 + 120e-12, t0 + 300e-12]   # read (1), read empty (0), read (1)

    def build(s):
        fd, ld = _line_in("JD", "d", d_edges, s)
        fc, lc = _line_in("JC", "c", c_edges, s)
        return [*fd, *fc, cells.dff("X", "d", "c", "q", s), *_line_out("q", s)], [ld, lc]
    win = [(c_edges[0], c_edges[0] + 50e-12), (c_edges[2], c_edges[2] + 50e-12)]
    return Bench("dff", build, c_edges[-1] + 100e-12, {"O_J1": 2, "JD_J1": 3, "JC_J1": 3},
                 windows={"O_J1": win}, dut="X")


def bench_tff() -> Bench:
    """Programmable stage: fix (two tokens), free (one, state 1); five inputs (carries on the
    1st, 3rd, 5th); free + fix (two tokens: transparent), two inputs (two carries)."""
    gap = 80e-12
    t_fix, t_free = SETTLE_S, SETTLE_S + EDGE_GAP_S
    count = _edges(5, start=t_free + EDGE_GAP_S, gap=gap)
    t_free2 = count[-1] + gap
    t_fix2 = t_free2 + EDGE_GAP_S
    passing = [t_fix2 + gap, t_fix2 + 2 * gap]

    def build(s):
        fx, lx = _line_in("JX", "x", [t_fix, t_fix2], s)
        ff, lf = _line_in("JF", "f", [t_free, t_free2], s)
        ft, lt = _line_in("JT", "t", count + passing, s)
        return [*fx, *ff, *ft, cells.tff("X", "t", "q", "x", "f", s), *_line_out("q", s)], [lx, lf, lt]
    carried = count[0::2] + passing
    win = [(t, t + 70e-12) for t in carried]
    bench = Bench("tff", build, passing[-1] + 100e-12, {"O_J1": len(carried)}, windows={"O_J1": win},
                  dut="X")
    bench.first_input_s = SETTLE_S     # the fix edge is the first input
    return bench


def bench_inhibit() -> Bench:
    """Inhibit gate: an excitatory pulse passes (1); an inhibitory one, then an excitatory one
    absorbed (0) and the next passes (1); two inhibitory ones (the second escapes), an excitatory
    one absorbed (0), the next passes (1)."""
    gap = 60e-12
    t0 = SETTLE_S + 20e-12
    clk = [t0, t0 + 2 * gap, t0 + 3 * gap, t0 + 6 * gap, t0 + 7 * gap]
    inh = [t0 + gap, t0 + 4 * gap, t0 + 5 * gap]

    def build(s):
        fi, li = _line_in("JI", "i", inh, s)
        fc, lc = _line_in("JC", "c", clk, s)
        return [*fi, *fc, cells.inhibit_gate("X", "i", "c", "q", s), *_line_out("q", s)], [li, lc]
    passed = [clk[0], clk[2], clk[4]]
    return Bench("inhibit", build, clk[-1] + 100e-12, {"O_J1": 3, "JI_J1": 3, "JC_J1": 5},
                 windows={"O_J1": [(t, t + 50e-12) for t in passed]}, dut="X")


CELL_BENCHES = {"dc_to_sfq": bench_dc_to_sfq, "jtl": bench_jtl, "splitter": bench_splitter,
                "merger": bench_merger, "dff": bench_dff, "tff": bench_tff, "inhibit": bench_inhibit}

#: excitatory inputs of the neuron (the merger tree's leaves; seed 002's neuron had 16)
NEURON_INPUTS = 16
#: inhibitory inputs of the neuron (one inhibit gate each)
NEURON_INHIBITORY = 16


#: an upper bound of one inhibit gate's delay with its JTLs (10.5 ps measured at nominal bias)
INHIBIT_STAGE_DELAY_S = 15e-12


def gate_chain_delay_s(gates: int | None = None) -> float:
    """Upper bound of the delay through ``gates`` inhibit gates (default: the neuron's)."""
    return (NEURON_INHIBITORY if gates is None else gates) * INHIBIT_STAGE_DELAY_S

#: counter stages of the characterized neuron: thresholds 1, 2, 4, 8, 16
NEURON_STAGES = 4


def programmed_neuron_bench(name: str, counting: int, line_times: dict, t_flush: float,
                            stop_s: float, stages: int = NEURON_STAGES,
                            inhibit_times: dict | None = None) -> Bench:
    """The 4-stage neuron programmed on chip to ``2**counting`` (fix all at ``SETTLE_S``, free
    the first ``counting`` one edge later), a flush pulse on line 0 at ``t_flush`` and then
    the excitatory pulses ``line_times {line: [t, …]}`` and inhibitory ones ``inhibit_times``
    (each line's pulses ≥ ``EDGE_GAP_S`` apart). No expectations: callers set
    ``expect``/``windows``."""
    if not 0 <= counting <= stages:
        raise NeurospiceError(f"{counting} counting stages out of {stages}")
    t_fix, t_free = SETTLE_S, SETTLE_S + EDGE_GAP_S
    if t_flush < t_free + EDGE_GAP_S:
        raise NeurospiceError("the flush must come after programming")
    inhibit_times = inhibit_times or {}
    bad = ([k for k in line_times if not 0 <= k < NEURON_INPUTS]
           + [k for k in inhibit_times if not 0 <= k < NEURON_INHIBITORY])
    if bad:
        raise NeurospiceError(f"the neuron has {NEURON_INPUTS} excitatory and {NEURON_INHIBITORY} "
                              f"inhibitory lines; got pulses for line(s) {sorted(set(bad))}")
    lines_t = {("e", k): sorted(([t_flush] if k == 0 else []) + list(line_times.get(k, [])))
               for k in range(NEURON_INPUTS)}
    lines_t.update({("i", k): sorted(inhibit_times.get(k, [])) for k in range(NEURON_INHIBITORY)})
    if any(len(v) > 1 and min(np.diff(v)) < EDGE_GAP_S for v in lines_t.values()):
        raise NeurospiceError("input pulses on one line closer than the DC-to-SFQ test sources allow")

    def build(s):
        parts, lines = [], []
        for k in range(stages):
            for kind, edges in (("fix", [t_fix]), ("free", [t_free] if k < counting else [])):
                node = f"ctl_{kind}{k}"
                if edges:
                    d, line = _driven(f"C{kind}{k}", node, edges)
                    parts.append(d)
                    lines.append(line)
                else:
                    lines.append(f"R_{node} {node} 0 1")        # unused control line
        for (kind, k), times in lines_t.items():
            node = ("in" if kind == "e" else "inh") + str(k)
            if times:
                d, line = _driven(f"D{node}", node, times)
                parts.append(d)
                lines.append(line)
            else:
                lines.append(f"R_{node} {node} 0 1")           # idle input line
        parts += [cells.counting_neuron("N", [f"in{k}" for k in range(NEURON_INPUTS)], "q", stages, "ctl", s,
                                        inhibitory=[f"inh{k}" for k in range(NEURON_INHIBITORY)]),
                  *_line_out("q", s)]
        return parts, lines
    bench = Bench(name, build, stop_s, {"O_J1": 0}, dut="N")
    bench.first_input_s = SETTLE_S
    return bench


def bench_neuron(counting: int, n_pulses: int | None = None, rate_Hz: float = 10e9) -> Bench:
    """Threshold ``2**counting`` programmed on chip, one flush input (fires once), then
    ``n_pulses`` (default 2·threshold + 1) inputs round-robin over the excitatory lines, ``1/rate_Hz``
    apart. Expected: after the flush, one spike per ``threshold`` inputs, right after the input
    that completes the count."""
    threshold = 2 ** counting
    n = 2 * threshold + 1 if n_pulses is None else n_pulses
    t_flush = SETTLE_S + 2 * EDGE_GAP_S
    t0 = t_flush + 2 * EDGE_GAP_S               # after the flush has rippled through
    times = [t_flush] + [t0 + (k - 1) / rate_Hz for k in range(1, n + 1)]
    per_line: dict[int, list[float]] = {}
    for k, t in enumerate(times[1:], start=1):
        per_line.setdefault(k % NEURON_INPUTS, []).append(t)
    bench = programmed_neuron_bench(f"neuron_T{threshold}", counting, per_line, t_flush,
                                    times[-1] + 250e-12 + gate_chain_delay_s())
    fires = [0] + [k * threshold for k in range(1, n // threshold + 1)]   # indices into times
    bench.expect = {"O_J1": len(fires)}
    late_s = 200e-12 + gate_chain_delay_s()
    bench.windows = {"O_J1": [(times[i], times[i] + late_s) for i in fires]}
    bench.input_times, bench.rate_Hz, bench.threshold = times, rate_Hz, threshold
    return bench


#: spacing of excitatory pulses within one time step of ``verify``'s stepped benches (at
#: nominal bias; the characterized neuron counts right up to 50.1 GHz, 20 ps)
LINE_SPACING_S = 30e-12
#: spacing in the inhibition bench, which also runs at ±20 % bias (the transfer benches' 10 GHz)
INHIBITION_SPACING_S = 100e-12
#: from a step's inhibitory pulses to its first excitatory one
INHIBIT_SETUP_S = 40e-12
#: after a step's last excitatory pulse: it must pass every inhibit gate before the next step's
#: inhibitory pulses arrive, and the counter's ripple must end inside its step
STEP_GUARD_S = 150e-12


@dataclass
class SteppedRun:
    """A stepped bench and where its steps start (s), for :func:`spikes_per_step`."""

    bench: Bench
    step_starts_s: list[float]
    t_flush_s: float


def stepped_neuron_bench(name: str, threshold: int, excitatory, inhibitory=None,
                         spacing_s: float = LINE_SPACING_S) -> SteppedRun:
    """The neuron programmed to ``threshold`` and fed time steps: ``excitatory [steps, lines]``
    and ``inhibitory [steps, lines]`` 0/1 pulses per line and step. In each step the
    inhibitory pulses come first (all at once: each line has its own gate), the excitatory
    ones ``INHIBIT_SETUP_S`` later, one every ``spacing_s`` in line order (idle lines
    take no slot), then ``STEP_GUARD_S`` plus the gate chain's delay."""
    exc = np.asarray(excitatory, dtype=int)
    inh = np.zeros((exc.shape[0], 0), int) if inhibitory is None else np.asarray(inhibitory, dtype=int)
    if exc.ndim != 2 or inh.ndim != 2 or inh.shape[0] != exc.shape[0]:
        raise NeurospiceError(f"excitatory/inhibitory trains must be [steps, lines] with equal steps, "
                              f"got {exc.shape} and {inh.shape}")
    if exc.size and exc.max() > 1 or inh.size and inh.max() > 1 or min(exc.min(initial=0), inh.min(initial=0)) < 0:
        raise NeurospiceError("a stepped bench takes at most one pulse per line and step")
    if exc.shape[1] > NEURON_INPUTS or inh.shape[1] > NEURON_INHIBITORY:
        raise NeurospiceError(f"the neuron has {NEURON_INPUTS} excitatory and {NEURON_INHIBITORY} "
                              f"inhibitory lines; got trains for {exc.shape[1]} and {inh.shape[1]}")
    counting = int(round(math.log2(threshold)))
    if 2 ** counting != threshold:
        raise NeurospiceError(f"threshold {threshold} is not a power of two")
    guard = STEP_GUARD_S + gate_chain_delay_s()
    t_flush = SETTLE_S + 2 * EDGE_GAP_S
    t = t_flush + EDGE_GAP_S + guard
    per_e: dict[int, list[float]] = {}
    per_i: dict[int, list[float]] = {}
    starts = []
    for e_row, i_row in zip(exc, inh):
        starts.append(t)
        for k in np.flatnonzero(i_row):
            per_i.setdefault(int(k), []).append(t)
        t += INHIBIT_SETUP_S
        for k in np.flatnonzero(e_row):
            per_e.setdefault(int(k), []).append(t)
            t += spacing_s
        t = max(t, starts[-1] + EDGE_GAP_S) + guard    # (a line's pulses ≥ EDGE_GAP_S apart)
    bench = programmed_neuron_bench(name, counting, per_e, t_flush, t + 100e-12,
                                    inhibit_times=per_i)
    return SteppedRun(bench, starts, t_flush)


def spikes_per_step(stepped: SteppedRun, run: BenchRun) -> list[int]:
    """Output pulses per step, each attributed by its time minus the flush's latency (the
    flush, the first input, always fires). Raises if the neuron did not fire on the flush."""
    spikes = run.pulses["O_J1"]
    if not spikes:
        raise NeurospiceError(f"{stepped.bench.name}: the neuron did not fire on the flush — "
                              "the circuit is not working")
    latency = spikes[0] - stepped.t_flush_s
    counts = [0] * len(stepped.step_starts_s)
    for t in spikes[1:]:
        k = int(np.searchsorted(stepped.step_starts_s, t - latency, side="right")) - 1
        if 0 <= k < len(counts):
            counts[k] += 1
    return counts


#: the inhibition bench (threshold 2): per step, the excitatory pulse count and the inhibitory
#: lines pulsed; the output pulses worked out by hand from the gates' rule (``counting_neuron``):
#: tokens 0,1 absorb 2 of 3 → c=1 | +1 → fire, c=0 | token 5 | line 5 again escapes (full);
#: 1 absorbed, 1 counted → c=1 | +1 → fire | tokens 2,3,4 absorb 3 of 5 → c=2 → fire |
#: tokens 0,3; the pulse is absorbed by gate 0 (chain order) | token 0 again: stored, as gate 0
#: was cleared | tokens 0,3 absorb 2 of 3 → c=1 | +1 → fire. (Had gate 3 been cleared first,
#: the second token 0 would escape and step 8 would fire instead of step 9.)
INHIBITION_STEPS = [(3, (0, 1)), (1, ()), (0, (5,)), (2, (5,)), (1, ()), (5, (2, 3, 4)),
                    (1, (0, 3)), (0, (0,)), (3, ()), (1, ())]
INHIBITION_EXPECTED = [0, 1, 0, 0, 1, 1, 0, 0, 0, 1]


def bench_inhibition() -> SteppedRun:
    """The neuron at threshold 2 on :data:`INHIBITION_STEPS` (expected: INHIBITION_EXPECTED)."""
    steps = len(INHIBITION_STEPS)
    exc = np.zeros((steps, NEURON_INPUTS), int)
    inh = np.zeros((steps, NEURON_INHIBITORY), int)
    for s, (n_exc, lines) in enumerate(INHIBITION_STEPS):
        exc[s, :n_exc] = 1
        inh[s, list(lines)] = 1
    return stepped_neuron_bench("neuron_inhibition", 2, exc, inh, INHIBITION_SPACING_S)


def expected_transfer(threshold: int, n_inputs: int) -> list[int]:
    """Spikes after n inputs of a freshly programmed neuron: the flush fires once, then one
    spike per ``threshold`` inputs."""
    return [0 if n == 0 else 1 + (n - 1) // threshold for n in range(n_inputs + 1)]


def dut_stats(run: BenchRun, dut: str) -> dict:
    """Junction count, bias current and static power of the cell under test."""
    part = [c for c in run.cells if c.name == dut][0]
    i_b = part.bias_total_A()
    return {"jj_count": len(part.jjs), "bias_current_mA": i_b * 1e3,
            "static_power_uW": BIAS_VOLTAGE_V * i_b * 1e6}


def neuron_transfer(bench: Bench, run: BenchRun, n_inputs: int) -> list[int]:
    """Output spikes counted after each number of input pulses 0..n. Each spike is attributed
    to the input nearest to (spike time − latency), the latency being the flush's (the first
    input always fires); one run gives the whole transfer."""
    inputs = np.asarray(bench.input_times)
    outs = run.pulses["O_J1"]
    if not outs:
        return [0] * (n_inputs + 1)
    latency = outs[0] - inputs[0]
    owner = [int(np.argmin(np.abs(inputs - (t - latency)))) for t in outs]
    return [sum(1 for i in owner if i < n) for n in range(n_inputs + 1)]
