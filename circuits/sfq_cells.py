"""SFQ cell set built from the behavioural junction of :mod:`neurospice.circuits.sfq`.

Every cell is built by :class:`CellBuilder`: grounded junctions with their bias (an ideal
current source standing for the resistive bias network, ``bias_fraction·I_c·bias_scale``),
series junctions and inductors. ``bias_scale`` is the *global* bias factor swept for margins.
Node names are prefixed by the cell instance name; a cell's ports are plain node names chosen by
the caller, so cells chain by sharing a node (each input port is the node of the cell's first
junction, each output port the node of its last one).

Topologies are the textbook RSFQ ones (Likharev & Semenov 1991; Polonsky et al. 1993); the
element values are this module's own, chosen by the margin sweeps of
:mod:`neurospice.characterize.sfq` (reported per cell by ``neurospice characterize sfq``).
"""
from __future__ import annotations


from .errors import NetlistError
from .sfq import JJ, JTL_AREA, JTL_BIAS_FRACTION, JTL_L_H, PHI0_WB, Cell, JJModel


class CellBuilder:
    """Collects the lines and junctions of one cell instance."""

    def __init__(self, name: str, bias_scale: float = 1.0, unit: JJModel = JJModel()):
        if not bias_scale > 0:
            raise NetlistError(name, f"bias scale must be positive, got {bias_scale!r}")
        self.name, self.bias_scale, self.unit = name, bias_scale, unit
        self.lines: list[str] = []
        self.jjs: list[JJ] = []
        self.biases: list[tuple[str, float]] = []

    def node(self, tag: str) -> str:
        return f"{self.name}_{tag}"

    def grounded(self, tag: str, node: str, area: float, bias_fraction: float = 0.0) -> None:
        """Junction ``node``→ground (β_c = 1 shunt) with bias ``bias_fraction·I_c``."""
        self.jjs.append(JJ(f"{self.name}_{tag}", node, "0", area))
        if bias_fraction:
            self.bias(tag, node, bias_fraction * self.unit.scaled(area).ic_A)

    def series(self, tag: str, a: str, b: str, area: float) -> None:
        """Unbiased series junction ``a``→``b`` (β_c = 1 shunt): blocks back-propagation."""
        self.jjs.append(JJ(f"{self.name}_{tag}", a, b, area))

    def inductor(self, tag: str, a: str, b: str, l_H: float) -> None:
        self.lines.append(f"L{self.name}_{tag} {a} {b} {l_H:.6g}")

    def bias(self, tag: str, node: str, current_A: float) -> None:
        """Extra bias current into ``node`` (scaled by the global bias)."""
        i = current_A * self.bias_scale
        self.lines.append(f"I{self.name}_{tag} 0 {node} {i:.6g}")
        self.biases.append((node, i))

    def cell(self) -> Cell:
        return Cell(self.name, self.lines, self.jjs, self.biases)


# --------------------------------------------------------------------------------------------
# Connection convention: an *input* port is where the cell's input inductor starts (no junction
# on it); an *output* port is the node of the cell's last grounded junction. So ``A.out = B.in``
# puts exactly one junction on the shared node. A chain ends in :func:`sink`.
# Element values below were chosen by margin sweeps of the global bias (see module docstring);
# the margins each reaches are measured, not asserted, by ``neurospice characterize sfq``.
# --------------------------------------------------------------------------------------------

#: inductance of a plain interconnect between two junctions (β_L ≈ 1.5 at 250 µA)
L_LINK_H = JTL_L_H


def jtl(name: str, n_in: str, n_out: str, stages: int = 2, bias_scale: float = 1.0,
        unit: JJModel = JJModel()) -> Cell:
    """Josephson transmission line of ``stages`` biased grounded junctions, each after a link
    inductor (the first one from ``n_in``)."""
    if stages < 1:
        raise NetlistError(name, "a JTL needs at least one stage")
    b = CellBuilder(name, bias_scale, unit)
    prev = n_in
    for k in range(stages):
        node = n_out if k == stages - 1 else b.node(f"n{k}")
        b.inductor(f"L{k}", prev, node, L_LINK_H)
        b.grounded(f"J{k}", node, JTL_AREA, JTL_BIAS_FRACTION)
        prev = node
    return b.cell()


