"""Memcapacitive integrate-and-fire neuron, as ngspice netlists.

After Oshio et al., "A Memcapacitive Spiking Neural Network with Circuit
Nonlinearity-aware Training" (COOL CHIPS 2022): memcapacitor synapses, a very
simple analog neuron, 100 MHz operation (one time step = 10 ns).

Structure of one neuron (all transistors from the chosen :mod:`technology`)::

    in_i ──||── d_i ──▷|── mem ──┬── Cmem ── gnd         (one pump per synapse)
         C_i(x_i)   │ diode      ├── Mleak (gate vleak) ── gnd
                    Mrst_i        ├── INV ── INV ── out  (threshold = inverter trip point)
                    (gate phi)    └── Mreset (gate: 'fire', out peak-held on Cfire)

Each time step: ``phi`` resets the pump nodes ``d_i`` to 0 V; a spike on input ``i``
is a rising edge of amplitude ``v_spike_V`` that couples charge through the
memcapacitor ``C_i`` into ``d_i``; the diode-connected NMOS pumps it onto the
membrane capacitor. Idle inputs stay at 0 V and their diodes stay off, so only the
*active* capacitance matters (plus parasitics). The membrane step is nonlinear in
the active capacitance (charge sharing between ΣC_i and Cmem), in the membrane
voltage (the diode's threshold rises with it through the body effect) and in time
(leak transistor in triode/saturation). When ``mem`` crosses the inverter's trip
point, ``out`` rises and charges the fire latch (a diode onto ``Cfire``), which turns
``Mreset`` on for the rest of the step: reset to 0 V. ``phi`` clears the latch at the
start of the next step.

Every sweep point is one self-contained subcircuit ``nrn_<tag>`` with its own
sources at top level, so many points share one ngspice run (one model parse).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from neurospice.netlists import path as netlist_path

from .technology import Technology


@dataclass(frozen=True)
class MemcapDevice:
    """Parameters of the Biolek-type memcapacitor (``netlists/memcap.sp``).

    The capacitance range is a design choice of this suite (a 10:1 on/off ratio),
    not a number from the seed paper, which does not publish its device values.
    """

    c_min_F: float = 2e-15
    c_max_F: float = 20e-15
    k_per_fC: float = 0.02          #: state change per femtocoulomb moved while programming
    v_threshold_V: float = 2.5      #: programming threshold; read pulses stay below it
    v_smooth_V: float = 0.02        #: width of the programming/read transition
    window_p: int = 2               #: Biolek window exponent

    def state_for(self, c_F):
        """State x in [0, 1] that gives capacitance ``c_F`` (clipped to the device range)."""
        c = np.clip(np.asarray(c_F, dtype=float), self.c_min_F, self.c_max_F)
        return (c - self.c_min_F) / (self.c_max_F - self.c_min_F)

    def capacitance(self, x):
        """Capacitance (F) at state ``x``."""
        return self.c_min_F + (self.c_max_F - self.c_min_F) * np.clip(np.asarray(x, float), 0, 1)

    def instance(self, name: str, p: str, n: str, q: str, c_F: float, multiplicity: int = 1) -> str:
        """Netlist line of ``multiplicity`` identical devices in parallel at capacitance ``c_F``.

        m identical devices in parallel are one device with m× the capacitances whose state
        moves 1/m as fast per total charge (each carries 1/m of it).
        """
        x0 = float(self.state_for(c_F))
        m = int(multiplicity)
        return (f"X{name} {p} {n} {q} memcap x0={x0:.9g} cmin_ff={self.c_min_F * 1e15 * m:.9g} "
                f"cmax_ff={self.c_max_F * 1e15 * m:.9g} k_per_fc={self.k_per_fC / m:.9g} "
                f"vt={self.v_threshold_V:g} vs={self.v_smooth_V:g} p={self.window_p}")


@dataclass(frozen=True)
class NeuronDesign:
    """Sizes, biases and timing of the memcapacitive neuron (one step = ``step_s``)."""

    step_s: float = 10e-9            #: 100 MHz, the seed's operating frequency
    vdd_V: float = 1.8
    v_spike_V: float = 1.8           #: input spike amplitude (a VDD-swing driver)
    c_mem_F: float = 100e-15
    t_phi_end_s: float = 0.8e-9      #: pump-node reset phase [0, t_phi_end)
    t_spike_on_s: float = 1.5e-9     #: input edge start within the step
    t_spike_off_s: float = 6.0e-9    #: input falling edge within the step
    t_edge_s: float = 0.2e-9
    driver_r_ohm: float = 1000.0     #: output resistance of each input spike driver
    diode_w_um: float = 0.5
    diode_l_um: float = 0.18
    prst_w_um: float = 0.5           #: pump-node reset switch
    leak_w_um: float = 0.42          #: sky130 nfet_01v8 has no model bin below W = 0.42 um
    leak_l_um: float = 2.0
    v_leak_V: float = 0.5
    comp_wn_um: float = 1.0          #: comparator inverter (strong NMOS: low trip point)
    comp_wp_um: float = 0.5
    fire_w_um: float = 0.5
    c_fire_F: float = 5e-15
    reset_w_um: float = 1.0
    l_um: float = 0.18
    device: MemcapDevice = field(default_factory=MemcapDevice)

    def to_dict(self) -> dict:
        return asdict(self)


def _pwl_spikes(design: NeuronDesign, spikes: np.ndarray) -> str:
    """PWL text of one input line for a 0/1 spike train (one entry per step)."""
    pts = [(0.0, 0.0)]
    v = design.v_spike_V
    for k, s in enumerate(np.asarray(spikes).astype(bool)):
        if not s:
            continue
        t0 = k * design.step_s
        on, off, e = t0 + design.t_spike_on_s, t0 + design.t_spike_off_s, design.t_edge_s
        pts += [(on, 0.0), (on + e, v), (off, v), (off + e, 0.0)]
    return "PWL(" + " ".join(f"{t:.6g} {y:.6g}" for t, y in pts) + ")"


def _pwl_phi(design: NeuronDesign, n_steps: int) -> str:
    pts = []
    e = design.t_edge_s
    for k in range(n_steps):
        t0 = k * design.step_s
        if k == 0:
            pts.append((0.0, design.vdd_V))
        else:
            pts += [(t0, 0.0), (t0 + e, design.vdd_V)]
        pts += [(t0 + design.t_phi_end_s, design.vdd_V), (t0 + design.t_phi_end_s + e, 0.0)]
    return "PWL(" + " ".join(f"{t:.6g} {y:.6g}" for t, y in pts) + ")"


@dataclass
class NeuronPoint:
    """One simulated neuron: its netlist pieces and the vectors to save."""

    tag: str
    subckt: str
    top: str
    saves: list[str]
    n_steps: int
    n_inputs: int
    step_s: float

    def netlist_text(self) -> str:
        return self.subckt + "\n" + self.top


def _mos_emitter(tech: Technology, tag: str, models: list[str], body: list[str],
                 dvth_V: dict | None = None):
    """``mos(name, d, g, s, b, kind, w_um, l_um, role, m=1)``: append one MOSFET of point
    ``tag`` (and its role's local model card, once: every device of a role has the same
    parameters); ``dvth_V[role]`` shifts its threshold (MC sample)."""
    dv = dvth_V or {}
    written = set(models)

    def mos(name, dd, g, s, b, kind, w, l, role, m=1):
        line, cards = tech.mosfet(name, dd, g, s, b, kind, w, l, dvth_V=dv.get(role, 0.0),
                                  scope=f"{tag}_", card_key=role)
        models.extend(c for c in cards if c not in written)
        written.update(cards)
        body.append(line + (f" m={m}" if m != 1 else ""))
    return mos


def _inverters_and_latch(mos, body: list[str], d: "NeuronDesign", pk: str, sense: str) -> None:
    """Two inverters from node ``sense`` to ``out``, and the fire latch: a diode-connected
    NMOS peak-detects ``out`` onto Cfire; ``phi`` clears it at the start of the next step.
    While ``fire`` is high the reset devices hold the membrane(s)."""
    mos("CN1", "nb", sense, "0", "0", "n", d.comp_wn_um, d.l_um, "comp_n")
    mos("CP1", "nb", sense, "vdd", "vdd", pk, d.comp_wp_um, d.l_um, "comp_p")
    mos("CN2", "out", "nb", "0", "0", "n", d.comp_wn_um, d.l_um, "comp_n")
    mos("CP2", "out", "nb", "vdd", "vdd", pk, d.comp_wp_um, d.l_um, "comp_p")
    mos("FD", "out", "out", "fire", "0", "n", d.fire_w_um, d.l_um, "fire")
    body.append(f"Cfire fire 0 {d.c_fire_F:.6g}")
    mos("FC", "fire", "phi", "0", "0", "n", d.fire_w_um, d.l_um, "fire")


def _wrap(tag: str, d: "NeuronDesign", spikes: np.ndarray, ports: list[str], biases: dict,
          models: list[str], body: list[str]) -> tuple[str, list[str]]:
    """The point's subcircuit ``nrn_<tag>`` (ports vdd phi vlk, the ``biases`` lines, ``ports``,
    inputs) and its top-level sources: supply, phase clock, leak gate, biases, input spikes."""
    n_steps, n_in = spikes.shape
    ins = [f"in{i}" for i in range(n_in)]
    pins = ["vdd", "phi", "vlk", *biases, *ports, *ins]
    subckt = "\n".join([f".subckt nrn_{tag} {' '.join(pins)}", *models, *body, f".ends nrn_{tag}"])
    top = [f"Vdd_{tag} {tag}_vdd 0 {d.vdd_V:g}",
           f"Vphi_{tag} {tag}_phi 0 {_pwl_phi(d, n_steps)}",
           f"Vlk_{tag} {tag}_vlk 0 {d.v_leak_V:g}"]
    # source names follow Vdd/Vlk: 'V' + the node name without its leading 'v'
    top += [f"V{node.removeprefix('v')}_{tag} {tag}_{node} 0 {volts:g}" for node, volts in biases.items()]
    top += [f"Vin_{tag}_{i} {tag}_in{i} 0 {_pwl_spikes(d, spikes[:, i])}" for i in range(n_in)]
    top.append(f"X{tag} " + " ".join(f"{tag}_{p}" for p in pins) + f" nrn_{tag}")
    return subckt, top


def _pumps(mos, body: list[str], d: "NeuronDesign", prefix: str, mem: str, line: str,
           caps, mult, read_equivalent: bool = False) -> None:
    """Synapse pumps onto node ``mem``: per input ``i`` a driver resistance, the memcapacitor
    from ``<line><i>`` to the pump node, the diode NMOS onto ``mem`` and the pump-node reset.

    ``read_equivalent``: each memcapacitor as the fixed capacitor it is below its programming
    threshold (``C(x0)``; read pulses of ``v_spike_V`` < ``vt`` leave the state where it is —
    ``tests/test_memcap.py`` checks the two agree); ~40× faster for wide neurons."""
    for i in range(len(caps)):
        if mult[i] == 0:
            continue
        a, dn = f"{prefix}a{i}", f"{prefix}d{i}"
        body.append(f"R{prefix}drv{i} {line}{i} {a} {d.driver_r_ohm / mult[i]:.6g}")
        if read_equivalent:
            body.append(f"C{prefix}S{i} {a} {dn} {float(caps[i]) * mult[i]:.9g}")
        else:
            body.append(d.device.instance(f"{prefix}S{i}", a, dn, f"{prefix}q{i}", caps[i], mult[i]))
        mos(f"{prefix}D{i}", dn, dn, mem, "0", "n", d.diode_w_um, d.diode_l_um, "diode", mult[i])
        mos(f"{prefix}P{i}", dn, "phi", "0", "0", "n", d.prst_w_um, d.l_um, "prst", mult[i])


def neuron_point(tag: str, tech: Technology, design: NeuronDesign, spikes: np.ndarray,
                 caps_F, multiplicity=None, v_mem0_V: float = 0.0,
                 c_mem_scale: float = 1.0, dvth_V: dict | None = None) -> NeuronPoint:
    """Netlist of one neuron driven by ``spikes`` [T, n_inputs] (0/1) through synapses ``caps_F``.

    ``multiplicity[i]`` puts that many identical synapses on input line ``i`` (a lumped
    group: the characterization sweep uses it to model many active inputs cheaply).
    ``c_mem_scale`` and ``dvth_V`` (per device role: 'diode', 'leak', 'comp_n', 'comp_p',
    'reset') apply a Monte-Carlo sample. The membrane starts at ``v_mem0_V``.
    """
    spikes = np.atleast_2d(np.asarray(spikes))
    n_steps, n_in = spikes.shape
    caps = np.broadcast_to(np.asarray(caps_F, float), (n_in,))
    mult = np.ones(n_in, int) if multiplicity is None else np.broadcast_to(np.asarray(multiplicity, int), (n_in,))
    d = design
    models: list[str] = []
    body: list[str] = []
    mos = _mos_emitter(tech, tag, models, body, dvth_V)

    _pumps(mos, body, d, "", "mem", "in", caps, mult)
    body.append(f"Cmem mem 0 {d.c_mem_F * c_mem_scale:.6g}")
    mos("LK", "mem", "vlk", "0", "0", "n", d.leak_w_um, d.leak_l_um, "leak")
    pk = "p" if tech.name == "generic-180nm" else "p_hvt"
    _inverters_and_latch(mos, body, d, pk, "mem")
    mos("RES", "mem", "fire", "0", "0", "n", d.reset_w_um, d.l_um, "reset")
    subckt, top = _wrap(tag, d, spikes, ["mem", "out"], {}, models, body)
    top.append(f".ic v({tag}_mem)={v_mem0_V:.6g}")
    saves = [f"v({tag}_mem)", f"v({tag}_out)", f"i(vdd_{tag})"]
    saves += [f"i(vin_{tag}_{i})" for i in range(n_in)]
    saves += [f"v({tag}_in{i})" for i in range(n_in)]
    return NeuronPoint(tag=tag, subckt=subckt, top="\n".join(top), saves=saves, n_steps=n_steps,
                       n_inputs=n_in, step_s=d.step_s)


def memcap_library() -> str:
    """The memcapacitor subcircuit definition (``netlists/memcap.sp``)."""
    return netlist_path("memcap.sp").read_text()


#: ngspice's default relative tolerance: 1e-4 moved no table entry by more than 0.8 mV and no
#: spike or threshold at all, for 1.4-7x the analysis time (README, *Simulator settings*)
SIM_RELTOL = 1e-3


@dataclass(frozen=True)
class TranSettings:
    """How finely a deck is integrated: the largest time step and ngspice's truncation-error
    factor ``trtol`` (None: ngspice's default, 7)."""

    max_step_s: float
    trtol: float | None = None

    def cards(self, stop_s: float) -> str:
        opts = f"reltol={SIM_RELTOL:g}" + (f" trtol={self.trtol:g}" if self.trtol is not None else "")
        return f".options {opts}\n.tran 10p {stop_s:.6g} 0 {self.max_step_s:g}"


#: characterization: a 20 ps step bound keeps every point's waveform resolved to the 0.2 ns
#: pump edge (membrane peaks are read off it)
CHARACTERIZE_TRAN = TranSettings(20e-12)
#: spike-level checks (``verify``): a neuron's spikes are the comparator's own transitions,
#: which ngspice's truncation-error control resolves without the 20 ps bound; checked against
#: CHARACTERIZE_TRAN spike train by spike train (tests/test_verify_whole_network.py; README)
SPIKE_TRAN = TranSettings(1e-9, trtol=20.0)


def analysis_cards(points: list[NeuronPoint], tran: TranSettings = CHARACTERIZE_TRAN) -> str:
    """The simulator options and the transient that covers every point's steps (points of one
    netlist share a step); a sweep point's cache key holds this text, so a change of the
    options is a new point."""
    steps = {p.step_s for p in points}
    if len(steps) != 1:
        raise ValueError(f"points of one netlist must share one step length, got {sorted(steps)}")
    return tran.cards(max(p.n_steps for p in points) * steps.pop())


def assemble(tech: Technology, points: list[NeuronPoint], temperature_C: float = 27.0,
             title: str = "neurospice memcap", tran: TranSettings = CHARACTERIZE_TRAN) -> str:
    """One netlist holding many neuron points (one ngspice start for all of them)."""
    lines = [f"* {title}", tech.header(), memcap_library()]
    for p in points:
        lines += [p.subckt, p.top]
    lines.append(".save " + " ".join(s for p in points for s in p.saves))
    lines += [f".temp {temperature_C:g}", analysis_cards(points, tran), ".end"]
    return "\n".join(lines) + "\n"


def _delivered_energy_J(plot, point: NeuronPoint, dc_sources: dict) -> float:
    """Energy delivered by the point's DC sources (``{source stem: volts}``) and input drivers.

    E = -∫ v·i dt: a SPICE source current is positive flowing into its + terminal, so a
    delivering source has i < 0."""
    t = plot["time"]
    e = sum(float(-np.trapezoid(v * plot[f"i({name}_{point.tag})"], t)) for name, v in dc_sources.items())
    for i in range(point.n_inputs):
        e += float(-np.trapezoid(plot[f"v({point.tag}_in{i})"] * plot[f"i(vin_{point.tag}_{i})"], t))
    return e


def measure(plot, point: NeuronPoint, design: NeuronDesign) -> dict:
    """Per-step membrane voltage (end of step), spike flags and energy of one point."""
    t = plot["time"]
    mem = plot[f"v({point.tag}_mem)"]
    out = plot[f"v({point.tag}_out)"]
    ends = (np.arange(point.n_steps) + 1) * design.step_s - 0.05 * design.step_s
    v_end = np.interp(ends, t, mem)
    spikes = np.zeros(point.n_steps, dtype=int)
    starts = np.arange(point.n_steps) * design.step_s
    for k in range(point.n_steps):
        sel = (t >= starts[k]) & (t < starts[k] + design.step_s)
        spikes[k] = int(sel.any() and out[sel].max() > design.vdd_V / 2)
    # the phase clock drives gates only; its (tiny) energy belongs to the clock tree
    e_total = _delivered_energy_J(plot, point, {"vdd": design.vdd_V})
    return {"v_mem_end_V": v_end.tolist(), "spikes": spikes.tolist(), "energy_J": e_total,
            "v_mem_max_V": float(mem.max())}


# ------------------------------------------------------------------ differential neuron

@dataclass(frozen=True)
class DiffNeuronDesign(NeuronDesign):
    """The differential (signed-weight) memcapacitive neuron.

    A weight is a *pair* of memcapacitors on the same input row: ``C+`` pumps the positive
    membrane ``memp``, ``C−`` the negative membrane ``memn`` (two copies of the single-ended
    pump + membrane + leak). A PMOS-input differential comparator fires when
    ``memp − memn`` exceeds its built-in offset, set by making the ``memp`` input device
    ``offset_ratio`` times wider than the ``memn`` one; a spike resets ``memp`` to 0 V and
    ``memn`` to ``v_ref_V`` (a reference line), so from reset ``memp`` must gain about
    ``v_ref_V`` + offset more than ``memn`` before the neuron fires again.
    Equal capacitances on both sides cancel, so the C_min floor of every active input
    (n_active · C_min on each side) drops out — the reason for the pair.
    """

    pair_w_um: float = 1.0           #: memn-side input PMOS width
    pair_l_um: float = 0.5
    offset_ratio: float = 2.0        #: memp-side input PMOS is this much wider (sets the offset)
    tail_w_um: float = 0.5
    tail_l_um: float = 2.0
    v_bias_V: float = 1.0            #: tail PMOS gate bias (a shared bias line)
    mirror_w_um: float = 0.5
    mirror_l_um: float = 0.5
    v_ref_V: float = 0.3             #: memn's reset level: memp must gain this much more to fire
    #: leak gate bias, stronger than the single-ended neuron's: a ~0.1 V/step near-constant
    #: leak keeps both membranes below charge-sharing saturation, where a differential input
    #: still moves them (measured, MNIST aware after 3 epochs: test 0.74 at 0.5 V, 0.81 at 0.7 V)
    v_leak_V: float = 0.7
    fire_enabled: bool = True        #: False: reset devices stay off (characterizes a half)


def diff_neuron_point(tag: str, tech: Technology, design: DiffNeuronDesign, spikes: np.ndarray,
                      caps_pos_F, caps_neg_F, multiplicity=None, v_pos0_V: float = 0.0,
                      v_neg0_V: float | None = None, read_equivalent: bool = False,
                      dvth_V: dict | None = None, multiplicity_neg=None,
                      spikes_only: bool = False) -> NeuronPoint:
    """Netlist of one differential neuron driven by ``spikes`` [T, n_inputs] (0/1).

    ``spikes_only``: save only the output (read with :func:`diff_spikes`; a verify needs no
    membranes, currents or inputs).

    ``dvth_V`` (a Monte Carlo sample): threshold shift per device role; the comparator's
    four matched devices have roles of their own (``pair_p``, ``pair_n``, ``mirror_a``,
    ``mirror_b``), so their mismatch moves its offset.

    Input row ``i`` drives both ``caps_pos_F[i]`` (onto ``memp``) and ``caps_neg_F[i]``
    (onto ``memn``); ``multiplicity[i]`` lumps that many identical rows (``multiplicity_neg``,
    if given, is the ``memn`` side's own: the two sides share only the ideal input sources, so
    each side may group its rows differently; a multiplicity of 0 leaves the row off that side).
    """
    spikes = np.atleast_2d(np.asarray(spikes))
    n_steps, n_in = spikes.shape
    cp = np.broadcast_to(np.asarray(caps_pos_F, float), (n_in,))
    cn = np.broadcast_to(np.asarray(caps_neg_F, float), (n_in,))
    mult = np.ones(n_in, int) if multiplicity is None else np.broadcast_to(np.asarray(multiplicity, int), (n_in,))
    mult_neg = mult if multiplicity_neg is None else np.broadcast_to(np.asarray(multiplicity_neg, int), (n_in,))
    d = design
    v_neg0_V = d.v_ref_V if v_neg0_V is None else v_neg0_V
    models: list[str] = []
    body: list[str] = []
    mos = _mos_emitter(tech, tag, models, body, dvth_V)

    pk = "p" if tech.name == "generic-180nm" else "p_hvt"
    for side, mem, caps, m in (("p", "memp", cp, mult), ("n", "memn", cn, mult_neg)):
        _pumps(mos, body, d, side, mem, "in", caps, m, read_equivalent)
        body.append(f"Cmem{side} {mem} 0 {d.c_mem_F:.6g}")
        mos(f"LK{side}", mem, "vlk", "0", "0", "n", d.leak_w_um, d.leak_l_um, "leak")
        mos(f"RES{side}", mem, "fire" if d.fire_enabled else "0", "0" if side == "p" else "vref",
            "0", "n", d.reset_w_um, d.l_um, "reset")
    # comparator: PMOS pair (memp side offset_ratio× wider), NMOS mirror, two inverters
    mos("CT", "tail", "vbp", "vdd", "vdd", pk, d.tail_w_um, d.tail_l_um, "tail")
    mos("C1", "n1", "memp", "tail", "vdd", pk, d.pair_w_um * d.offset_ratio, d.pair_l_um, "pair_p")
    mos("C2", "n2", "memn", "tail", "vdd", pk, d.pair_w_um, d.pair_l_um, "pair_n")
    mos("C3", "n1", "n1", "0", "0", "n", d.mirror_w_um, d.mirror_l_um, "mirror_a")
    mos("C4", "n2", "n1", "0", "0", "n", d.mirror_w_um, d.mirror_l_um, "mirror_b")
    _inverters_and_latch(mos, body, d, pk, "n2")
    subckt, top = _wrap(tag, d, spikes, ["memp", "memn", "out"],
                        {"vbp": d.v_bias_V, "vref": d.v_ref_V}, models, body)
    top.append(f".ic v({tag}_memp)={v_pos0_V:.6g} v({tag}_memn)={v_neg0_V:.6g}")
    saves = [f"v({tag}_out)"]
    if not spikes_only:
        saves += [f"v({tag}_memp)", f"v({tag}_memn)", f"i(vdd_{tag})", f"i(vref_{tag})"]
        saves += [f"i(vin_{tag}_{i})" for i in range(n_in)]
        saves += [f"v({tag}_in{i})" for i in range(n_in)]
    return NeuronPoint(tag=tag, subckt=subckt, top="\n".join(top), saves=saves, n_steps=n_steps,
                       n_inputs=n_in, step_s=d.step_s)


def diff_spikes(plot, point: NeuronPoint, design: DiffNeuronDesign) -> list[int]:
    """Per step: 1 if the output rose above ``vdd_V / 2`` in it."""
    t, o = plot["time"], plot[f"v({point.tag}_out)"]
    return [int(o[(t >= a) & (t < a + design.step_s)].max() > design.vdd_V / 2)
            for a in np.arange(point.n_steps) * design.step_s]


def measure_diff(plot, point: NeuronPoint, design: DiffNeuronDesign) -> dict:
    """Per step: both membranes at the end and their peaks, spike flags; total energy."""
    t = plot["time"]
    out = {}
    starts = np.arange(point.n_steps) * design.step_s
    ends = starts + 0.95 * design.step_s
    for side in ("p", "n"):
        v = plot[f"v({point.tag}_mem{side})"]
        out[f"v_{side}_end_V"] = np.interp(ends, t, v).tolist()
        out[f"v_{side}_peak_V"] = [float(v[(t >= a) & (t < a + design.step_s)].max()) for a in starts]
    out["spikes"] = diff_spikes(plot, point, design)
    out["energy_J"] = _delivered_energy_J(plot, point, {"vdd": design.vdd_V, "vref": design.v_ref_V})
    return out
