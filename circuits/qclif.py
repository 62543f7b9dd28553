"""qCLIF: the quantized context-based LIF neuron — its integer golden model.

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

The netlist (:func:`neurospice.circuits.qclif_gates.build_circuit`) is generated from
:class:`QCLIFConfig` out of real ``sky130_fd_sc_hd`` cells.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np



@dataclass(frozen=True)
class QCLIFConfig:
    """Widths and constants of one qCLIF neuron (all integers)."""

    bits: int = 8                  #: weight and state width B
    guard_bits: int = 2            #: synaptic-sum bus width W = B + guard_bits
    apical_decay: int = 1          #: d_a, LSBs the apical state loses per step
    soma_leak_shift: int = 4       #: k_s, leak V >> k_s per step (β = 1 − 2^-k_s)

    def __post_init__(self):
        from neurospice import validate as v
        v.whole("bits", self.bits, lo=4, hi=16)
        v.whole("guard_bits", self.guard_bits, lo=0, hi=8)
        v.whole("apical_decay", self.apical_decay, lo=0, hi=2 ** (self.bits - 1) - 1)
        v.whole("soma_leak_shift", self.soma_leak_shift, lo=1, hi=self.bits - 1)

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


#: The seed of a characterization's random cycles when none is given (API and CLI).
DEFAULT_SEED = 1


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
