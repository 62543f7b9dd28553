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

from . import native
from .surrogate import triangle_spike


#: how the output layer's spikes name a class (:func:`decide`; metrics files quote it)
DECISION_RULE = "most output spikes; a tie goes to the neuron that spiked first; still tied: wrong"

#: output spike counts → logits for the training loss: ``counts · LOGIT_STEPS / steps`` (a
#: count difference of ``steps / 8`` spikes is one logit unit); a training choice
LOGIT_STEPS = 8.0


def class_votes(out_spikes: torch.Tensor, outputs_per_class: int = 1) -> torch.Tensor:
    """Output spikes ``[..., classes · P]`` → each class's spikes ``[..., classes]``: class ``k``
    holds output neurons ``k·P … k·P + P − 1`` (``P = outputs_per_class``), summed."""
    return out_spikes.unflatten(-1, (-1, outputs_per_class)).sum(-1)


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


#: axes up to this many points find their cell by counting (vectorized float arithmetic; on
#: CPU at 11–15 points 2× (two threads) to 5× (one) faster than ``searchsorted``); longer
#: axes use ``searchsorted``
_COUNT_CELL_MAX_POINTS = 32


def _cell_index(axis: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Lower index ``i`` (int32) of the cell ``axis[i] <= x <= axis[i + 1]`` of ``x`` (already
    clamped to the axis): ``n − 2`` minus the number of interior points above ``x``, i.e.
    exactly ``searchsorted(axis, x, right=True).clamp(1, n - 1) - 1`` (at the last point: the
    last cell; a NaN: the last cell, where ``searchsorted`` sorts it). ``a − x > 0`` is
    ``a > x`` exactly: a difference of two floats rounds to zero only when they are equal
    (gradual underflow; not under ``torch.set_flush_denormal(True)`` with axis points below
    ~1e-38)."""
    interior = axis[1:-1]
    if axis.shape[0] > _COUNT_CELL_MAX_POINTS:
        return torch.searchsorted(interior.contiguous(), x.contiguous(), right=True, out_int32=True)
    above = torch.sub(interior.view(-1, *([1] * x.dim())), x).gt_(0).sum(0)
    return (interior.shape[0] - above).to(torch.int32)


def _gather2(a: torch.Tensor, b: torch.Tensor, i: torch.Tensor):
    """``(a[i], b[i])`` in one gather."""
    return torch.stack((a, b)).index_select(1, i.reshape(-1)).view(2, *i.shape).unbind(0)


def _locate(axis: torch.Tensor, x: torch.Tensor, need_grad: bool):
    """``x`` clamped to ``axis``: (its cell index ``i``, fraction ``t`` within the cell, and with
    ``need_grad`` ``dt/dx``: 1/cell width, 0 where ``x`` was clamped — what autograd through
    ``clamp`` gives, bounds included). Same operations, same rounding as the original."""
    xc = torch.minimum(torch.maximum(x, axis[0]), axis[-1])     # = x.clamp(lo, hi), bit for bit
    i = _cell_index(axis, xc)
    x0, span = _gather2(axis[:-1], axis.diff(), i)    # axis[i], axis[i + 1] − axis[i]: same rounding
    t = (xc - x0) / span
    dt_dx = torch.sub(xc, x).eq_(0).div_(span) if need_grad else None
    return i, t, dt_dx


class _FusedBilinear(torch.autograd.Function):
    """Bilinear lookup of ``K`` grids ``[K, nv, nc]`` sharing the axes at the same points.

    Forward: clamp, one cell search per axis, fractions, the four corners of every grid in one
    gather; ``g00·(1−tv)·(1−tc) + g01·(1−tv)·tc + g10·tv·(1−tc) + g11·tv·tc`` in that order
    (bit-for-bit :func:`interp2d_reference`). Saved for backward: each grid's slopes
    ``∂/∂v, ∂/∂c`` at the points (corner differences and fractions, over the cell widths),
    zero where a coordinate was clamped, as autograd through ``clamp`` gives (inclusive
    bounds: a point exactly on an edge keeps its gradient). No gradient to grids or axes
    (buffers; :func:`interp2d_many` takes the autograd path when they require one).
    """

    @staticmethod
    def forward(ctx, v, c, v_axis, c_axis, grids):
        K, nv, nc = grids.shape
        need_v, need_c = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        ctx.native = not torch.compiler.is_compiling() and native.bilinear_usable(v, c, v_axis, c_axis, grids)
        if ctx.native:                  # the same operations, compiled (training/native.py)
            out, dv, dc = native.bilinear(v, c, v_axis, c_axis, grids, need_v or need_c)
            if need_v or need_c:
                ctx.save_for_backward(dv, dc)
            return out
        iv, tv, dtv = _locate(v_axis, v, need_v)
        ic, tc, dtc = _locate(c_axis, c, need_c)
        sv, sc = 1 - tv, 1 - tc
        # per cell its four corners, [K·4, (nv − 1)·(nc − 1)]: one gather for all grids
        corners = torch.stack((grids[:, :-1, :-1], grids[:, :-1, 1:],
                               grids[:, 1:, :-1], grids[:, 1:, 1:]), 1).reshape(K * 4, -1)
        cell = torch.add(ic, iv, alpha=nc - 1).reshape(-1)
        g00, g01, g10, g11 = corners.index_select(1, cell).view(K, 4, *v.shape).unbind(1)
        out = g00 * sv * sc + g01 * sv * tc + g10 * tv * sc + g11 * tv * tc
        if need_v or need_c:
            # ∂out/∂v = ((g10 − g00)(1 − tc) + (g11 − g01)·tc)·∂tv/∂v, and alike for c
            ctx.save_for_backward(((g10 - g00) * sc + (g11 - g01) * tc) * dtv if need_v else None,
                                  ((g01 - g00) * sv + (g11 - g10) * tv) * dtc if need_c else None)
        return out

    @staticmethod
    def backward(ctx, grad):
        dout_dv, dout_dc = ctx.saved_tensors
        if ctx.native:
            gv, gc = native.bilinear_backward(grad, dout_dv, dout_dc, *ctx.needs_input_grad[:2])
            return gv, gc, None, None, None
        gv = (grad * dout_dv).sum(0) if dout_dv is not None else None
        gc = (grad * dout_dc).sum(0) if dout_dc is not None else None
        return gv, gc, None, None, None


def interp2d_reference(grid: torch.Tensor, v_axis: torch.Tensor, c_axis: torch.Tensor,
                       v: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """:func:`interp2d` through autograd, one grid at a time (the unfused original): the
    path taken when a grid or an axis requires a gradient, and the reference of the tests
    and of ``benchmarks/neuron_step.py``."""
    out_dtype = torch.promote_types(v.dtype, c.dtype)
    if out_dtype != grid.dtype:
        return interp2d_reference(grid, v_axis, c_axis, v.to(grid.dtype), c.to(grid.dtype)).to(out_dtype)
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


def interp2d_many(grids, v_axis: torch.Tensor, c_axis: torch.Tensor,
                  v: torch.Tensor, c: torch.Tensor) -> list[torch.Tensor]:
    """:func:`interp2d` of several grids on the same axes at the same points, in one pass:
    ``grids`` is a sequence of ``[len(v_axis), len(c_axis)]`` grids (or one ``[K, nv, nc]``
    tensor); returns one tensor per grid, each bit-for-bit what :func:`interp2d` gives."""
    stacked = grids if isinstance(grids, torch.Tensor) else torch.stack(tuple(grids))
    out_dtype = torch.promote_types(v.dtype, c.dtype)
    if out_dtype != stacked.dtype:
        low = interp2d_many(stacked, v_axis, c_axis, v.to(stacked.dtype), c.to(stacked.dtype))
        return [x.to(out_dtype) for x in low]
    v, c = v.to(stacked.dtype), c.to(stacked.dtype)     # (a float32 c with float64 v and grids)
    if not torch.is_grad_enabled():          # no slopes to keep for a backward pass
        v, c = v.detach(), c.detach()
    elif stacked.requires_grad or v_axis.requires_grad or c_axis.requires_grad:
        return [interp2d_reference(g, v_axis, c_axis, v, c) for g in stacked.unbind(0)]
    if v.shape != c.shape:
        v, c = torch.broadcast_tensors(v, c)
    return list(_FusedBilinear.apply(v, c, v_axis, c_axis, stacked).unbind(0))


def interp2d(grid: torch.Tensor, v_axis: torch.Tensor, c_axis: torch.Tensor,
             v: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation of ``grid[len(v_axis), len(c_axis)]`` at (v, c), clamped to the axes.

    Lower-precision inputs (bfloat16, float16) are looked up in the grid's precision and the
    result is returned in the input's dtype (bfloat16 cannot resolve the axes' spacing).
    Gradients flow to ``v`` and ``c`` (zero for a coordinate clamped at an axis edge); see
    :func:`interp2d_many` for several grids at once.
    """
    return interp2d_many(grid.unsqueeze(0), v_axis, c_axis, v, c)[0]


class _FusedLinear(torch.autograd.Function):
    """1-D linear interpolation of ``table`` on ``axis`` at ``x``, clamped (see
    :func:`interp1d`); saves the slope for backward, zero where ``x`` was clamped."""

    @staticmethod
    def forward(ctx, x, axis, table):
        i, t, dt = _locate(axis, x, ctx.needs_input_grad[0])
        y0, y1 = _gather2(table[:-1], table[1:], i)
        if dt is not None:
            ctx.save_for_backward((y1 - y0) * dt)
        return y0 * (1 - t) + y1 * t

    @staticmethod
    def backward(ctx, grad):
        (slope,) = ctx.saved_tensors
        return grad * slope, None, None


def interp1d(table: torch.Tensor, axis: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``table[len(axis)]`` at ``x``, clamped to the axis:
    ``table[i]·(1 − t) + table[i + 1]·t``, computed in the table's dtype and returned in ``x``'s;
    the gradient to ``x`` is zero where it was clamped (a table or axis that requires a
    gradient takes the autograd path)."""
    if x.dtype != table.dtype:
        return interp1d(table, axis, x.to(table.dtype)).to(x.dtype)
    if not torch.is_grad_enabled():
        x = x.detach()
    elif table.requires_grad or axis.requires_grad:       # through autograd, as the original
        xc = x.clamp(axis[0], axis[-1])
        i = torch.searchsorted(axis, xc.detach().contiguous(), right=True).clamp(1, len(axis) - 1)
        t = (xc - axis[i - 1]) / (axis[i] - axis[i - 1])
        return table[i - 1] * (1 - t) + table[i] * t
    return _FusedLinear.apply(x, axis, table)


class TableNeuron(native.CompiledStep):
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

    NATIVE_TABLES = ("v_axis", "c_axis", "peak_grid", "end_grid")

    def native_fits(self, t):
        return native.grids_fit(t["v_axis"], t["c_axis"], t["peak_grid"], t["end_grid"])

    def native_args(self, t):
        """``ns_table_step``'s table arguments (training/neuron_kernels.c)."""
        p = native.data_ptr
        return (p(t["v_axis"]), t["v_axis"].numel(), p(t["c_axis"]), t["c_axis"].numel(),
                p(t["peak_grid"]), p(t["end_grid"]))

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
        compiled = self.compiled_tables()
        if compiled and native.points_usable(c, v):     # the same step, compiled
            return native.TableStep.apply(v, c, compiled, self.threshold, (self.gamma, self.width))
        peak, end = interp2d_many((self.peak_grid, self.end_grid), self.v_axis, self.c_axis, v, c)
        z = triangle_spike(peak - self.threshold, self.gamma, self.width)
        return z, (1 - z) * end

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
