"""The verify skeleton every family shares: which neurons to re-simulate, the pool that runs
their circuits, and the tally of circuit against model.

A family's ``verify`` loads its checkpoint, rebuilds the model, records the network on test
samples, then: :func:`sample_neurons` picks the (sample, neuron) pairs, :func:`map_jobs` runs
one ngspice job per pair (or per sample) on ``workers`` threads or processes with a progress
bar, and :func:`tally` counts per-step agreement of the circuit's and the model's spike trains.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Callable, Iterable

import numpy as np
from tqdm.auto import tqdm


def check_counts(samples: int, neurons: int, workers: int) -> None:
    """The verify options every family shares (refused before anything is loaded or run)."""
    from neurospice import validate as v
    v.whole("samples", samples, lo=1)
    v.whole("hidden_neurons", neurons, lo=0)
    v.whole("workers", workers, lo=1)


def sample_neurons(samples: int, population: int, per_sample: int, seed: int) -> list[tuple[int, int]]:
    """``per_sample`` distinct neurons of ``population`` per sample, drawn reproducibly."""
    rng = np.random.default_rng(seed)
    return [(i, int(j)) for i in range(samples)
            for j in rng.choice(population, size=min(per_sample, population), replace=False)]


def map_jobs(fn: Callable, jobs: list, workers: int, progress: bool, desc: str,
             processes: bool = False) -> Iterable:
    """``fn(job)`` for every job, in order, on a thread pool (ngspice runs as its own process
    anyway) or, with ``processes``, a process pool (``fn`` and jobs picklable)."""
    pool_type = ProcessPoolExecutor if processes else ThreadPoolExecutor
    with pool_type(max(1, min(workers, len(jobs) or 1))) as pool:
        yield from tqdm(pool.map(fn, jobs), total=len(jobs), desc=desc, disable=not progress)


def tally(pairs: Iterable[tuple[list, list]]) -> dict:
    """Per-step agreement over ``(circuit, model)`` trains, steps along the first axis (a
    step may hold several values, e.g. every register: it agrees when all of them do):
    ``spike_agreement`` (steps equal / steps), ``trains_identical`` (whole trains equal)."""
    agree = total = identical = n = 0
    for circuit, model in pairs:
        c, m = np.asarray(circuit), np.asarray(model)
        same = (c == m).reshape(len(c), -1).all(axis=1) if c.shape == m.shape else np.zeros(len(c), bool)
        agree += int(same.sum())
        total += len(same)
        identical += int(np.array_equal(c, m))
        n += 1
    return {"spike_agreement": agree / max(total, 1), "trains_identical": identical / max(n, 1),
            "steps_compared": total}