#: DC-to-SFQ: input inductor to ground, series junction, output junction
DCSFQ_L_IN_H, DCSFQ_SERIES_AREA, DCSFQ_L_OUT_H = 3e-12, 3.0, 1e-12
#: input current step that fires the converter once per rising edge (its window is swept too)
DCSFQ_DRIVE_A = 700e-6


def dc_to_sfq(name: str, n_in: str, n_out: str, bias_scale: float = 1.0,
              unit: JJModel = JJModel()) -> Cell:
    """DC-to-SFQ converter: each rising edge of the input *current* (0 → ``DCSFQ_DRIVE_A``)
    emits one SFQ pulse at ``n_out``; the falling edge resets the converter's loop through the
    series junction (a negative slip there, nothing at the output). ``n_in`` takes a current
    source."""
    b = CellBuilder(name, bias_scale, unit)
    m = b.node("m")
    b.inductor("Lin", n_in, "0", DCSFQ_L_IN_H)
    b.series("J1", n_in, m, DCSFQ_SERIES_AREA)
    b.inductor("Lout", m, n_out, DCSFQ_L_OUT_H)
    b.grounded("J2", n_out, JTL_AREA, JTL_BIAS_FRACTION)
    return b.cell()


def dc_drive(name: str, node: str, rise_times_s, amplitude_A: float = DCSFQ_DRIVE_A,
             ramp_s: float = 10e-12, high_s: float = 20e-12) -> str:
    """Current source for a :func:`dc_to_sfq` input: a trapezoid (rise ``ramp_s``, flat
    ``high_s``, fall ``ramp_s``) starting at each of ``rise_times_s`` (one SFQ pulse each)."""
    period = 2 * ramp_s + high_s
    times = sorted(rise_times_s)
    if any(b - a < period for a, b in zip(times, times[1:])):
        raise NetlistError(name, f"DC-to-SFQ edges closer than {period:.3g} s overlap")
    pts = [(0.0, 0.0)]
    for t in times:
        pts += [(t, 0.0), (t + ramp_s, amplitude_A), (t + ramp_s + high_s, amplitude_A),
                (t + period, 0.0)]
    return f"I{name} 0 {node} PWL(" + " ".join(f"{t:.6g} {i:.6g}" for t, i in pts) + ")"


def sink(name: str, n_in: str, bias_scale: float = 1.0, unit: JJModel = JJModel()) -> Cell:
    """Chain terminator: one JTL stage and a matched resistor to ground."""
    b = CellBuilder(name, bias_scale, unit)
    n = b.node("n")
    b.inductor("L", n_in, n, L_LINK_H)
    b.grounded("J", n, JTL_AREA, JTL_BIAS_FRACTION)
    b.lines.append(f"R{name} {n} 0 {unit.scaled(JTL_AREA).shunt_for_beta_c(1.0):.6g}")
    return b.cell()


#: splitter: input stage, a larger driving junction, two output stages
SPLIT_DRIVE_AREA, SPLIT_DRIVE_BIAS = 4.0, 0.7


def splitter(name: str, n_in: str, out_a: str, out_b: str, bias_scale: float = 1.0,
             unit: JJModel = JJModel()) -> Cell:
    """One pulse in, one pulse on each of ``out_a`` and ``out_b``."""
    b = CellBuilder(name, bias_scale, unit)
    n1, m = b.node("n1"), b.node("m")
    b.inductor("Lin", n_in, n1, L_LINK_H)
    b.grounded("J1", n1, JTL_AREA, JTL_BIAS_FRACTION)
    b.inductor("L1", n1, m, L_LINK_H)
    b.grounded("J2", m, SPLIT_DRIVE_AREA, SPLIT_DRIVE_BIAS)
    for tag, out in (("A", out_a), ("B", out_b)):
        b.inductor("L" + tag, m, out, L_LINK_H)
        b.grounded("J3" + tag, out, JTL_AREA, JTL_BIAS_FRACTION)
    return b.cell()


