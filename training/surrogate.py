"""Surrogate gradients, one module for every family's neurons.

* :func:`triangle_spike` — Heaviside ``H(x)`` forward; backward ``height·max(0, 1 − |x|/half_width)``
  (x: membrane minus threshold, in the neuron's own unit). Memcap and LIF neurons pass their
  height and half-width (V); qCLIF passes ``height = γ/θ``, ``half_width = θ`` in LSB.
* :func:`straight_through` — the value of ``exact``, the gradient of ``smooth`` (qCLIF's
  integer registers, SFQ's ``floor`` counts and power-of-two thresholds).
"""
from __future__ import annotations

import torch


class _TriangleSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, height: float, half_width: float):
        ctx.save_for_backward(x)
        ctx.height, ctx.half_width = height, half_width
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.height * torch.clamp(1 - x.abs() / ctx.half_width, min=0), None, None


def triangle_spike(x: torch.Tensor, height: float, half_width: float) -> torch.Tensor:
    """``H(x)`` with the triangle surrogate of ``height`` and ``half_width`` (see module)."""
    return _TriangleSpike.apply(x, height, half_width)


def straight_through(smooth: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """Value of ``exact``, gradient of ``smooth``."""
    return smooth + (exact - smooth).detach()
