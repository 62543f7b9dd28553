"""qCLIF: the quantized context-based LIF neuron — integer golden model and sky130 gate netlist.

The float CLIF neuron (Ferrand et al., ICANN 2023) per step::

    V_a[t] = α·V_a[t-1] + (1-α)·R·I_a[t]
    V[t]   = β·V[t-1] + (1-β)·R·I[t]·ReLU(V_a[t]) − z[t-1]·θ
    z[t]   = H(V[t] − θ)

**The integer form implemented here** (one time step = one clock cycle; all quantities
integers; ``B = bits``, ``W = B + guard_bits`` the synaptic-sum width, ``D = W + 1`` the
datapath width, ``θ = 2^(B-2)``)::

    S_a  = bus_a + c·w_a          S_s = bus_s + x·w_s                 (AND-gated ports)
    Va'  = clip(Va + S_a − d_a, 0, 2^B − 1)                           (linear apical decay)
    k    = 0 if Va ≥ 2^(B-1), 1 if Va ≥ 2^(B-2), 2 if Va ≥ 2^(B-3), 3 if Va > 0
    m    = (S_s >> k) if Va > 0 else 0                                (power-of-two modulation)
    acc  = V − (V >> k_s) + m − z·θ                                   (shift leak, subtractive reset)
    V'   = clip(acc, −2^(B-1), 2^(B-1) − 1);   z' = [acc ≥ θ]         (saturating)

``>>`` is the arithmetic shift (floor division by a power of two). Why each choice:

* **Apical state is unsigned** (``Va ≥ 0``): only ``ReLU(V_a)`` reaches the soma, so a
  rectified accumulator keeps all 2^B levels for the useful range; the decay is a fixed
  decrement ``d_a`` toward zero (the seed's *linear decay*), one adder, no multiplier.
* **Modulation by powers of two**: ``I·ReLU(V_a)/V_ref`` becomes ``I >> k`` with ``k`` from the
  leading one of ``Va`` (4 levels: ×1, ×½, ×¼, ×⅛; ×0 when the apical compartment is silent), so
  the product is a 2-stage barrel shift; context still *gates* the soma: ``Va = 0`` blocks input.
* **Somatic leak ``V − (V >> k_s)``**: β = 1 − 2^-k_s (k_s = 4: β = 0.9375 ≈ exp(−1 ms/15.5 ms),
  near CLIF's τ_s = 20 ms), piecewise linear, no multiplier.
* **Pipelined context**: the modulation uses the *registered* apical value, i.e. the soma at step
  t sees V_a[t−1] (CLIF: V_a[t]). This halves the critical path (apical and somatic adders run in
  parallel in one cycle); with τ_a = 20–200 steps a one-step lag changes little, and the float
  version used for comparison (``training.qclif_net``) has the same structure.
* **θ = 2^(B−2)**: a power of two makes ``acc ≥ θ`` a few gates and ``−z·θ`` a wired constant;
  the network's weights set the effective threshold, so nothing is lost.

:func:`step` is the one reference: it works on numpy and torch integer arrays alike (the
training module calls it for its bit-exact forward pass). :func:`run_cycles` is the
cycle-by-cycle model of the netlist (ports + bus) that the SPICE equivalence is checked against.

The netlist (:func:`build_netlist`) is generated from :class:`QCLIFConfig` out of real
``sky130_fd_sc_hd`` cells: AND gates for the synapse ports, carry-save rows and ripple-carry
adders of ``fa_1``/``ha_1``, ``mux2_1`` barrel shifter, saturation logic, ``dfrtp_1`` registers.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import NetlistError, TechnologyError


@dataclass(frozen=True)
class QCLIFConfig:
    """Widths and constants of one qCLIF neuron (all integers)."""

    bits: int = 8                  #: weight and state width B
    guard_bits: int = 2            #: synaptic-sum bus width W = B + guard_bits
    apical_decay: int = 1          #: d_a, LSBs the apical state loses per step
    soma_leak_shift: int = 4       #: k_s, leak V >> k_s per step (β = 1 − 2^-k_s)

    def __post_init__(self):
        if not 4 <= self.bits <= 16:
            raise ValueError(f"bits must be in 4..16, got {self.bits}")
        if not 0 <= self.guard_bits <= 8:
            raise ValueError(f"guard_bits must be in 0..8, got {self.guard_bits}")
        if not 0 <= self.apical_decay < 2 ** (self.bits - 1):
            raise ValueError(f"apical_decay must be in 0..2^(bits-1)-1, got {self.apical_decay}")
        if not 1 <= self.soma_leak_shift < self.bits:
            raise ValueError(f"soma_leak_shift must be in 1..bits-1, got {self.soma_leak_shift}")

    @classmethod
    def for_bits(cls, bits: int, **kw) -> "QCLIFConfig":
        """Defaults for another width (the leak shift must stay below the width)."""
        return cls(bits=bits, soma_leak_shift=min(cls.soma_leak_shift, bits - 1), **kw)

    @property
    def bus_bits(self) -> int:
        return self.bits + self.guard_bits

    @property
    def datapath_bits(self) -> int:
        return self.bus_bits + 1

    @property
    def threshold(self) -> int:
        return 2 ** (self.bits - 2)

    @property
    def v_range(self) -> tuple[int, int]:
        return -(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1

    @property
    def va_max(self) -> int:
        return 2 ** self.bits - 1

    @property
    def weight_range(self) -> tuple[int, int]:
        return -(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1

    @property
    def bus_range(self) -> tuple[int, int]:
        return -(2 ** (self.bus_bits - 1)), 2 ** (self.bus_bits - 1) - 1

    def as_dict(self) -> dict:
        return {**asdict(self), "threshold": self.threshold, "bus_bits": self.bus_bits,
                "datapath_bits": self.datapath_bits, "modulation_levels": MODULATION_LEVELS}


#: Modulation levels ×1, ×½, ×¼, ×⅛ (a 2-stage barrel shifter) — see the module docstring.
MODULATION_LEVELS = 4


def _where(cond, a, b):
    if isinstance(cond, np.ndarray) or np.isscalar(cond):
        return np.where(cond, a, b)
    import torch
    return torch.where(cond, a, b)


def _clip(x, lo, hi):
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return np.clip(x, lo, hi)
    return x.clamp(lo, hi)


def modulation_shift(cfg: QCLIFConfig, va):
    """Shift k ∈ {0..3} chosen by the apical state's leading one (meaningful where ``va > 0``)."""
    k = 0 * va + (MODULATION_LEVELS - 1)
    for level in reversed(range(MODULATION_LEVELS - 1)):
        k = _where(va >= 2 ** (cfg.bits - 1 - level), 0 * va + level, k)
    return k


