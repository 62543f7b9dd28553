"""Differentiable neurons: a table-driven neuron built from a curve artefact, and plain LIF.

Tensor layout: inputs ``[T, N, ...]`` (time first), state ``[N, ...]``.

:class:`TableNeuron` — per step, with drive ``c`` (for the memcapacitive family: the
active input capacitance in fF) and membrane ``v``::

    v_peak = P(v, c)                        peak membrane voltage within the step (table)
    z      = H(v_peak - θ)                   spike; surrogate gradient (see below)
    v'     = (1 - z) · E(v, c)               end-of-step voltage (table); reset to 0 on a spike

``P`` and ``E`` are bilinear interpolations of the characterized grids (clamped at the
grid edges), differentiable in ``v`` and ``c``. The surrogate is the triangle
``γ·max(0, 1 - |v_peak - θ|/w)``.

:class:`LIF` — ``v' = β·v + c``, ``z = H(v' - θ)``, ``v' ← (1 - z)·v'``: the same
interface; a TableNeuron whose tables are ``P = E = β·v + c`` reproduces it exactly.
"""
from __future__ import annotations

import torch
from torch import nn

from .surrogate import triangle_spike


#: how the output layer's spikes name a class (:func:`decide`; metrics files quote it)
DECISION_RULE = "most output spikes; a tie goes to the neuron that spiked first; still tied: wrong"


def decide(out_spikes: torch.Tensor) -> torch.Tensor:
    """Output spikes ``[T, B, n_out]`` → class ``[B]`` by :data:`DECISION_RULE`; −1 where
    count and first spike both tie (undecided)."""
    T = out_spikes.shape[0]
    counts = out_spikes.sum(0)
    fired = out_spikes > 0
    first = torch.where(fired.any(0), fired.float().argmax(0).to(counts.dtype),
                        torch.full_like(counts, T))
    score = counts * (T + 1) + (T - first)          # count first, then earlier is better
    top = score.max(1).values
    pred = score.argmax(1)
    return torch.where((score == top[:, None]).sum(1) == 1, pred, torch.full_like(pred, -1))


def interp2d(grid: torch.Tensor, v_axis: torch.Tensor, c_axis: torch.Tensor,
             v: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation of ``grid[len(v_axis), len(c_axis)]`` at (v, c), clamped to the axes.

    Lower-precision inputs (bfloat16, float16) are looked up in the grid's precision and the
    result is returned in the input's dtype (bfloat16 cannot resolve the axes' spacing).
    """
    out_dtype = torch.promote_types(v.dtype, c.dtype)
    if out_dtype != grid.dtype:
        return interp2d(grid, v_axis, c_axis, v.to(grid.dtype), c.to(grid.dtype)).to(out_dtype)
    v = v.clamp(v_axis[0], v_axis[-1])
    c = c.clamp(c_axis[0], c_axis[-1])
    iv = torch.searchsorted(v_axis, v.detach().contiguous(), right=True).clamp(1, len(v_axis) - 1)
    ic = torch.searchsorted(c_axis, c.detach().contiguous(), right=True).clamp(1, len(c_axis) - 1)
    v0, v1 = v_axis[iv - 1], v_axis[iv]
    c0, c1 = c_axis[ic - 1], c_axis[ic]
    tv = (v - v0) / (v1 - v0)
    tc = (c - c0) / (c1 - c0)
    g00, g01 = grid[iv - 1, ic - 1], grid[iv - 1, ic]
    g10, g11 = grid[iv, ic - 1], grid[iv, ic]
    return (g00 * (1 - tv) * (1 - tc) + g01 * (1 - tv) * tc + g10 * tv * (1 - tc) + g11 * tv * tc)


class TableNeuron(nn.Module):
    """A neuron whose one-step map comes from characterized tables (see module docstring)."""

    def __init__(self, v_axis, c_axis, peak_grid, end_grid, threshold: float,
                 gamma: float = 0.3, width: float | None = None):
        super().__init__()
        f = torch.get_default_dtype()
        self.register_buffer("v_axis", torch.as_tensor(v_axis, dtype=f))
        self.register_buffer("c_axis", torch.as_tensor(c_axis, dtype=f))
        self.register_buffer("peak_grid", torch.as_tensor(peak_grid, dtype=f))
        self.register_buffer("end_grid", torch.as_tensor(end_grid, dtype=f))
        self.threshold, self.gamma = float(threshold), float(gamma)
        self.width = float(width) if width else max(abs(self.threshold), 1e-6)

    @classmethod
    def from_artefact(cls, artefact: dict, **kw) -> "TableNeuron":
        """Build from a memcap curve artefact (``load_artefact``): its 2-D tables and threshold.

        Fired cells have no pre-reset end voltage; there the end table takes the peak (the
        neuron fires in them, so the value is only used by interpolation near threshold).
        """
        t = artefact["table"]
        peak = torch.tensor([[float("nan") if x is None else x for x in row] for row in t["v_mem_peak_V"]])
        end = torch.tensor([[float("nan") if x is None else x for x in row] for row in t["v_mem_end_V"]])
        fired = torch.tensor([[0.0 if x is None else x for x in row] for row in t["spike"]]) > 0.5
        end = torch.where(fired, peak, end)
        if torch.isnan(peak).any() or torch.isnan(end).any():
            from neurospice.circuits.errors import ArtefactError
            raise ArtefactError("artefact tables have missing points (failed sweep points); "
                                "re-run the characterization")
        return cls(t["v_mem0_V"], t["c_active_fF"], peak, end,
                   artefact["summary"]["v_threshold_V"], **kw)

    def forward(self, c: torch.Tensor, v: torch.Tensor | None = None):
        """One step: drive ``c`` [N, ...], state ``v`` → (spikes, new state)."""
        if v is None:
            v = torch.zeros_like(c)
        peak = interp2d(self.peak_grid, self.v_axis, self.c_axis, v, c)
        z = triangle_spike(peak - self.threshold, self.gamma, self.width)
        v_next = (1 - z) * interp2d(self.end_grid, self.v_axis, self.c_axis, v, c)
        return z, v_next

    def run(self, c_seq: torch.Tensor):
        """Drive ``[T, N, ...]`` → spikes ``[T, N, ...]`` (state starts at 0)."""
        v, out = None, []
        for c in c_seq:
            z, v = self(c, v)
            out.append(z)
        return torch.stack(out)


class LIF(nn.Module):
    """Plain discrete-time LIF with reset to zero: the baseline with TableNeuron's interface."""

    def __init__(self, beta: float = 0.9, threshold: float = 1.0, gamma: float = 0.3,
                 width: float | None = None):
        super().__init__()
        self.beta, self.threshold, self.gamma = float(beta), float(threshold), float(gamma)
        self.width = float(width) if width else abs(self.threshold)

    def forward(self, c: torch.Tensor, v: torch.Tensor | None = None):
        if v is None:
            v = torch.zeros_like(c)
        v = self.beta * v + c
        z = triangle_spike(v - self.threshold, self.gamma, self.width)
        return z, (1 - z) * v

    run = TableNeuron.run
