"""Run an exported NIR graph in another simulator and compare it with neurospice's own model.

Consumers (installed apart, ``pip install --no-deps``; pinned in ``scripts/setup.sh``):

* ``snntorch`` — snnTorch 1.0 ``import_from_nir``: a ``torch.fx`` module of stateful
  ``Leaky`` neurons (hidden state reset per sample), called once per time step;
* ``norse`` — Norse 1.1 ``from_nir`` (``dt`` = the graph's ``dt_s``): a ``GraphExecutor`` called
  as ``(x_t, state) → (out_t, state)``.

:func:`check_in_consumer` exports the checkpoint in the consumer's time convention, runs the
family's test inputs (:meth:`~neurospice.registry.Family.nir_reference`) through the imported
network and counts agreement with the reference output spikes: the class by
:func:`~neurospice.training.neurons.decide` on each class's spikes (its ``outputs_per_class``
output neurons summed, where the family's reference names that), the output spike counts per
sample, and every
(step, sample, neuron) cell.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from neurospice.circuits.errors import NeurospiceError

CONSUMERS = ("snntorch", "norse")


def run_in_consumer(graph, consumer: str, inputs: torch.Tensor, dt_s: float) -> torch.Tensor:
    """Output spikes ``[T, N, n_out]`` of ``graph`` run in ``consumer`` on ``inputs [T, N, n_in]``."""
    with torch.no_grad():
        if consumer == "snntorch":
            import snntorch.utils
            from snntorch.import_nir import import_from_nir
            net = import_from_nir(graph)
            snntorch.utils.reset(net)
            outs = []
            for x_t in inputs:
                o = net(x_t)
                outs.append(o[0] if isinstance(o, tuple) else o)
            return torch.stack(outs)
        if consumer == "norse":
            import norse.torch as norse
            net = norse.from_nir(graph, dt=dt_s)
            state, outs = None, []
            for x_t in inputs:
                o, state = net(x_t, state)
                outs.append(o)
            return torch.stack(outs)
    raise NeurospiceError(f"unknown NIR consumer {consumer!r}; choose from {CONSUMERS}")


def agreement(out: torch.Tensor, ref: torch.Tensor, outputs_per_class: int = 1) -> dict:
    """Same class (``decide`` on each class's spikes: its ``outputs_per_class`` consecutive
    output neurons summed), same output spike counts, same cells, between two ``[T, N, n]``."""
    from .neurons import class_votes, decide
    out, ref = out.float(), ref.float()
    same = decide(class_votes(out, outputs_per_class)) == decide(class_votes(ref, outputs_per_class))
    return {"same_class": float(same.float().mean()),
            "same_counts": float((out.sum(0) == ref.sum(0)).all(1).float().mean()),
            "cells_equal": float((out == ref).float().mean()), "samples": int(ref.shape[1])}


def check_in_consumer(checkpoint, consumer: str, convention: str | None = None,
                      samples: int | None = None) -> dict:
    """Export ``checkpoint`` in ``convention`` (default: the consumer's own), run it in
    ``consumer`` on the family's test inputs and compare with every reference the family
    gives (``model``; for circuit-table networks also ``linearized``)."""
    import nir

    from .checkpoint import checkpoint_family
    from .nir_export import export_nir
    if consumer not in CONSUMERS:
        raise NeurospiceError(f"unknown NIR consumer {consumer!r}; choose from {CONSUMERS}")
    from neurospice import validate
    validate.whole("samples", samples, lo=1, optional=True)
    family, ck = checkpoint_family(checkpoint)
    ref = family.nir_reference(ck, samples)
    with tempfile.TemporaryDirectory() as tmp:
        r = export_nir(checkpoint, Path(tmp) / "net.nir", convention=convention or consumer)
        graph = nir.read(r["nir"])
    try:
        out = run_in_consumer(graph, consumer, ref["inputs"], r["dt_s"])
    except Exception as exc:   # the consumer refuses the graph: that is the finding
        return {"consumer": consumer, "convention": r["convention"], "runs": False,
                "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return {"consumer": consumer, "convention": r["convention"], "runs": True,
            **{name: agreement(out, spikes, ref.get("outputs_per_class", 1))
               for name, spikes in ref["outputs"].items()}}