#: merger (confluence buffer): input junctions lightly biased, series blocking junctions,
#: a merge junction carrying most of the bias — the bias it sends back through the series
#: junctions pre-loads them in the direction a *backward* pulse switches them (blocking),
#: away from the direction a forward pulse would.
MERGE_IN_AREA, MERGE_IN_BIAS = 3.0, 0.3
MERGE_SERIES_AREA, MERGE_L_SERIES_H = 2.5, 3e-12
MERGE_NODE_AREA, MERGE_NODE_BIAS = 2.0, 1.65


def merger(name: str, in_a: str, in_b: str, n_out: str, bias_scale: float = 1.0,
           unit: JJModel = JJModel()) -> Cell:
    """A pulse on either input gives one output pulse; none travels back into the other input."""
    b = CellBuilder(name, bias_scale, unit)
    m = b.node("m")
    for tag, inp in (("A", in_a), ("B", in_b)):
        n1, x = b.node("n1" + tag), b.node("x" + tag)
        b.inductor("Lin" + tag, inp, n1, L_LINK_H)
        b.grounded("J1" + tag, n1, MERGE_IN_AREA, MERGE_IN_BIAS)
        b.inductor("Lx" + tag, n1, x, MERGE_L_SERIES_H)
        b.series("J2" + tag, x, m, MERGE_SERIES_AREA)
    b.grounded("J3", m, MERGE_NODE_AREA, MERGE_NODE_BIAS)
    b.inductor("Lo", m, n_out, L_LINK_H)
    b.grounded("J4", n_out, JTL_AREA, JTL_BIAS_FRACTION)
    return b.cell()


#: D flip-flop: data escape junction, storing loop J1–Lq–J2 (β_L = 2π·Lq·I_c/Φ0 ≈ 7.6 at
#: 250 µA: holds one flux quantum), clock through a series escape junction onto J2
DFF_ESCAPE_AREA, DFF_STORE_BIAS, DFF_L_STORE_H = 1.8, 0.8, 10e-12
DFF_OUT_AREA, DFF_OUT_BIAS, DFF_CLOCK_ESCAPE_AREA = 2.125, 0.5, 1.75
#: bias of the data and clock input junctions
DFF_IN_BIAS = 0.55


def dff(name: str, n_d: str, n_clk: str, n_out: str, bias_scale: float = 1.0,
        unit: JJModel = JJModel()) -> Cell:
    """D flip-flop: a pulse on ``n_d`` stores one flux quantum (a second one while full escapes);
    a clock pulse emits one output pulse if a quantum was stored (and clears it), none if not."""
    b = CellBuilder(name, bias_scale, unit)
    nd, n1, nc = b.node("nd"), b.node("n1"), b.node("nc")
    b.inductor("Ld", n_d, nd, L_LINK_H)
    b.grounded("J0", nd, JTL_AREA, DFF_IN_BIAS)
    b.series("Jesc", nd, n1, DFF_ESCAPE_AREA)
    b.grounded("J1", n1, JTL_AREA, DFF_STORE_BIAS)
    b.inductor("Lq", n1, n_out, DFF_L_STORE_H)
    b.grounded("J2", n_out, DFF_OUT_AREA, DFF_OUT_BIAS)
    b.inductor("Lc", n_clk, nc, L_LINK_H)
    b.grounded("Jc0", nc, JTL_AREA, DFF_IN_BIAS)
    b.series("Jcesc", nc, n_out, DFF_CLOCK_ESCAPE_AREA)
    return b.cell()


