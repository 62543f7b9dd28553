"""SFQ counting neurons as PyTorch modules, built from a ``characterize sfq`` artefact.

The circuit (:func:`neurospice.circuits.sfq_cells.counting_neuron`) merges up to
``fan_in`` (16) input lines into one pulse stream and counts it with a programmable ripple
counter; it fires one pulse per ``T`` input pulses, ``T`` one of the characterized thresholds
(powers of two). Per neuron and time step ``t`` (tensor layout ``[T_steps, N, neurons]``)::

    c[t] = c[t-1] + I[t]            I[t]: input pulses this step (integer)
    z[t] = floor(c[t] / T)          output pulses this step
    c[t] = c[t] - T·z[t]            the counter wraps: reset by subtraction, exact

Training: ``z`` passes gradients straight through ``c/T`` (``∂z/∂c = 1/T``,
``∂z/∂T = −c/T²``); the threshold is ``T = 2**round(θ)`` with ``θ`` trainable and clamped to the
characterized range (straight-through rounding) — the same values the on-chip fix/free pulses
set. Synapses are wires: each neuron takes exactly ``fan_in`` inputs, chosen as the top
``fan_in`` of a trainable score per input (straight-through: the forward pass uses the binary
selection, the backward pass the score's sigmoid).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..circuits.errors import NeurospiceError
from .surrogate import straight_through


def sfq_spec(artefact: dict) -> dict:
    """Thresholds and fan-in the artefact vouches for; refuse an artefact whose counts failed."""
    s = artefact.get("summary", {})
    if artefact.get("family") != "sfq" or "thresholds" not in s:
        raise NeurospiceError("not an SFQ artefact (run `neurospice characterize sfq`)")
    if not s.get("counts_correct"):
        raise NeurospiceError("the SFQ artefact reports wrong counts: the circuit is not usable")
    thresholds = sorted(int(t) for t in s["thresholds"])
    if "fan_in" not in s:
        raise NeurospiceError("the SFQ artefact does not state the neuron's fan-in: re-run "
                              "`neurospice characterize sfq`")
    if any(t & (t - 1) for t in thresholds):
        raise NeurospiceError(f"thresholds must be powers of two, got {thresholds}")
    return {"thresholds": thresholds, "fan_in": int(s["fan_in"]),
            "energy_per_spike_J": float(s["energy_per_spike_aJ"]) * 1e-18}


class SFQNeuron(nn.Module):
    """``neurons`` counting neurons with trainable thresholds among ``thresholds``."""

    def __init__(self, neurons: int, thresholds, init_threshold: int | None = None):
        super().__init__()
        exps = [int(math.log2(t)) for t in thresholds]
        self.exp_min, self.exp_max = min(exps), max(exps)
        start = math.log2(init_threshold) if init_threshold else 0.5 * (self.exp_min + self.exp_max)
        self.theta = nn.Parameter(torch.full((neurons,), float(start)))

    def threshold(self) -> torch.Tensor:
        """``T = 2**round(θ)`` (straight-through), within the characterized range."""
        th = self.theta.clamp(self.exp_min, self.exp_max)
        return torch.pow(2.0, straight_through(th, th.round()))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs [T, N, neurons]`` (pulse counts per step) → output pulses ``[T, N, neurons]``."""
        T = self.threshold()
        c = torch.zeros_like(inputs[0])
        out = []
        for i_t in inputs:
            c = c + i_t
            ratio = c / T
            z = straight_through(ratio, torch.floor(ratio))
            c = c - z.detach() * T
            out.append(z)
        return torch.stack(out)


class WireSelect(nn.Module):
    """Each of ``n_out`` neurons is wired to exactly ``fan_in`` of ``n_in`` lines (no weights)."""

    def __init__(self, n_in: int, n_out: int, fan_in: int, generator=None):
        super().__init__()
        if fan_in > n_in:
            raise NeurospiceError(f"fan-in {fan_in} exceeds the {n_in} available inputs")
        self.fan_in = fan_in
        self.score = nn.Parameter(torch.randn(n_in, n_out, generator=generator) * 0.5)

    def mask(self) -> torch.Tensor:
        idx = self.score.topk(self.fan_in, dim=0).indices
        hard = torch.zeros_like(self.score).scatter_(0, idx, 1.0)
        soft = torch.sigmoid(self.score)
        return hard + (soft - soft.detach())     # exactly 0/1 forward, the sigmoid's gradient

    def wires(self) -> torch.Tensor:
        """``[fan_in, n_out]`` input indices of every neuron (sorted)."""
        return self.score.topk(self.fan_in, dim=0).indices.sort(dim=0).values

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        return spikes @ self.mask()


class SFQNet(nn.Module):
    """input lines → hidden SFQ neurons → one SFQ neuron per class; the class with the most
    output pulses wins (a soft-max over pulse counts × ``readout_scale`` for training)."""

    def __init__(self, n_in: int, hidden: int, n_out: int, spec: dict, seed: int = 1):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.sizes = [n_in, hidden, n_out]
        self.spec = spec
        # a layer with fewer lines than the merger tree has inputs leaves the rest idle
        self.wire1 = WireSelect(n_in, hidden, min(spec["fan_in"], n_in), g)
        self.wire2 = WireSelect(hidden, n_out, min(spec["fan_in"], hidden), g)
        self.soma1 = SFQNeuron(hidden, spec["thresholds"])
        self.soma2 = SFQNeuron(n_out, spec["thresholds"])
        self.readout_scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> dict:
        """``x [T, N, n_in]`` input pulses → ``{'hidden', 'out', 'logits'}``."""
        h = self.soma1(self.wire1(x))
        o = self.soma2(self.wire2(h))
        return {"hidden": h, "out": o, "logits": o.sum(0) * self.readout_scale}