def step(cfg: QCLIFConfig, va, v, z, s_a, s_s):
    """One integer qCLIF step: ``(Va, V, z, S_a, S_s) -> (Va', V', z')`` (see module docstring).

    Works elementwise on numpy or torch integer arrays (int32/int64) of one shape.
    """
    va_next = _clip(va + s_a - cfg.apical_decay, 0, cfg.va_max)
    k = modulation_shift(cfg, va)
    m = _where(va > 0, s_s >> k, 0 * s_s)
    acc = v - (v >> cfg.soma_leak_shift) + m - z * cfg.threshold
    lo, hi = cfg.v_range
    v_next = _clip(acc, lo, hi)
    z_next = (acc >= cfg.threshold) * 1 + 0 * acc
    return va_next, v_next, z_next


def clif_step(va, v, z, i_a, i_s, alpha, beta, theta, lagged: bool = True):
    """One float CLIF step (the issue's equations, ``R = 1``); ``lagged``: the soma sees the
    apical value of the previous step, as the pipelined qCLIF does. numpy or torch floats."""
    va_next = alpha * va + (1 - alpha) * i_a
    va_used = va if lagged else va_next
    relu = _where(va_used > 0, va_used, 0 * va_used)
    v_next = beta * v + (1 - beta) * i_s * relu - z * theta
    z_next = (v_next >= theta) * 1.0
    return va_next, v_next, z_next