#: inhibit gate (clocked NOT; the textbook RSFQ inverter topology: a storing loop written by the
#: data input, read by the clock through a series junction, with the output junction after a
#: storing inductor). Values tuned here by bias-margin sweeps of its truth-table bench.
INHIBIT_IN_AREA, INHIBIT_IN_BIAS = 2.5, 0.7          #: data and clock input junctions
INHIBIT_L_IN_H = PHI0_WB / (4 * 2.5 * 100e-6)       #: input links, Φ0/(4·I_c) of the input junction
INHIBIT_L_DATA_H = PHI0_WB / (2 * 2.5 * 100e-6)     #: data junction → data escape
INHIBIT_ESCAPE_AREA = 0.7                            #: data escape (a second token escapes here)
INHIBIT_STORE_BIAS_A = 117e-6                        #: into the storing node
INHIBIT_SMALL_AREA = 2.5 / 3                         #: the loop's two small series junctions and J7
INHIBIT_RESET_AREA = 2.0                             #: series junction the clock resets the loop through
INHIBIT_L_SHORT_H, INHIBIT_L_STORE_H = 2e-12, 8e-12
INHIBIT_L_CLOCK_H = PHI0_WB / (2 * INHIBIT_RESET_AREA * 100e-6)
INHIBIT_L_OUT_H, INHIBIT_OUT_AREA, INHIBIT_OUT_BIAS = 6.5e-12, 2.5, 0.84


def inhibit_gate(name: str, n_inh: str, n_clk: str, n_out: str, bias_scale: float = 1.0,
                 unit: JJModel = JJModel()) -> Cell:
    """Clocked NOT, used as an inhibitory synapse: a pulse on ``n_inh`` stores one token (a
    second one while full escapes); a pulse on ``n_clk`` (the excitatory stream) passes to
    ``n_out`` if no token is stored, and is absorbed — clearing the token — if one is. Unlike
    the other cells, ``n_out`` lies after an output inductor (the gate's margins need it). Needs a
    JTL of two stages on its clock and output sides (a junction closer to it upsets it at high
    bias): :func:`counting_neuron` places them."""
    b = CellBuilder(name, bias_scale, unit)
    n = b.node
    b.inductor("L1", n_inh, n("d"), INHIBIT_L_IN_H)
    b.grounded("J1", n("d"), INHIBIT_IN_AREA, INHIBIT_IN_BIAS)
    b.inductor("L2", n("d"), n("e"), INHIBIT_L_DATA_H)
    b.series("J2", n("e"), n("s"), INHIBIT_ESCAPE_AREA)
    b.bias("Is", n("s"), INHIBIT_STORE_BIAS_A)
    b.inductor("L3", n("s"), n("a"), INHIBIT_L_SHORT_H)
    b.series("J3", n("a"), n("m"), INHIBIT_SMALL_AREA)
    b.inductor("L4", n("s"), n("r"), INHIBIT_L_STORE_H)
    b.series("J4", n("r"), n("k"), INHIBIT_RESET_AREA)
    b.inductor("L5", n_clk, n("c"), INHIBIT_L_IN_H)
    b.grounded("J5", n("c"), INHIBIT_IN_AREA, INHIBIT_IN_BIAS)
    b.inductor("L6", n("c"), n("k"), INHIBIT_L_CLOCK_H)
    b.series("J6", n("k"), n("p"), INHIBIT_SMALL_AREA)
    b.inductor("L7", n("p"), n("m"), INHIBIT_L_SHORT_H)
    b.grounded("J7", n("m"), INHIBIT_SMALL_AREA)
    b.inductor("L8", n("m"), n("o"), INHIBIT_L_OUT_H)
    b.grounded("J8", n("o"), INHIBIT_OUT_AREA, INHIBIT_OUT_BIAS)
    b.inductor("L9", n("o"), n_out, INHIBIT_L_IN_H)
    return b.cell()


