"""Signed-weight memcapacitive SNN: the differential circuit neuron, device mapping, network.

Tensor layout: spikes ``[T, B, n_in]`` (time first); a layer's state is a pair of
membranes ``(v_pos, v_neg)`` each ``[B, n_out]``.

**Differential neuron** (:class:`DiffNeuron`, circuit ``memcap.DiffNeuronDesign``). Per step,
with active capacitances ``c± = s @ C±`` (fF) and the half-circuit tables ``P`` (peak) and
``E`` (end of step) of the layer's fan-in::

    p± = P(v±, c±)
    z  = H(p+ − p− − θ(p−))                 θ: the comparator's measured offset
    v+ ← (1 − z)·E(v+, c+)                  reset to 0 V on a spike
    v− ← z·V_ref + (1 − z)·E(v−, c−)        reset to V_ref on a spike

Both membranes start at their reset levels. ``H`` has the triangle surrogate gradient with
half-width = the membrane step one full-weight input row (``ΔC``) makes from rest, read off the
layer's table (:func:`surrogate_half_width_V`, ≈ 60 mV at fan-in 784): the smallest drive a
weight can add, so the gradient reaches the neurons within a few rows of firing, not all of
them (with a fixed 0.5 V half-width, MNIST aware reached 0.80 after 3 epochs; with this 0.90).

**Ideal neuron** (:class:`IdealNeuron`): the linearized circuit a designer would take from a
datasheet — ``u ← β·u + g·(c+ − c−)``, fire at ``u ≥ θ_0 = V_ref + θ``, reset to 0, with ``g``
(V/fF) and ``β`` fitted to the same tables at small signals; surrogate half-width ``θ_0``
(the usual LIF choice; this leak-free neuron trains badly with the circuit's narrow one:
MNIST 16 steps, 15 epochs, test 0.75 at 60 mV against 0.96 at ``θ_0``).

**Decision** (:func:`neurons.decide`): the output neuron with the most spikes; a tie goes to the one
that spiked first (a spike counter and a first-spike latch per output); a tie in both is
undecided (counted wrong). The same rule reads the model's and ngspice's spikes.

**Device mapping** (:class:`DeviceMap`): a weight ``w ∈ [−1, 1]`` is the pair
``C+ = C_min + max(w, 0)·ΔC``, ``C− = C_min + max(−w, 0)·ΔC`` (``ΔC = C_max − C_min``), each
quantized to ``levels`` equally spaced states; programming variation multiplies each device
by ``1 + σ·N(0, 1)``. The inverse is ``w = (C+ − C−)/ΔC``.

**Comparator mismatch** (``MemcapSNN(offset_sigma_V=σ_θ)``): every neuron's firing offset is
``θ + δ`` with ``δ ~ N(0, σ_θ)`` drawn once per chip (per forward pass in training) — σ_θ from
the offset's Monte Carlo characterization (``threshold_mc`` of the artefact).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from neurospice.circuits.errors import ArtefactError

from . import native
from .neurons import interp1d, interp2d_many
from .surrogate import straight_through, triangle_spike


@dataclass(frozen=True)
class DeviceMap:
    """Weights ↔ memcapacitor pairs (see module docstring). Capacitances in fF."""

    c_min_fF: float = 2.0
    c_max_fF: float = 20.0
    levels: int = 16                 #: programmable states per device (0 = analog)
    program_sigma: float = 0.0       #: relative programming variation per device

    @property
    def delta_fF(self) -> float:
        return self.c_max_fF - self.c_min_fF

    def quantize(self, mag: torch.Tensor) -> torch.Tensor:
        """|w| in [0, 1] → nearest level (straight-through gradient)."""
        if self.levels <= 1:
            return mag
        q = torch.round(mag * (self.levels - 1)) / (self.levels - 1)
        return straight_through(mag, q)

    def to_capacitance(self, w: torch.Tensor, quantize: bool = True, generator=None):
        """``w`` → (C+, C−) in fF."""
        w = w.clamp(-1, 1)
        pos, neg = w.clamp(min=0), (-w).clamp(min=0)
        if quantize:
            pos, neg = self.quantize(pos), self.quantize(neg)
        cp = self.c_min_fF + pos * self.delta_fF
        cn = self.c_min_fF + neg * self.delta_fF
        if self.program_sigma > 0:
            cp = cp * (1 + self.program_sigma * torch.randn(cp.shape, generator=generator, device=cp.device))
            cn = cn * (1 + self.program_sigma * torch.randn(cn.shape, generator=generator, device=cn.device))
        return cp, cn

    def to_weight(self, c_pos_fF, c_neg_fF):
        """The inverse map: (C+, C−) → w."""
        return (c_pos_fF - c_neg_fF) / self.delta_fF

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_artefact(cls, artefact: dict, **kw) -> "DeviceMap":
        """The artefact's device range (``summary.c_min_F``, ``c_max_F``) and ``kw``."""
        s = artefact["summary"]
        return cls(s["c_min_F"] * 1e15, s["c_max_F"] * 1e15, **kw)


