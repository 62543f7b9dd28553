"""SFQ counting neurons as PyTorch modules, built from a ``characterize sfq`` artefact.

The circuit (:func:`neurospice.circuits.sfq_cells.counting_neuron`) merges up to ``fan_in``
excitatory lines into one pulse stream, passes it through one inhibit gate per inhibitory line
(up to ``fan_in_inhibitory``) and counts what comes through with a programmable ripple counter;
it fires one pulse per ``T`` counted pulses, ``T`` one of the characterized thresholds (powers of
two). Per neuron and time step ``t`` (tensor layout ``[T_steps, N, neurons]``), with the step's
inhibitory pulses ahead of its excitatory ones::

    h_k |= [I_k[t] > 0]                 gate k holds a token (capacity one), k in chain order
    E = Σ excitatory pulses this step    each is absorbed by the first gate holding a token
    n = max(0, E − Σ_k h_k)             counted; the first min(E, Σh) tokens are cleared
    c[t] = c[t-1] + n
    z[t] = floor(c[t] / T)              output pulses this step
    c[t] = c[t] - T·z[t]                the counter wraps: reset by subtraction, exact

With no inhibitory lines this is ``c += E``, the wires-only neuron of earlier artefacts.

Training: counts pass gradients straight through ``(E − I)/T`` (``I``: inhibitory pulses),
gated to neurons whose effective membrane ``c − Σh`` is above ``−T`` (a neuron held far below
by pending tokens gets none); the threshold is ``T = 2**round(θ)`` with ``θ`` trainable and clamped to the
characterized range (straight-through rounding) — the same values the on-chip fix/free pulses
set. Synapses are ternary: each neuron takes the top ``fan_in`` lines of a trainable score as
excitatory and the bottom ``fan_in_inhibitory`` as inhibitory (straight-through: the forward
pass uses the selection, the backward pass the score itself).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..circuits.errors import NeurospiceError
from .neurons import class_votes
from .surrogate import straight_through


def sfq_spec(artefact: dict) -> dict:
    """Thresholds, fan-ins and energy the artefact vouches for; refuse an artefact whose counts failed."""
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
            "fan_in_inhibitory": int(s.get("fan_in_inhibitory", 0)),
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

    def forward(self, inputs: torch.Tensor, inhibit_slots: torch.Tensor | None = None,
                inhibit: torch.Tensor | None = None) -> torch.Tensor:
        """``inputs [T, N, neurons]`` excitatory pulses per step; optionally ``inhibit_slots
        [T, N, gates, neurons]`` (pulses on each gate's line, gates in chain order) and
        ``inhibit [T, N, neurons]`` (their sum, carrying the gradient) → output pulses
        ``[T, N, neurons]``."""
        T = self.threshold()
        c = torch.zeros_like(inputs[0])
        tokens = None if inhibit_slots is None else torch.zeros_like(inhibit_slots[0])
        out = []
        for t, e_t in enumerate(inputs):
            if tokens is None:
                c = c + e_t
                ratio = c / T
            else:
                tokens = torch.maximum(tokens, inhibit_slots[t].clamp(max=1.0))
                e_exact = e_t.detach()
                cleared = tokens * (tokens.cumsum(-2) <= e_exact.unsqueeze(-2))
                tokens = tokens - cleared
                counted = e_exact - cleared.sum(-2)
                c = c + straight_through(e_t - inhibit[t], counted)
                ratio = c / T
                live = (c.detach() - tokens.sum(-2)) > -T.detach()     # the surrogate's gate
                ratio = torch.where(live, ratio, ratio.detach())
            z = straight_through(ratio, torch.floor(ratio))
            c = c - z.detach() * T
            out.append(z)
        return torch.stack(out)


#: initial spread of the selection scores (wires only; signed: the scale the weight learning
#: rate was tuned at)
SCORE_INIT_WIRES, SCORE_INIT_SIGNED = 0.5, 0.1
#: initial readout scale of a signed network (logits = pulses × scale)
READOUT_SCALE_SIGNED = 0.1


class WireSelect(nn.Module):
    """Each of ``n_out`` neurons is wired to ``fan_in`` of ``n_in`` lines as excitatory and to
    ``inhibitory`` others as inhibitory (fewer of each if the layer has fewer lines)."""

    def __init__(self, n_in: int, n_out: int, fan_in: int, generator=None, inhibitory: int = 0):
        super().__init__()
        if fan_in > n_in:
            raise NeurospiceError(f"fan-in {fan_in} exceeds the {n_in} available inputs")
        self.fan_in = fan_in
        self.fan_in_inhibitory = min(inhibitory, n_in - fan_in)
        self.score = nn.Parameter(torch.randn(n_in, n_out, generator=generator)
                                  * (SCORE_INIT_SIGNED if self.fan_in_inhibitory else SCORE_INIT_WIRES))

    def _indices(self):
        exc = self.score.topk(self.fan_in, dim=0).indices
        if not self.fan_in_inhibitory:
            return exc, exc[:0]
        rest = self.score.detach().scatter(0, exc, float("inf"))
        return exc, (-rest).topk(self.fan_in_inhibitory, dim=0).indices

    def mask(self) -> torch.Tensor:
        """``[n_in, n_out]`` synapses: +1 excitatory, −1 inhibitory, 0 none (the forward
        values); wires only: the sigmoid of the score carries the gradient, signed: the score."""
        exc, inh = self._indices()
        hard = torch.zeros_like(self.score).scatter_(0, exc, 1.0)
        if not self.fan_in_inhibitory:
            soft = torch.sigmoid(self.score)
            return hard + (soft - soft.detach())
        return straight_through(self.score, hard.scatter(0, inh, -1.0))

    def wires(self) -> torch.Tensor:
        """``[fan_in, n_out]`` excitatory input indices of every neuron (sorted)."""
        return self._indices()[0].sort(dim=0).values

    def inhibitory_wires(self) -> torch.Tensor:
        """``[inhibitory fan-in, n_out]`` inhibitory input indices (sorted: gate order)."""
        return self._indices()[1].sort(dim=0).values

    def forward(self, spikes: torch.Tensor):
        """``spikes [T, N, n_in]`` → ``(excitatory [T, N, n_out], gate slots [T, N, gates, n_out]
        or None, inhibitory [T, N, n_out] or None)`` pulses per step. Signed: the gradient
        reaches every score, as if the synapse were the score itself (a line whose score
        is positive as an excitatory one, else as an inhibitory one), so lines not selected yet
        can grow into the selection."""
        if not self.fan_in_inhibitory:
            return spikes @ self.mask(), None, None
        exc, inh = self._indices()
        zero = self.score - self.score.detach()              # zero, the score's gradient
        positive = self.score.detach() > 0
        hard_exc = torch.zeros_like(self.score).scatter_(0, exc, 1.0)
        hard_inh = torch.zeros_like(self.score).scatter_(0, inh, 1.0)
        excitatory = spikes @ (hard_exc + zero * positive)
        inhibitory = spikes @ (hard_inh - zero * ~positive)
        slots = spikes[..., inh.sort(dim=0).values]           # [T, N, gates, n_out], gate order
        return excitatory, slots, inhibitory

    def synaptic_ops(self, spikes: torch.Tensor) -> torch.Tensor:
        """Pulses arriving at synapses (excitatory and inhibitory), summed."""
        return spikes @ self.mask().detach().abs()


class SFQNet(nn.Module):
    """input lines → hidden SFQ neurons → ``outputs_per_class`` SFQ neurons per class (class
    ``k``: output neurons ``k·P … k·P + P − 1``); a class's vote is its neurons' pulses summed,
    the class with the most votes wins (a soft-max over votes × ``readout_scale`` for training)."""

    def __init__(self, n_in: int, hidden: int, n_classes: int, spec: dict, seed: int = 1,
                 outputs_per_class: int = 1):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        n_out = n_classes * outputs_per_class
        self.sizes = [n_in, hidden, n_out]
        self.outputs_per_class = outputs_per_class
        self.spec = spec
        inh = int(spec.get("fan_in_inhibitory", 0))
        # a layer with fewer lines than the merger tree has inputs leaves the rest idle
        self.wire1 = WireSelect(n_in, hidden, min(spec["fan_in"], n_in), g, inh)
        self.wire2 = WireSelect(hidden, n_out, min(spec["fan_in"], hidden), g, inh)
        self.soma1 = SFQNeuron(hidden, spec["thresholds"])
        self.soma2 = SFQNeuron(n_out, spec["thresholds"])
        # signed networks count many more output pulses: a softer start for the soft-max
        self.readout_scale = nn.Parameter(torch.tensor(READOUT_SCALE_SIGNED if inh else 1.0))

    def votes(self, out: torch.Tensor) -> torch.Tensor:
        """Output pulses ``[T, N, classes·P]`` → each class's pulses ``[T, N, classes]``."""
        return class_votes(out, self.outputs_per_class)

    def forward(self, x: torch.Tensor) -> dict:
        """``x [T, N, n_in]`` input pulses → ``{'hidden', 'out', 'votes', 'logits'}``."""
        h = self.soma1(*self.wire1(x))
        o = self.soma2(*self.wire2(h))
        votes = self.votes(o)
        return {"hidden": h, "out": o, "votes": votes, "logits": votes.sum(0) * self.readout_scale}