def float_equivalents(cfg: QCLIFConfig) -> dict:
    """Float CLIF constants matching the integer neuron: β = 1 − 2^-k_s; α such that the
    exponential decay equals the linear one at half range, ``(1 − α)·2^(B−1) = d_a``;
    input scalings that make ``(1−α)·I_a = S_a`` and ``(1−β)·I_s·ReLU(V_a) = S_s·V_a/2^(B−1)``."""
    beta = 1.0 - 2.0 ** -cfg.soma_leak_shift
    alpha = 1.0 - max(cfg.apical_decay, 1) / 2 ** (cfg.bits - 1)
    return {"alpha": alpha, "beta": beta, "theta": float(cfg.threshold),
            "apical_gain": 1 / (1 - alpha), "soma_gain": 1 / ((1 - beta) * 2 ** (cfg.bits - 1))}


def compare_float_integer(cfg: QCLIFConfig = QCLIFConfig(), steps: int = 80) -> dict:
    """Float CLIF and integer qCLIF on one stimulus: constant somatic drive, a context pulse
    at steps 10–15 (before it the soma is silent: no apical depolarization, no spikes)."""
    s_s = np.full(steps, cfg.threshold // 4, dtype=np.int64)
    s_a = np.zeros(steps, dtype=np.int64)
    s_a[10:16] = 2 ** (cfg.bits - 3)
    k = float_equivalents(cfg)
    va = v = z = np.int64(0)
    fva = fv = fz = 0.0
    out = {key: [] for key in ("q_va", "q_v", "q_z", "f_va", "f_v", "f_z")}
    for t in range(steps):
        va, v, z = step(cfg, va, v, z, s_a[t], s_s[t])
        fva, fv, fz = clif_step(fva, fv, fz, s_a[t] * k["apical_gain"], s_s[t] * k["soma_gain"],
                                k["alpha"], k["beta"], k["theta"])
        for key, val in (("q_va", va), ("q_v", v), ("q_z", z), ("f_va", fva), ("f_v", fv), ("f_z", fz)):
            out[key].append(float(val))
    return {key: np.array(val) for key, val in out.items()}


@dataclass
class CycleInputs:
    """Per-cycle inputs of the netlist, each an int array of length ``cycles``.

    ``bus_a``/``bus_s``: synaptic partial sums from the rest of the synapse array (W-bit signed);
    ``c``/``x``: port spike bits (apical/somatic); ``w_a``/``w_s``: port weights (B-bit signed).
    """

    bus_a: np.ndarray
    bus_s: np.ndarray
    c: np.ndarray
    w_a: np.ndarray
    x: np.ndarray
    w_s: np.ndarray

    @property
    def cycles(self) -> int:
        return len(self.bus_a)

    def check(self, cfg: QCLIFConfig) -> None:
        lo, hi = cfg.bus_range
        wlo, whi = cfg.weight_range
        for name in ("bus_a", "bus_s"):
            a = getattr(self, name)
            if a.min(initial=0) < lo or a.max(initial=0) > hi:
                raise ValueError(f"{name} outside the {cfg.bus_bits}-bit bus range [{lo}, {hi}]")
        for name in ("w_a", "w_s"):
            a = getattr(self, name)
            if a.min(initial=0) < wlo or a.max(initial=0) > whi:
                raise ValueError(f"{name} outside the {cfg.bits}-bit weight range [{wlo}, {whi}]")
        for name in ("c", "x"):
            if not np.isin(getattr(self, name), (0, 1)).all():
                raise ValueError(f"{name} must hold spike bits 0/1")


def random_inputs(cfg: QCLIFConfig, cycles: int, seed: int = 0, spike_p: float = 0.5,
                  bus_scale: float = 0.5) -> CycleInputs:
    """Random cycle inputs: uniform port weights, spike bits with probability ``spike_p``, bus
    values uniform in ``±bus_scale`` of the bus range (so both saturation edges get visited)."""
    rng = np.random.default_rng(seed)
    lo, hi = cfg.bus_range
    wlo, whi = cfg.weight_range
    bus = lambda: rng.integers(int(lo * bus_scale), int(hi * bus_scale) + 1, cycles)  # noqa: E731
    return CycleInputs(bus_a=bus(), bus_s=bus(), c=(rng.random(cycles) < spike_p) * 1,
                       w_a=rng.integers(wlo, whi + 1, cycles), x=(rng.random(cycles) < spike_p) * 1,
                       w_s=rng.integers(wlo, whi + 1, cycles))


def run_cycles(cfg: QCLIFConfig, inp: CycleInputs) -> dict[str, np.ndarray]:
    """Register contents after each rising edge (golden model of the netlist, from reset)."""
    inp.check(cfg)
    va = v = z = np.int64(0)
    out = {"va": [], "v": [], "z": []}
    for t in range(inp.cycles):
        s_a = np.int64(inp.bus_a[t]) + inp.c[t] * np.int64(inp.w_a[t])
        s_s = np.int64(inp.bus_s[t]) + inp.x[t] * np.int64(inp.w_s[t])
        va, v, z = step(cfg, va, v, z, s_a, s_s)
        out["va"].append(int(va))
        out["v"].append(int(v))
        out["z"].append(int(z))
    return {k: np.array(a, dtype=np.int64) for k, a in out.items()}


# --------------------------------------------------------------------------------------------
# Gate-level netlist
# --------------------------------------------------------------------------------------------
ZERO, ONE = "0", "vdd"     #: constant nets (ground and the supply)
CELL_PREFIX = "sky130_fd_sc_hd__"
#: Pin order of the cells used (outputs last), as in the cells' SPICE netlists.
_CELL_PINS = {
    "fa_1": ("A", "B", "CIN", "COUT", "SUM"), "ha_1": ("A", "B", "COUT", "SUM"),
    "and2_1": ("A", "B", "X"), "or2_1": ("A", "B", "X"), "or4_1": ("A", "B", "C", "D", "X"),
    "nor2_1": ("A", "B", "Y"), "inv_1": ("A", "Y"), "xnor2_1": ("A", "B", "Y"),
    "mux2_1": ("A0", "A1", "S", "X"), "o21a_1": ("A1", "A2", "B1", "X"),
    "a21o_1": ("A1", "A2", "B1", "X"), "nand2_1": ("A", "B", "Y"),
    "dfrtp_1": ("CLK", "D", "RESET_B", "Q"), "buf_1": ("A", "X"), "clkbuf_4": ("A", "X"),
}
_N_OUT = {"fa_1": 2, "ha_1": 2}


class GateNetlist:
    """Standard-cell instances with constant propagation on ``ZERO``/``ONE`` inputs."""

    def __init__(self):
        self.instances: list[tuple[str, str, tuple[str, ...]]] = []
        self._n = 0

    def net(self, tag: str) -> str:
        self._n += 1
        return f"n{self._n}_{tag}"

    def cell(self, kind: str, *inputs: str, tag: str = "") -> tuple[str, ...] | str:
        pins = _CELL_PINS[kind]
        n_out = _N_OUT.get(kind, 1)
        if len(inputs) != len(pins) - n_out:
            raise NetlistError("qclif", f"cell {kind} takes {len(pins) - n_out} inputs")
        outs = tuple(self.net(f"{tag or kind}") for _ in range(n_out))
        self._n += 1
        self.instances.append((f"X{self._n}_{kind}", kind, (*inputs, *outs)))
        return outs if n_out > 1 else outs[0]

    # -- logic with constant folding ---------------------------------------------------
    def inv(self, a):
        return ONE if a == ZERO else ZERO if a == ONE else self.cell("inv_1", a)

    def and2(self, a, b):
        if ZERO in (a, b):
            return ZERO
        if a == ONE:
            return b
        if b == ONE:
            return a
        return self.cell("and2_1", a, b)

    def or2(self, a, b):
        if ONE in (a, b):
            return ONE
        if a == ZERO:
            return b
        if b == ZERO:
            return a
        return self.cell("or2_1", a, b)

    def or_all(self, bits):
        bits = [b for b in bits if b != ZERO]
        if ONE in bits:
            return ONE
        if not bits:
            return ZERO
        while len(bits) > 1:
            nxt = []
            for k in range(0, len(bits), 4):
                grp = bits[k:k + 4]
                if len(grp) == 4:
                    nxt.append(self.cell("or4_1", *grp))
                elif len(grp) >= 2:
                    nxt.append(self.or_all_pairs(grp))
                else:
                    nxt.append(grp[0])
            bits = nxt
        return bits[0]

    def or_all_pairs(self, grp):
        out = grp[0]
        for b in grp[1:]:
            out = self.or2(out, b)
        return out

    def full_add(self, a, b, c):
        """(sum, carry) of three bits, folding constants into simpler cells."""
        consts = [x for x in (a, b, c) if x in (ZERO, ONE)]
        vars_ = [x for x in (a, b, c) if x not in (ZERO, ONE)]
        ones = consts.count(ONE)
        if len(vars_) == 3:
            cout, s = self.cell("fa_1", a, b, c)
            return s, cout
        if len(vars_) == 2:
            if ones == 0:
                cout, s = self.cell("ha_1", *vars_)
                return s, cout
            return self.cell("xnor2_1", *vars_), self.or2(*vars_)
        if len(vars_) == 1:
            v = vars_[0]
            return ({0: v, 1: self.inv(v), 2: v}[ones], {0: ZERO, 1: v, 2: ONE}[ones])
        return (ONE if ones % 2 else ZERO), (ONE if ones >= 2 else ZERO)

    def csa(self, a, b, c):
        """Carry-save row: three D-bit words -> (sum word, carry word shifted left, mod 2^D)."""
        s, cy = zip(*(self.full_add(x, y, z) for x, y, z in zip(a, b, c)))
        return list(s), [ZERO, *cy[:-1]]

    def ripple(self, a, b, cin=ZERO):
        """Ripple-carry sum of two D-bit words (mod 2^D)."""
        out, carry = [], cin
        for x, y in zip(a, b):
            s, carry = self.full_add(x, y, carry)
            out.append(s)
        return out

    def mux(self, a0, a1, s):
        if a0 == a1:
            return a0
        return self.cell("mux2_1", a0, a1, s)

    # -- emission -----------------------------------------------------------------------
    def kinds(self) -> set[str]:
        return {kind for _, kind, _ in self.instances}

    def lines(self) -> list[str]:
        out = []
        for name, kind, pins in self.instances:    # inputs, power (VGND VNB VPB VPWR), outputs
            n_in = len(_CELL_PINS[kind]) - _N_OUT.get(kind, 1)
            out.append(f"{name} {' '.join(pins[:n_in])} 0 0 vdd vdd {' '.join(pins[n_in:])} "
                       f"{CELL_PREFIX}{kind}")
        return out


#: each sky130_fd_sc_hd cell as XSPICE digital primitives (d_and, d_xor, d_dff, ...): the
#: cell's Boolean function (from its liberty description), so ngspice's event-driven logic
#: simulator runs the same generated netlist gate by gate. ``{o}``: the cell's output nets,
#: ``{i}``: inputs, ``{n}``: a prefix for internal nets.
_XSPICE_CELLS = {
    "buf_1": ["d_buffer {i0} {o0}"], "clkbuf_4": ["d_buffer {i0} {o0}"], "inv_1": ["d_inverter {i0} {o0}"],
    "and2_1": ["d_and [{i0} {i1}] {o0}"], "or2_1": ["d_or [{i0} {i1}] {o0}"],
    "or4_1": ["d_or [{i0} {i1} {i2} {i3}] {o0}"], "nor2_1": ["d_nor [{i0} {i1}] {o0}"],
    "nand2_1": ["d_nand [{i0} {i1}] {o0}"], "xnor2_1": ["d_xnor [{i0} {i1}] {o0}"],
    # X = S ? A1 : A0
    "mux2_1": ["d_inverter {i2} {n}s", "d_and [{i0} {n}s] {n}a", "d_and [{i1} {i2}] {n}b",
               "d_or [{n}a {n}b] {o0}"],
    "o21a_1": ["d_or [{i0} {i1}] {n}a", "d_and [{n}a {i2}] {o0}"],          # (A1 | A2) & B1
    "a21o_1": ["d_and [{i0} {i1}] {n}a", "d_or [{n}a {i2}] {o0}"],          # (A1 & A2) | B1
    # COUT = majority(A, B, CIN), SUM = A ^ B ^ CIN
    "fa_1": ["d_and [{i0} {i1}] {n}a", "d_and [{i0} {i2}] {n}b", "d_and [{i1} {i2}] {n}c",
             "d_or [{n}a {n}b {n}c] {o0}", "d_xor [{i0} {i1} {i2}] {o1}"],
    "ha_1": ["d_and [{i0} {i1}] {o0}", "d_xor [{i0} {i1}] {o1}"],
    # rising-edge D flip-flop, asynchronous active-low reset (d_dff: data clk set reset out nout)
    "dfrtp_1": ["d_inverter {i2} {n}r", "d_dff {i1} {i0} null {n}r {o0} null"],
}


def xspice_lines(gates: "GateNetlist") -> list[str]:
    """The gate netlist as XSPICE digital instances (constants: digital nets ``d_0``/``d_vdd``)."""
    out = []
    for name, kind, pins in gates.instances:
        if kind not in _XSPICE_CELLS:
            raise NetlistError("qclif", f"no XSPICE form for cell {kind}")
        n_in = len(_CELL_PINS[kind]) - _N_OUT.get(kind, 1)
        pins = ["d_0" if p == ZERO else "d_vdd" if p == ONE else p for p in pins]
        fmt = {f"i{k}": p for k, p in enumerate(pins[:n_in])} | {
            f"o{k}": p for k, p in enumerate(pins[n_in:])} | {"n": f"{name}_"}
        for j, prim in enumerate(_XSPICE_CELLS[kind]):
            model, rest = prim.split(" ", 1)
            out.append(f"a{name}_{j} {rest.format(**fmt)} x{model}")
    return out


def _sext(bits, width):
    return list(bits) + [bits[-1]] * (width - len(bits))


def _zext(bits, width):
    return list(bits) + [ZERO] * (width - len(bits))


def _const(value, width):
    return [ONE if (value >> i) & 1 else ZERO for i in range(width)]


@dataclass
class QCLIFCircuit:
    """The generated neuron: its cell instances and the names of its ports and registers."""

    cfg: QCLIFConfig
    gates: GateNetlist
    inputs: dict[str, list[str]]       #: bus_a, bus_s, c, w_a, x, w_s -> input nets (LSB first)
    registers: dict[str, list[str]]    #: va, v, z -> register Q nets (LSB first)
    d_nets: list[str]                  #: every register's D net (for settle-time measurement)

    def cell_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, kind, _ in self.gates.instances:
            out[kind] = out.get(kind, 0) + 1
        return dict(sorted(out.items()))


def build_circuit(cfg: QCLIFConfig = QCLIFConfig()) -> QCLIFCircuit:
    """The qCLIF neuron as sky130_fd_sc_hd instances (see module docstring for the datapath)."""
    g = GateNetlist()
    B, W, D = cfg.bits, cfg.bus_bits, cfg.datapath_bits
    # Inputs arrive through buffers (standing for the upstream registers' drivers).
    raw = {"bus_a": W, "bus_s": W, "c": 1, "w_a": B, "x": 1, "w_s": B}
    inputs = {name: [f"in_{name}{i}" for i in range(n)] for name, n in raw.items()}
    buf = {name: [g.cell("buf_1", net, tag=f"b{name}{i}") for i, net in enumerate(nets)]
           for name, nets in inputs.items()}
    clk = g.cell("clkbuf_4", "clk_in", tag="clk")
    # Register outputs (Q nets) exist before their logic: name them now.
    q = {"va": [f"q_va{i}" for i in range(B)], "v": [f"q_v{i}" for i in range(B)], "z": ["q_z0"]}

    # -- apical: Va' = clip(Va + bus_a + c·w_a − d, 0, 2^B − 1) ---------------------------
    port_a = [g.and2(buf["c"][0], w) for w in buf["w_a"]]
    s, cy = g.csa(_zext(q["va"], D), _sext(buf["bus_a"], D), _sext(port_a, D))
    s, cy = g.csa(s, cy, _const((-cfg.apical_decay) % 2 ** D, D))
    acc_a = g.ripple(s, cy)
    neg = acc_a[D - 1]
    over = g.or_all(acc_a[B:D - 1])
    nneg = g.inv(neg)
    d_va = [g.cell("o21a_1", acc_a[i], over, nneg) for i in range(B)]

    # -- modulation: shift k from the registered apical value's leading one ---------------
    b_hi, b_mid, b_lo = q["va"][B - 1], q["va"][B - 2], q["va"][B - 3]
    sel2 = g.cell("nor2_1", b_hi, b_mid)                          # k ≥ 2
    sel1 = g.cell("nor2_1", b_hi, g.and2(g.inv(b_mid), b_lo))     # k odd
    gate = g.or_all(q["va"])

    # -- soma ---------------------------------------------------------------------------
    port_s = [g.and2(buf["x"][0], w) for w in buf["w_s"]]
    s_s = g.ripple(_sext(buf["bus_s"], D), _sext(port_s, D))
    sh1 = [g.mux(s_s[i], s_s[min(i + 1, D - 1)], sel1) for i in range(D)]
    sh2 = [g.mux(sh1[i], sh1[min(i + 2, D - 1)], sel2) for i in range(D)]
    contrib = [g.and2(bit, gate) for bit in sh2]
    v_ext = _sext(q["v"], D)
    leak = _sext(q["v"][cfg.soma_leak_shift:], D)                 # V >> k_s
    leak_n = [g.inv(bit) for bit in leak[:B - cfg.soma_leak_shift]]
    leak_n = _sext(leak_n, D)                                     # ~(V >> k_s); +1 below
    z_theta = [ZERO] * (B - 2) + [q["z"][0]] * (D - B + 2)        # −z·θ, θ = 2^(B−2)
    s, cy = g.csa(v_ext, leak_n, contrib)
    s, cy = g.csa(s, cy, z_theta)
    acc = g.ripple(s, cy, cin=ONE)
    sign = acc[D - 1]
    upper = acc[B - 1:D - 1]
    nsign = g.inv(sign)
    pos_over = g.and2(nsign, g.or_all(upper))
    # negative overflow: sign set and not all upper bits set
    all_upper = upper[0]
    for bit in upper[1:]:
        all_upper = g.and2(all_upper, bit)
    not_neg_over = g.cell("nand2_1", sign, g.inv(all_upper))
    d_v = [g.cell("a21o_1", acc[i], not_neg_over, pos_over) for i in range(B - 1)] + [sign]
    d_z = g.and2(nsign, g.or_all(acc[B - 2:D - 1]))

    # -- registers ----------------------------------------------------------------------
    d_nets = []
    for name, ds in (("va", d_va), ("v", d_v), ("z", [d_z])):
        for qn, dn in zip(q[name], ds):
            if dn in (ZERO, ONE):
                raise NetlistError("qclif", f"register {qn} would be constant; check the widths")
            g.instances.append((f"Xreg_{qn}", "dfrtp_1", (clk, dn, "rst_n", qn)))
            d_nets.append(dn)
    return QCLIFCircuit(cfg, g, inputs, q, d_nets)


# --------------------------------------------------------------------------------------------
# Cell facts read from the PDK files
# --------------------------------------------------------------------------------------------
def transistor_count(tech, kinds) -> dict[str, int]:
    """Transistors per cell kind, counted in the cells' own SPICE netlists."""
    out = {}
    for kind in kinds:
        text = Path(tech.cell_file(kind)).read_text()
        out[kind] = sum(1 for line in text.splitlines() if re.match(r"^[XM]\d", line.strip()))
    return out


def cell_area_um2(tech, kind: str) -> float:
    """Placement area of a cell: ``SIZE x BY y`` from the cell's LEF, in µm²."""
    spice = Path(tech.cell_file(kind))
    lef = spice.with_suffix(".lef")
    if not lef.exists():
        raise TechnologyError(f"no LEF for {kind} at {lef}; run 'neurospice fetch-pdk' again "
                              "(newer versions also unpack the standard cells' LEF files)")
    m = re.search(r"SIZE\s+([\d.]+)\s+BY\s+([\d.]+)", lef.read_text())
    if not m:
        raise TechnologyError(f"{lef}: no SIZE statement")
    return float(m.group(1)) * float(m.group(2))