def surrogate_half_width_V(layer_table: dict, delta_fF: float) -> float:
    """The membrane step (V) one full-weight input row (``delta_fF`` of active capacitance)
    makes from rest in one step: ``E(0, ΔC) − E(0, 0)`` of the layer's end-of-step table."""
    cs = np.asarray(layer_table["c_active_fF"], float)
    end_at_rest = np.asarray(layer_table["v_mem_end_V"], float)[0]
    return float(np.interp(delta_fF, cs, end_at_rest) - end_at_rest[0])


#: initial weight spread × sqrt(fan-in): puts a typical step's drive near the firing offset
INIT_GAIN = 5.0


class DiffNeuron(native.CompiledStep):
    """The differential circuit neuron of one layer (tables at that layer's fan-in)."""

    def __init__(self, layer_table: dict, threshold: dict, v_ref_V: float, width_V: float,
                 gamma: float = 1.0):
        super().__init__()
        f = torch.float32
        for k in ("v_mem0_V", "c_active_fF", "v_mem_peak_V", "v_mem_end_V"):
            arr = np.asarray(layer_table[k], dtype=float)
            if not np.all(np.isfinite(arr)):
                raise ArtefactError(f"differential artefact table {k} has missing points")
        self.register_buffer("v_axis", torch.tensor(layer_table["v_mem0_V"], dtype=f))
        self.register_buffer("c_axis", torch.tensor(layer_table["c_active_fF"], dtype=f))
        self.register_buffer("peak", torch.tensor(layer_table["v_mem_peak_V"], dtype=f))
        self.register_buffer("end", torch.tensor(layer_table["v_mem_end_V"], dtype=f))
        self.register_buffer("th_v", torch.tensor(threshold["v_neg_V"], dtype=f))
        self.register_buffer("th_off", torch.tensor(threshold["offset_V"], dtype=f))
        self.v_ref, self.gamma, self.width = float(v_ref_V), float(gamma), float(width_V)

    @classmethod
    def from_artefact(cls, artefact: dict, fan_in: int, delta_fF: float | None = None, **kw):
        """The neuron of a layer of ``fan_in`` inputs (the nearest characterized fan-in's
        tables); surrogate half-width from the device range ``delta_fF`` (default: the
        artefact's ``C_max − C_min``)."""
        table = nearest_layer(artefact, fan_in)
        delta = DeviceMap.from_artefact(artefact).delta_fF if delta_fF is None else delta_fF
        return cls(table, artefact["threshold"], artefact["summary"]["v_reset_neg_V"],
                   surrogate_half_width_V(table, delta), **kw)

    def initial_state(self, shape, device=None, dtype=None):
        """Both membranes at their reset levels: ``(v+ = 0, v− = V_ref)``."""
        return (torch.zeros(shape, device=device, dtype=dtype),
                torch.full(shape, self.v_ref, device=device, dtype=dtype))

    NATIVE_TABLES = ("v_axis", "c_axis", "peak", "end", "th_v", "th_off")

    def native_fits(self, t):
        return (native.grids_fit(t["v_axis"], t["c_axis"], t["peak"], t["end"])
                and t["th_v"].dim() == 1 and t["th_v"].numel() >= 2 and t["th_off"].shape == t["th_v"].shape)

    def native_args(self, t):
        """``ns_diff_step``'s table arguments (training/neuron_kernels.c)."""
        p = native.data_ptr
        return (p(t["v_axis"]), t["v_axis"].numel(), p(t["c_axis"]), t["c_axis"].numel(),
                p(t["peak"]), p(t["end"]), p(t["th_v"]), t["th_v"].numel(), p(t["th_off"]))

    def offset(self, v_neg: torch.Tensor) -> torch.Tensor:
        """The comparator's firing offset (V) at the negative membrane's voltage (linear interp.)."""
        return interp1d(self.th_off, self.th_v, v_neg)

    def forward(self, c_pos, c_neg, state, offset_error=None):
        """One step; ``offset_error`` ``[n_out]`` (V): this chip's comparator offset errors."""
        vp, vn = state
        compiled = self.compiled_tables()
        if compiled and native.points_usable(vp, vn, c_pos, c_neg) and (
                offset_error is None or native.points_usable(offset_error)):
            z, vp, vn, self.margin = native.DiffStep.apply(vp, vn, c_pos, c_neg, offset_error, compiled,
                                                           (self.gamma, self.width, self.v_ref))
            return z, (vp, vn)                              # the same step, compiled
        # one fused lookup of both tables per membrane (peak and end share the points)
        tables = torch.stack((self.peak, self.end))
        pp, ep = interp2d_many(tables, self.v_axis, self.c_axis, vp, c_pos)
        pn, en = interp2d_many(tables, self.v_axis, self.c_axis, vn, c_neg)
        margin = pp - pn - self.offset(pn)
        if offset_error is not None:
            margin = margin - offset_error
        self.margin = margin
        z = triangle_spike(margin, self.gamma, self.width)
        return z, ((1 - z) * ep, z * self.v_ref + (1 - z) * en)