def tff(name: str, n_t: str, n_carry: str, n_fix: str, n_free: str | None = None,
        bias_scale: float = 1.0, unit: JJModel = JJModel()) -> Cell:
    """Programmable counter stage: a ring of two D flip-flops A → B → A holding *tokens*
    (stored flux quanta). Each pulse on ``n_t`` clocks both; each one holding a token passes it
    on, and the B → A move is the carry on ``n_carry``.

    * one token: a toggle (divide-by-two) stage — token in A = state 0, in B = state 1;
    * two tokens: transparent — every input pulse is carried (the tokens swap);
    * no token: blocks (power-up).

    ``n_fix`` writes a token into A and into B; an empty one keeps it: 0 → 2 tokens at
    power-up, and 1 → 2 in state 1 (B's copy escapes). ``n_free`` (if given) clocks A alone:
    with two tokens A's token runs into the full B and escapes (2 → 1, state 1); in state 0 it
    moves the token to B without a carry (state 1). So *free* always leaves one token in
    state 1, and *free* then *fix* always leaves two. A stage in state 1 carries on its next
    input."""
    n = lambda tag: f"{name}_{tag}"  # noqa: E731
    clock_a = n("ca") if n_free is None else n("ca0")
    parts = [splitter(n("Si"), n_t, clock_a, n("cb"), bias_scale, unit),
             splitter(n("Sf"), n_fix, n("fa"), n("fb"), bias_scale, unit),
             merger(n("Ma"), n("fa"), n("back"), n("ma"), bias_scale, unit),
             merger(n("Mb"), n("fb"), n("qa1"), n("mb"), bias_scale, unit),
             jtl(n("Bq"), n("qa"), n("qa1"), 1, bias_scale, unit),   # A's output into a merger
             # one buffer stage each: a merger alone drives a DFF's data input too weakly at
             # low bias (the token escapes instead of being stored)
             jtl(n("Ba"), n("ma"), n("da"), 1, bias_scale, unit),
             jtl(n("Bb"), n("mb"), n("db"), 1, bias_scale, unit),
             dff(n("A"), n("da"), n("ca"), n("qa"), bias_scale, unit),
             dff(n("B"), n("db"), n("cb"), n("qb"), bias_scale, unit),
             splitter(n("So"), n("qb"), n("back"), n_carry, bias_scale, unit)]
    if n_free is not None:      # (buffered, as the data inputs)
        parts += [merger(n("Mf"), clock_a, n_free, n("mf"), bias_scale, unit),
                  jtl(n("Bf"), n("mf"), n("ca"), 1, bias_scale, unit)]
    return combine(name, parts)


def combine(name: str, parts) -> Cell:
    """One cell made of several (their lines and junctions, in order)."""
    lines, jjs, biases = [], [], []
    for p in parts:
        lines += [f"* part {p.name}", *p.lines]
        jjs += p.jjs
        biases += p.biases
    return Cell(name, lines, jjs, biases)


def merger_tree(name: str, inputs, n_out: str, bias_scale: float = 1.0,
                unit: JJModel = JJModel()) -> Cell:
    """Balanced binary tree of :func:`merger` cells: every pulse on any input reaches
    ``n_out`` (pulses closer than a merger's resolution merge into one)."""
    nodes = list(inputs)
    if len(nodes) < 2:
        raise NetlistError(name, "a merger tree needs at least two inputs")
    parts, level = [], 0
    while len(nodes) > 1:
        nxt = []
        for k in range(0, len(nodes) - 1, 2):
            out = n_out if len(nodes) == 2 else f"{name}_l{level}_{k // 2}"
            parts.append(merger(f"{name}_M{level}_{k // 2}", nodes[k], nodes[k + 1], out, bias_scale, unit))
            nxt.append(out)
        if len(nodes) % 2:
            nxt.append(nodes[-1])
        nodes, level = nxt, level + 1
    return combine(name, parts)


