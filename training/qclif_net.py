"""Recurrent SNN of qCLIF neurons (quantization-aware) and its float32 CLIF twin.

Tensor layout ``[T, N, features]``. The integer neuron is :func:`neurospice.circuits.qclif.step`
(the golden model); :class:`QCLIFCell` computes the same integers with float32 tensor ops
(exact: every value is an integer far below 2^24) and adds gradients where the integer update
has none (straight-through / surrogate):

* weights: ``w_int = clamp(round(w·θ), w_min, w_max)``, straight-through round (parameters are
  in units of the threshold θ, so one learning rate fits every width);
* synaptic sums: ``S = clamp(Σ spike·w_int + b_int, bus range)`` (the saturating synapse array);
* modulation ``S >> k`` (gated by ``Va > 0``): forward exact, backward the product it stands for,
  ``S·ReLU(Va)/2^(B−1)``; leak ``V >> k_s``: forward exact, backward ``V/2^k_s``;
* spike ``z = H(acc − θ)``: triangle surrogate ``γ·max(0, 1 − |acc − θ|/θ)``, γ = 0.3.

The class is read in hardware: an output layer of ``n_out`` neurons of the same kind, each fed
the hidden spikes through its own integer synapses (``S_s = z·W_o + b_o``, apical ``S_a = b_oa``),
and :func:`~neurospice.training.neurons.decide` reads their spikes (most spikes, a tie to the
first). The output layer sees the hidden spikes of step ``t`` at its step ``t`` — one clock
cycle later on the chip (the hidden registers' outputs), so an inference takes ``T + 1`` cycles.

So the forward pass *is* the integer neuron: a trained network runs bit-exactly on the circuit.
:class:`CLIFCell` is the float32 CLIF (:func:`neurospice.circuits.qclif.clif_step`, same
pipelined structure, constants from :func:`~neurospice.circuits.qclif.float_equivalents`).
"""
from __future__ import annotations

import torch
from torch import nn

from neurospice.circuits.qclif import QCLIFConfig, clif_step, float_equivalents, modulation_shift

from .surrogate import straight_through, triangle_spike

#: Surrogate gradient height (the issue's CLIF setting).
SURROGATE_GAMMA = 0.3
#: Output spike counts → logits for the cross-entropy loss: ``counts · LOGIT_STEPS / T`` (a
#: count difference of ``T / 16`` spikes is one logit unit). A training choice: sharper than
#: :data:`neurons.LOGIT_STEPS` (8) that the other families use, as ties of counts are frequent
#: here and a tie is a wrong answer (README, *Training qCLIF networks*).
LOGIT_STEPS = 16.0


class QCLIFCell(nn.Module):
    """The integer qCLIF update with surrogate gradients (no parameters; state passed in)."""

    def __init__(self, cfg: QCLIFConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, va, v, z, s_a, s_s):
        cfg = self.cfg
        va_next = (va + s_a - cfg.apical_decay).clamp(0, cfg.va_max)
        k = modulation_shift(cfg, va)          # the golden model's shift (float tensor here)
        m_exact = torch.where(va > 0, torch.floor(s_s / 2 ** k), torch.zeros_like(s_s))
        m = straight_through(s_s * va.clamp(min=0) / 2 ** (cfg.bits - 1), m_exact)
        leak = straight_through(v / 2 ** cfg.soma_leak_shift, torch.floor(v / 2 ** cfg.soma_leak_shift))
        acc = v - leak + m - z * cfg.threshold
        lo, hi = cfg.v_range
        v_next = straight_through(acc, acc.clamp(lo, hi))
        z_next = triangle_spike(acc - cfg.threshold, SURROGATE_GAMMA / cfg.threshold, float(cfg.threshold))
        return va_next, v_next, z_next


class CLIFCell(nn.Module):
    """Float32 CLIF with the constants matching ``cfg`` (same units: θ = 2^(B−2))."""

    def __init__(self, cfg: QCLIFConfig):
        super().__init__()
        self.cfg = cfg
        self.k = float_equivalents(cfg)

    def forward(self, va, v, z, s_a, s_s):
        k = self.k
        va_n, v_n, _ = clif_step(va, v, z, s_a * k["apical_gain"], s_s * k["soma_gain"],
                                 k["alpha"], k["beta"], k["theta"])
        z_n = triangle_spike(v_n - k["theta"], SURROGATE_GAMMA / k["theta"], k["theta"])
        return va_n, v_n, z_n


def quantize_weight(w: torch.Tensor, cfg: QCLIFConfig) -> torch.Tensor:
    """Parameters in units of θ → integer weights (straight-through round and clamp)."""
    lo, hi = cfg.weight_range
    scaled = w * cfg.threshold
    return straight_through(scaled, torch.round(scaled).clamp(lo, hi))