class IdealNeuron(nn.Module):
    """Linearized circuit: ``u ← β·u + g·(c+ − c−)``, spike at ``u ≥ θ_0``, reset to 0."""

    def __init__(self, gain_V_per_fF: float, beta: float, threshold_V: float, gamma: float = 1.0):
        super().__init__()
        self.gain, self.beta, self.threshold = float(gain_V_per_fF), float(beta), float(threshold_V)
        self.gamma, self.width = float(gamma), float(threshold_V)

    def initial_state(self, shape, device=None, dtype=None):
        return torch.zeros(shape, device=device, dtype=dtype)

    def forward(self, c_pos, c_neg, u, offset_error=None):
        u = self.beta * u + self.gain * (c_pos - c_neg)
        self.margin = u - self.threshold
        if offset_error is not None:
            self.margin = self.margin - offset_error
        z = triangle_spike(self.margin, self.gamma, self.width)
        return z, (1 - z) * u

    @classmethod
    def from_table(cls, layer_table: dict, threshold: dict, v_ref_V: float, **kw):
        """Small-signal fit of the half tables: gain from the first 60 fF from rest, leak
        from the zero-input column below 0.6 V."""
        cs = np.asarray(layer_table["c_active_fF"])
        vs = np.asarray(layer_table["v_mem0_V"])
        end = np.asarray(layer_table["v_mem_end_V"])
        sel = cs <= 60
        gain = float(np.polyfit(cs[sel], end[0, sel] - end[0, 0], 1)[0])
        low = vs <= 0.6
        beta = float(np.polyfit(vs[low], end[low, 0], 1)[0])
        return cls(gain, min(beta, 1.0), v_ref_V + float(np.mean(threshold["offset_V"])), **kw)