def splitter_tree(name: str, n_in: str, outputs, bias_scale: float = 1.0,
                  unit: JJModel = JJModel()) -> Cell:
    """Chain of :func:`splitter` cells: one pulse in, one on each of ``outputs``."""
    outs = list(outputs)
    if len(outs) == 1:
        return jtl(name, n_in, outs[0], 1, bias_scale, unit)
    parts, node = [], n_in
    for k, out in enumerate(outs[:-2]):
        nxt = f"{name}_c{k}"
        parts.append(splitter(f"{name}_S{k}", node, out, nxt, bias_scale, unit))
        node = nxt
    parts.append(splitter(f"{name}_S{len(outs) - 2}", node, outs[-2], outs[-1], bias_scale, unit))
    return combine(name, parts)


#: JTL stages on each side of an inhibit gate in the neuron (one stage is not enough at 1.2× bias)
INHIBIT_BUFFER_STAGES = 2


def counting_neuron(name: str, inputs, n_out: str, stages: int, control: str = "ctl",
                    bias_scale: float = 1.0, unit: JJModel = JJModel(), inhibitory=()) -> Cell:
    """SFQ integrate-and-fire neuron with an on-chip programmable threshold and signed synapses.

    The excitatory ``inputs`` merge into one pulse stream (:func:`merger_tree`) that passes a
    chain of :func:`inhibit_gate` cells, one per ``inhibitory`` line (each line through a JTL of
    ``INHIBIT_BUFFER_STAGES`` into its gate), and is counted by a ripple chain of ``stages``
    programmable :func:`tff` stages; the last stage's carry is the output spike.

    Inhibition: a pulse on inhibitory line k stores a token in gate k (capacity one: a second
    pulse before it is used escapes); the next excitatory pulse to reach a gate holding a token
    is absorbed there and clears it, so each excitatory pulse is cancelled by the first
    (in chain order) gate holding a token, or counted if none does. With the inhibitory pulses
    of a time step ahead of its excitatory ones, a step counts ``max(0, E − H)`` pulses
    (``E`` excitatory pulses, ``H`` tokens held) and clears the first ``min(E, H)`` tokens.
    The threshold lives in the counter itself: a stage holding one token divides by two, a
    stage holding two passes every pulse, so ``threshold = 2**(counting stages)``. Control
    lines per stage k: ``{control}_fix{k}`` and ``{control}_free{k}``.

    * power-up: fix every stage (two tokens each: T = 1);
    * raise the threshold (T×2): free a transparent stage — it counts again, from state 1;
    * lower it (T/2): free then fix a counting stage — it holds two tokens and passes pulses;
    * after programming, one *flush* input: every counting stage is in state 1 or carries it
      on, the neuron fires once and all counting stages are at 0.

    At every output spike all counting stages are back at 0 — the reset."""
    if stages < 1:
        raise NetlistError(name, "the counter needs at least one stage")
    merged = f"{name}_sum"
    inputs = list(inputs)
    parts = [merger_tree(f"{name}_T", inputs, merged, bias_scale, unit) if len(inputs) > 1
             else jtl(f"{name}_T", inputs[0], merged, 1, bias_scale, unit)]
    node = merged
    buf = INHIBIT_BUFFER_STAGES
    for k, line in enumerate(inhibitory):
        parts += [jtl(f"{name}_Bc{k}", node, f"{name}_gc{k}", buf, bias_scale, unit),
                  jtl(f"{name}_Bi{k}", line, f"{name}_gi{k}", buf, bias_scale, unit),
                  inhibit_gate(f"{name}_G{k}", f"{name}_gi{k}", f"{name}_gc{k}", f"{name}_go{k}",
                               bias_scale, unit)]
        node = f"{name}_go{k}"
    if inhibitory:
        parts.append(jtl(f"{name}_Bo", node, f"{name}_gq", buf, bias_scale, unit))
        node = f"{name}_gq"
    for k in range(stages):
        carry = n_out if k == stages - 1 else f"{name}_c{k}"
        parts.append(tff(f"{name}_F{k}", node, carry, f"{control}_fix{k}", f"{control}_free{k}",
                         bias_scale, unit))
        node = carry
    return combine(name, parts)
