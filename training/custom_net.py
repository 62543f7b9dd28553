"""Spiking networks of a user's neuron (family ``custom``): the table neuron of its artefact,
signed-current synapses, and the linearized reference.

Tensor layout: spikes ``[T, B, n]`` (time first); a layer's state ``[B, n_out]`` (membrane, V).
Currents inside the network are in µA (float32 resolves the table's axes there).

**Synapses** (the stated assumption): one ideal current source per synapse, on while its
input spikes during a step. Weight ``w ∈ [−1, 1]`` gives the current ``w·I_syn`` with
``I_syn = SYNAPSE_GAIN · max(|i_min|, |i_max|) / √fan_in`` (so a layer's typical summed drive
spans the characterized range), optionally quantized to ``levels`` equally spaced values of
``|w|`` and spread per synapse by ``1 + σ·N(0, 1)`` (one draw per chip). The summed current
into a neuron is clamped to the characterized range (the table holds nothing beyond it).

**Circuit neuron** (:class:`CustomNeuron`): the step map of
:mod:`neurospice.circuits.custom_model` (the numpy golden model this cell reproduces; a test
checks both agree), differentiable: the spike ``z = H(i − B(v))`` has the triangle surrogate
of half-width :data:`SURROGATE_HALF_WIDTH` of the current range.

**Ideal neuron** (:class:`IdealCustomNeuron`): the artefact's linearized LIF fit
``u' = β·u + g·i + c``, spike at ``u' ≥ θ``, reset to ``rest_V`` (surrogate half-width ``θ − rest``).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from neurospice.circuits.errors import ArtefactError

from .neurons import interp1d, interp2d_many
from .surrogate import straight_through, triangle_spike

#: per-synapse current at |w| = 1, times √fan-in, in units of the range's largest |current|
SYNAPSE_GAIN = 2.0
#: spike surrogate half-width, as a fraction of the characterized current range
SURROGATE_HALF_WIDTH = 0.5
#: initial weight spread × √fan-in
INIT_GAIN = 4.0
UA_PER_A = 1e6


class CustomNeuron(nn.Module):
    """The table neuron of a ``custom`` artefact (see the module docstring)."""

    GRIDS = ("v_end_quiet_V", "v_end_fired_V", "energy_quiet_J", "energy_fired_J")

    def __init__(self, artefact: dict, gamma: float = 1.0):
        super().__init__()
        if artefact.get("family") != "custom":
            raise ArtefactError(f"curve artefact family is {artefact.get('family')!r}, need 'custom' "
                                "(neurospice characterize custom --neuron FILE.toml)")
        m, f = artefact["model"], torch.float32
        self.register_buffer("v_axis", torch.tensor(m["v_mem0_V"], dtype=f))
        self.register_buffer("i_axis", torch.tensor(np.asarray(m["i_in_A"]) * UA_PER_A, dtype=f))
        self.register_buffer("boundary", torch.tensor(np.asarray(m["boundary_A"]) * UA_PER_A, dtype=f))
        for k in self.GRIDS:
            arr = np.asarray(m[k], float)
            if not np.all(np.isfinite(arr)):
                raise ArtefactError(f"custom artefact model table {k} has missing values")
            self.register_buffer(k, torch.tensor(arr * (1e12 if k.startswith("energy") else 1.0), dtype=f))
        s = artefact["summary"]
        self.rest_V = float(s["rest_V"])
        self.gamma = float(gamma)
        self.width_uA = SURROGATE_HALF_WIDTH * float(self.i_axis[-1] - self.i_axis[0])

    def initial_state(self, shape, device=None):
        return torch.full(shape, self.rest_V, device=device)

    def clamp_current(self, i_uA):
        return i_uA.clamp(float(self.i_axis[0]), float(self.i_axis[-1]))

    def forward(self, i_uA, v, energy: bool = False):
        """One step: current ``i_uA`` and membrane ``v`` → (spike, next membrane[, energy pJ])."""
        i = self.clamp_current(i_uA)
        self.margin = i - interp1d(self.boundary, self.v_axis, v)
        z = triangle_spike(self.margin, self.gamma, self.width_uA)
        grids = [self.v_end_quiet_V, self.v_end_fired_V] + ([self.energy_quiet_J, self.energy_fired_J] if energy else [])
        q, f, *e = interp2d_many(grids, self.v_axis, self.i_axis, v, i)
        v_next = z * f + (1 - z) * q
        return (z, v_next, z * e[1] + (1 - z) * e[0]) if energy else (z, v_next)


class IdealCustomNeuron(nn.Module):
    """The linearized LIF of the artefact (``fits.lif``), same interface as :class:`CustomNeuron`."""

    def __init__(self, artefact: dict, gamma: float = 1.0):
        super().__init__()
        lif, s = artefact["fits"]["lif"], artefact["summary"]
        self.beta, self.offset_V = float(lif["beta"]), float(lif["offset_V"])
        self.gain_V_per_uA = float(lif["gain_V_per_A"]) / UA_PER_A
        self.threshold_V, self.rest_V = float(lif["threshold_V"]), float(s["rest_V"])
        lo, hi = (x * UA_PER_A for x in s["input_A"])
        self.i_lo, self.i_hi = float(lo), float(hi)
        self.gamma = float(gamma)
        self.width_V = max(abs(self.threshold_V - self.rest_V), 1e-3)

    def initial_state(self, shape, device=None):
        return torch.full(shape, self.rest_V, device=device)

    def clamp_current(self, i_uA):
        return i_uA.clamp(self.i_lo, self.i_hi)

    def forward(self, i_uA, v, energy: bool = False):
        u = self.beta * v + self.gain_V_per_uA * self.clamp_current(i_uA) + self.offset_V
        self.margin = (u - self.threshold_V) / self.gain_V_per_uA       # in µA, like the circuit's
        z = triangle_spike(u - self.threshold_V, self.gamma, self.width_V)
        v_next = z * self.rest_V + (1 - z) * u
        return (z, v_next, torch.zeros_like(v)) if energy else (z, v_next)


def synapse_current_uA(artefact: dict, fan_in: int) -> float:
    """``I_syn`` of a layer of ``fan_in`` inputs (µA at |w| = 1; see the module docstring)."""
    lo, hi = artefact["summary"]["input_A"]
    return SYNAPSE_GAIN * max(abs(lo), abs(hi)) * UA_PER_A / fan_in ** 0.5


class CustomSNN(nn.Module):
    """Fully connected SNN ``sizes = [n_in, h_1, ..., n_out]`` of one user neuron."""

    def __init__(self, artefact: dict, sizes: list[int], neuron: str = "circuit", levels: int = 0,
                 current_sigma: float = 0.0, seed: int = 1):
        super().__init__()
        if neuron not in ("circuit", "ideal"):
            raise ValueError(f"neuron must be 'circuit' or 'ideal', not {neuron!r}")
        self.sizes, self.neuron_kind = list(sizes), neuron
        self.levels, self.current_sigma = int(levels), float(current_sigma)
        g = torch.Generator().manual_seed(seed)
        self.weights = nn.ParameterList(
            nn.Parameter((torch.randn(a, b, generator=g) * INIT_GAIN / a ** 0.5).clamp(-1, 1))
            for a, b in zip(sizes[:-1], sizes[1:]))
        cls = CustomNeuron if neuron == "circuit" else IdealCustomNeuron
        self.neurons = nn.ModuleList(cls(artefact) for _ in sizes[1:])
        self.i_syn_uA = [synapse_current_uA(artefact, a) for a in sizes[:-1]]

    def currents(self, quantize: bool | None = None, generator=None) -> list[torch.Tensor]:
        """Per layer the synapse currents ``[n_in, n_out]`` in µA (quantized, one chip's spread)."""
        out = []
        for w, scale in zip(self.weights, self.i_syn_uA):
            w = w.clamp(-1, 1)
            if (self.levels > 1) if quantize is None else quantize:
                mag = w.abs()
                q = torch.round(mag * (self.levels - 1)) / (self.levels - 1)
                w = torch.sign(w) * straight_through(mag, q)
            c = w * scale
            if self.current_sigma > 0:
                c = c * (1 + self.current_sigma * torch.randn(c.shape, generator=generator).to(c.device))
            out.append(c)
        return out

    def forward(self, spikes: torch.Tensor, currents=None, record: bool = False, energy: bool = False):
        """``spikes [T, B, n_in]`` → output spike counts ``[B, n_out]``; with ``record`` also
        every layer's spikes and the currents fed to each layer's neurons (µA, clamped)
        ``[T, B, n]``. ``self.margin_sum``: the output layer's summed signed distance to its
        firing current (µA), a smooth training signal; with ``energy``, ``self.energy_pJ``:
        energy per sample from the tables."""
        currents = currents if currents is not None else self.currents()
        T, B = spikes.shape[:2]
        states = [n.initial_state((B, w.shape[1]), spikes.device) for n, w in zip(self.neurons, self.weights)]
        counts, margin, e_total = 0, 0, 0
        rec = [[] for _ in self.neurons]
        fed = [[] for _ in self.neurons]
        for t in range(T):
            s = spikes[t]
            for li, (nrn, c) in enumerate(zip(self.neurons, currents)):
                i = s @ c
                if energy:
                    s, states[li], e = nrn(i, states[li], energy=True)
                    e_total = e_total + e.sum(1)
                else:
                    s, states[li] = nrn(i, states[li])
                if record:
                    rec[li].append(s)
                    fed[li].append(nrn.clamp_current(i))
            counts = counts + s
            margin = margin + self.neurons[-1].margin
        self.margin_sum = margin
        if energy:
            self.energy_pJ = e_total
        if record:
            return counts, [torch.stack(r) for r in rec], [torch.stack(f) for f in fed]
        return counts