class QCLIFRSNN(nn.Module):
    """One recurrent layer of qCLIF (``neuron='qclif'``) or CLIF (``'clif'``) neurons and an
    output layer of the same neurons.

    Per step: ``S_s = x·W_s + z·W_s^rec + b_s``, ``S_a = c·W_a + z·W_a^rec + b_a`` (no
    self-connections), then the neuron update; output neurons: ``S_s = z·W_o + b_o``,
    ``S_a = b_oa``. ``c`` (context) is optional: without it the apical input comes from
    recurrence and bias.
    """

    def __init__(self, n_in: int, n_hidden: int, n_out: int, n_context: int = 0,
                 cfg: QCLIFConfig = QCLIFConfig(), neuron: str = "qclif", seed: int = 1):
        super().__init__()
        if neuron not in ("qclif", "clif"):
            raise ValueError(f"neuron must be 'qclif' or 'clif', got {neuron!r}")
        self.cfg, self.neuron = cfg, neuron
        self.sizes = (n_in, n_hidden, n_out, n_context)
        g = torch.Generator().manual_seed(seed)
        rnd = lambda *shape, std: nn.Parameter(torch.randn(*shape, generator=g) * std)  # noqa: E731
        # weights in units of θ; stds chosen so a step's synaptic sum is ~θ/2 at the start
        self.w_s = rnd(n_in, n_hidden, std=1.0 / max(n_in, 1) ** 0.5)
        self.w_s_rec = rnd(n_hidden, n_hidden, std=0.5 / n_hidden ** 0.5)
        self.b_s = nn.Parameter(torch.zeros(n_hidden))
        self.w_a = rnd(max(n_context, 1), n_hidden, std=1.0 / max(n_context, 1) ** 0.5)
        self.w_a_rec = rnd(n_hidden, n_hidden, std=0.5 / n_hidden ** 0.5)
        # apical bias: the apical compartment starts depolarized, so the soma is not gated off
        self.b_a = nn.Parameter(torch.full((n_hidden,), 0.5))
        # output neurons: a hidden spike moves a soma by ~θ/√H at the start; apex depolarized
        self.w_o = rnd(n_hidden, n_out, std=1.0 / n_hidden ** 0.5)
        # ... and rests at V ≈ θ/2 (bias·2^k_s): inside the spike surrogate's support, so a silent
        # output layer still passes gradient
        self.b_o = nn.Parameter(torch.full((n_out,), 0.5 / 2 ** cfg.soma_leak_shift))
        # output apex: qCLIF, the largest bias, so the modulation is at full gain (×1) from the
        # second step (½θ would ramp through ×⅛..×½ for four steps of a short input); the float
        # CLIF's apex is unbounded (gain ≈ Σ S_a / 2^(B−1)), so there ½θ, gain ×1 by step 4
        b_oa = cfg.weight_range[1] / cfg.threshold if neuron == "qclif" else 0.5
        self.b_oa = nn.Parameter(torch.full((n_out,), b_oa))
        self.register_buffer("no_self", 1 - torch.eye(n_hidden))
        cell = QCLIFCell if neuron == "qclif" else CLIFCell
        self.cell, self.out_cell = cell(cfg), cell(cfg)

    def integer_weights(self) -> dict[str, torch.Tensor]:
        """The weights and biases as the circuit holds them (integers for qCLIF)."""
        q = (lambda w: quantize_weight(w, self.cfg)) if self.neuron == "qclif" else \
            (lambda w: w * self.cfg.threshold)
        return {"w_s": q(self.w_s), "w_s_rec": q(self.w_s_rec) * self.no_self, "b_s": q(self.b_s),
                "w_a": q(self.w_a), "w_a_rec": q(self.w_a_rec) * self.no_self, "b_a": q(self.b_a),
                "w_o": q(self.w_o), "b_o": q(self.b_o), "b_oa": q(self.b_oa)}

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, record: bool = False) -> dict:
        """``x [T, N, n_in]`` spikes (0/1), ``context [T, N, n_context]`` →
        ``{'out': output spikes [T, N, n_out], 'logits' [N, n_out], 'spikes': hidden counts [N, H]}``;
        ``record``: also every layer's per-step synaptic sums and states (``record['hidden']``
        ``[T, N, H]``, ``record['output']`` ``[T, N, n_out]``; for verify)."""
        T, N, _ = x.shape
        H, O = self.sizes[1], self.sizes[2]
        w = self.integer_weights()
        lo, hi = self.cfg.bus_range
        clip_bus = (lambda s: straight_through(s, s.clamp(lo, hi))) if self.neuron == "qclif" else (lambda s: s)
        va = v = z = torch.zeros(N, H, device=x.device)
        va_o = v_o = z_o = torch.zeros(N, O, device=x.device)
        counts = torch.zeros(N, H, device=x.device)
        s_oa = clip_bus(w["b_oa"].expand(N, O))
        keys = ("s_a", "s_s", "va", "v", "z")
        rec = {layer: {k: [] for k in keys} for layer in ("hidden", "output")}
        outs = []
        for t in range(T):
            s_s = clip_bus(x[t] @ w["w_s"] + z @ w["w_s_rec"] + w["b_s"])
            a_in = z @ w["w_a_rec"] + w["b_a"]
            if context is not None:
                a_in = a_in + context[t] @ w["w_a"]
            s_a = clip_bus(a_in)
            va, v, z = self.cell(va, v, z, s_a, s_s)
            counts = counts + z
            s_os = clip_bus(z @ w["w_o"] + w["b_o"])
            va_o, v_o, z_o = self.out_cell(va_o, v_o, z_o, s_oa, s_os)
            outs.append(z_o)
            if record:
                for layer, vals in (("hidden", (s_a, s_s, va, v, z)), ("output", (s_oa, s_os, va_o, v_o, z_o))):
                    for key, val in zip(keys, vals):
                        rec[layer][key].append(val.detach())
        out_spikes = torch.stack(outs)
        out = {"out": out_spikes, "logits": out_spikes.sum(0) * (LOGIT_STEPS / T),
               "spikes": counts}
        if record:
            out["record"] = {layer: {k: torch.stack(val) for k, val in r.items()} for layer, r in rec.items()}
        return out
