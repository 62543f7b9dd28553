"""``neurospice verify`` for SFQ checkpoints: sampled hidden neurons of the trained network,
programmed to their trained thresholds by on-chip control pulses, re-simulated in ngspice on
the input pulse trains they saw, output pulses per time step compared with the model."""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..characterize import sfq_benches as S
from ..circuits.errors import NeurospiceError
from .datasets import encode, load_dataset
from .sfq_train import load_sfq_checkpoint, model_from_sfq_checkpoint
from .verify_common import check_counts, map_jobs, sample_neurons, tally

#: spacing of the 16 input lines' pulses within one time step (the merger tree resolves
#: pulses ≥ 1/max_input_rate ≈ 17 ps apart)
LINE_SPACING_S = 25e-12
#: guard after the last line's pulse of a step: longer than the spread of ripple latencies
STEP_GUARD_S = 150e-12


def simulate_neuron(trains: np.ndarray, threshold: int) -> list[int]:
    """ngspice: the programmed neuron fed ``trains [steps, 16]`` (0/1 pulses per line and
    step) → output pulses per step (spikes attributed to the step whose inputs caused them)."""
    steps = trains.shape[0]
    slot = S.NEURON_INPUTS * LINE_SPACING_S + STEP_GUARD_S
    t_flush = S.SETTLE_S + 2 * S.EDGE_GAP_S
    t0 = t_flush + slot
    per_line = {k: [t0 + s * slot + k * LINE_SPACING_S for s in range(steps) if trains[s, k]]
                for k in range(trains.shape[1])}
    bench = S.programmed_neuron_bench(f"verify_T{threshold}", int(round(math.log2(threshold))),
                                      per_line, t_flush, t0 + steps * slot + 300e-12)
    run = S.require_settled(bench, S.run_bench(bench))
    spikes = run.pulses["O_J1"]
    if not spikes:
        raise NeurospiceError("the neuron did not fire on the flush: the circuit is not working")
    latency = spikes[0] - t_flush                    # the flush ripples through every stage
    counts = [0] * steps
    for t in spikes[1:]:
        step = int(math.floor((t - latency - t0 + STEP_GUARD_S) / slot))
        if 0 <= step < steps:
            counts[step] += 1
    return counts


def verify_sfq_checkpoint(checkpoint, samples: int = 4, neurons: int = 3, workers: int = 2,
                          seed: int = 30_000, progress: bool = True) -> dict:
    t0 = time.time()
    check_counts(samples, neurons, workers)
    ck = load_sfq_checkpoint(checkpoint)
    model, cfg = model_from_sfq_checkpoint(ck)
    model.eval()
    ds = load_dataset(cfg.dataset, seed=cfg.seed)
    n = min(samples, len(ds.y_test))
    x = encode(torch.as_tensor(ds.x_test[:n]), cfg.steps, "regular", max_rate=cfg.max_rate)
    with torch.no_grad():
        out = model(x)
        wires = model.wire1.wires().numpy()                  # [16, hidden]
        thresholds = model.soma1.threshold().round().int().numpy()
    hidden = out["hidden"].round().int().numpy()             # [T, n, H]
    jobs = sample_neurons(n, model.sizes[1], neurons, seed)
    x_np = x.numpy().astype(int)

    def one(job):
        i, j = job
        return simulate_neuron(x_np[:, i, wires[:, j]], int(thresholds[j]))

    rows = [{"sample": i, "neuron": j, "threshold": int(thresholds[j]), "circuit": circuit,
             "model": hidden[:, i, j].tolist()}
            for (i, j), circuit in zip(jobs, map_jobs(one, jobs, workers, progress, "verify sfq"))]
    t = tally((r["circuit"], r["model"]) for r in rows)
    return {"spike_agreement": t["spike_agreement"], "trains_identical": t["trains_identical"],
            "neuron_samples": len(jobs), "samples": n, "steps": cfg.steps,
            "output_pulses_model": int(sum(sum(r["model"]) for r in rows)),
            "output_pulses_circuit": int(sum(sum(r["circuit"]) for r in rows)),
            "rows": rows, "wall_s": round(time.time() - t0, 1)}