class MemcapSNN(nn.Module):
    """Fully connected SNN ``sizes = [n_in, h_1, ..., n_out]`` of memcapacitive neurons.

    ``neuron = "circuit"`` uses :class:`DiffNeuron` (tables of the artefact at each layer's
    fan-in, the nearest characterized one), ``"ideal"`` uses :class:`IdealNeuron`.
    Weights are latent ``w ∈ [−1, 1]`` mapped to device pairs by ``device_map``.
    """

    def __init__(self, artefact: dict, sizes: list[int], neuron: str = "circuit",
                 device_map: DeviceMap | None = None, quantize: bool = True, seed: int = 1,
                 offset_sigma_V: float = 0.0):
        super().__init__()
        self.offset_sigma_V = float(offset_sigma_V)
        if artefact.get("family") != "memcap_diff":
            raise ArtefactError(f"curve artefact family is {artefact.get('family')!r}, "
                                "need 'memcap_diff' (neurospice characterize memcap-diff)")
        self.sizes, self.neuron_kind, self.quantize = list(sizes), neuron, quantize
        self.device_map = device_map or DeviceMap.from_artefact(artefact)
        g = torch.Generator().manual_seed(seed)
        self.weights = nn.ParameterList()
        self.neurons = nn.ModuleList()
        v_ref = artefact["summary"]["v_reset_neg_V"]
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            self.weights.append(nn.Parameter((torch.randn(n_in, n_out, generator=g) * INIT_GAIN / n_in ** 0.5).clamp(-1, 1)))
            if neuron == "circuit":
                self.neurons.append(DiffNeuron.from_artefact(artefact, n_in, self.device_map.delta_fF))
            elif neuron == "ideal":
                self.neurons.append(IdealNeuron.from_table(nearest_layer(artefact, n_in),
                                                           artefact["threshold"], v_ref))
            else:
                raise ValueError(f"neuron must be 'circuit' or 'ideal', not {neuron!r}")

    def capacitances(self, quantize: bool | None = None, generator=None):
        q = self.quantize if quantize is None else quantize
        return [self.device_map.to_capacitance(w, quantize=q, generator=generator) for w in self.weights]

    def offset_errors(self, generator=None) -> list[torch.Tensor] | None:
        """One chip's comparator offset errors (V), ``[n_out]`` per layer; None without mismatch."""
        if self.offset_sigma_V <= 0:
            return None
        return [self.offset_sigma_V * torch.randn(w.shape[1], generator=generator) for w in self.weights]

    def forward(self, spikes: torch.Tensor, caps=None, record: bool = False, offsets=None):
        """``spikes [T, B, n_in]`` → output spike counts ``[B, n_out]`` (and, with ``record``,
        every layer's spikes ``[T, B, n]``). ``self.margin_sum`` keeps the output layer's
        summed distance to its firing point (V), a smooth training signal. ``caps`` and
        ``offsets`` (one chip) are drawn anew when not given."""
        caps = caps or self.capacitances()
        if offsets is None and self.offset_sigma_V > 0:
            offsets = [o.to(spikes.device) for o in self.offset_errors()]
        T, B = spikes.shape[:2]
        states = [nrn.initial_state((B, w.shape[1]), spikes.device) for nrn, w in zip(self.neurons, self.weights)]
        counts, margin = 0, 0
        rec = [[] for _ in self.neurons]
        for t in range(T):
            s = spikes[t]
            for li, (nrn, (cp, cn)) in enumerate(zip(self.neurons, caps)):
                s, states[li] = nrn(s @ cp, s @ cn, states[li], None if offsets is None else offsets[li])
                if record:
                    rec[li].append(s)
            counts = counts + s
            margin = margin + self.neurons[-1].margin
        self.margin_sum = margin
        if record:
            return counts, [torch.stack(r) for r in rec]
        return counts


def nearest_layer(artefact: dict, fan_in: int) -> dict:
    fans = sorted(int(f) for f in artefact["layers"])
    best = min(fans, key=lambda f: abs(f - fan_in))
    return artefact["layers"][str(best)]
