"""Accuracy under device variation, shared by every family's comparison run.

One draw = one chip: the family's variation (capacitance spread, critical-current or delay
error per neuron, ...) drawn once and held for the whole test set. :func:`spread_curve`
averages accuracy over ``draws`` chips per spread level; :func:`fault_robustness` does that
for families whose variation makes neurons fail (installed as forward hooks), with and
without variation-aware fine-tuning, and :func:`paired_gain` compares the two chip by chip.
"""
from __future__ import annotations

import numpy as np
import torch

#: variation-aware fine-tuning: learning rate relative to the family's training rate
FINE_TUNE_LR = 0.3


def spread_curve(evaluate_at, spreads, draws: int) -> list[dict]:
    """``evaluate_at(σ, draw) → accuracy``; mean and std over draws (one draw at σ = 0)."""
    rows = []
    for s in spreads:
        acc = [evaluate_at(s, d) for d in range(1 if s == 0 else draws)]
        rows.append({"spread": s, "accuracy_mean": float(np.mean(acc)),
                     "accuracy_std": float(np.std(acc)), "draws": len(acc),
                     "accuracies": [float(a) for a in acc]})
    return rows


def paired_gain(plain: list[dict], aware: list[dict]) -> dict | None:
    """Variation-aware minus plain accuracy at the largest spread, chip by chip (both curves
    drew the same chips): mean, its standard error, and on how many chips aware was better."""
    a, b = plain[-1], aware[-1]
    if a["spread"] != b["spread"] or a["draws"] < 2 or a["draws"] != b["draws"]:
        return None
    d = np.asarray(b["accuracies"]) - np.asarray(a["accuracies"])
    return {"spread": a["spread"], "gain_mean": float(d.mean()),
            "gain_se": float(d.std(ddof=1) / np.sqrt(len(d))),
            "chips_better": int((d > 0).sum()), "chips_worse": int((d < 0).sum()), "draws": len(d)}


def failure_masks(n: int, spread: float, fails, generator: np.random.Generator):
    """Per neuron ``ε ~ N(0, spread)`` → ``fails(ε)``: ``(low, high)`` boolean masks."""
    eps = generator.normal(0.0, spread, n) if spread > 0 else np.zeros(n)
    return fails(eps)


def fault_robustness(c, model, install, accuracy, seed_base: int, fine_tune) -> dict:
    """Accuracy against spread of ``model`` with faults ``install(net, spread, rng)`` (one chip
    per draw, the same chips for every network); with a positive largest spread, also of the
    network ``fine_tune(fault)`` returns (fine-tuned with a new chip every batch)."""
    def curve(net):
        def at(spread, d):
            hooks = install(net, spread, np.random.default_rng(seed_base + 97 * d))
            try:
                return accuracy(net)
            finally:
                for h in hooks:
                    h.remove()
        return spread_curve(at, c.spreads, c.draws)
    out = {"robustness": curve(model)}
    s_max = max(c.spreads)
    if s_max > 0:
        g = np.random.default_rng(c.seed)
        tuned, path = fine_tune(lambda net: install(net, s_max, g))
        out.update(robustness_variation_aware=curve(tuned), variation_aware_checkpoint=path)
        out["variation_aware_gain"] = paired_gain(out["robustness"], out["robustness_variation_aware"])
    return out


def stuck_hook(silent: np.ndarray, free_running: np.ndarray):
    """Forward hook on a ``[T, N, neurons]`` output: silent neurons 0, free-running ones 1."""
    lo, hi = torch.as_tensor(silent), torch.as_tensor(free_running)

    def hook(module, inputs, output):
        out = output.clone()
        out[..., lo] = 0.0
        out[..., hi] = 1.0
        return out
    return hook
