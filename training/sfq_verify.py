"""``neurospice verify`` for SFQ checkpoints: sampled hidden neurons of the trained network,
programmed to their trained thresholds by on-chip control pulses, re-simulated in ngspice on
the excitatory and inhibitory pulse trains they saw, output pulses per time step compared with
the model."""
from __future__ import annotations

import time

import numpy as np
import torch

from ..characterize import sfq_benches as S
from .datasets import encode, load_dataset
from .sfq_train import load_sfq_checkpoint, model_from_sfq_checkpoint
from .verify_common import check_counts, map_jobs, sample_neurons, tally


def simulate_neuron(trains: np.ndarray, threshold: int, inhibitory: np.ndarray | None = None) -> tuple[list[int], bool]:
    """ngspice: the programmed neuron fed ``trains [steps, lines]`` excitatory and
    ``inhibitory [steps, lines]`` 0/1 pulses per line and step (the order and spacing of
    :func:`~neurospice.characterize.sfq_benches.stepped_neuron_bench`) → ``(output pulses per
    step, whether the sub-gap deck had to be re-run with the full junction model)``."""
    stepped = S.stepped_neuron_bench(f"verify_T{threshold}", threshold, trains, inhibitory)
    run = S.require_settled(stepped.bench, S.run_bench(stepped.bench))
    return S.spikes_per_step(stepped, run), run.full_quasiparticle_model


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
        wires = model.wire1.wires().numpy()                  # [fan-in, hidden]
        inh_wires = model.wire1.inhibitory_wires().numpy()   # [inhibitory fan-in, hidden]
        thresholds = model.soma1.threshold().round().int().numpy()
    hidden = out["hidden"].round().int().numpy()             # [T, n, H]
    jobs = sample_neurons(n, model.sizes[1], neurons, seed)
    x_np = x.numpy().astype(int)

    def one(job):
        i, j = job
        return simulate_neuron(x_np[:, i, wires[:, j]], int(thresholds[j]),
                               x_np[:, i, inh_wires[:, j]] if inh_wires.size else None)

    rows = [{"sample": i, "neuron": j, "threshold": int(thresholds[j]), "circuit": circuit,
             "full_junction_model": full,
             "model": hidden[:, i, j].tolist(),
             "inhibitory_pulses": int(x_np[:, i, inh_wires[:, j]].sum()) if inh_wires.size else 0}
            for (i, j), (circuit, full) in zip(jobs, map_jobs(one, jobs, workers, progress, "verify sfq"))]
    t = tally((r["circuit"], r["model"]) for r in rows)
    return {"spike_agreement": t["spike_agreement"], "trains_identical": t["trains_identical"],
            "neuron_samples": len(jobs), "samples": n, "steps": cfg.steps,
            "output_pulses_model": int(sum(sum(r["model"]) for r in rows)),
            "inhibitory_pulses": int(sum(r["inhibitory_pulses"] for r in rows)),
            "neuron_samples_with_inhibition": sum(1 for r in rows if r["inhibitory_pulses"]),
            "output_pulses_circuit": int(sum(sum(r["circuit"]) for r in rows)),
            # neuron-samples whose sub-gap deck was re-run with the full junction model
            "neuron_samples_full_junction_model": sum(1 for r in rows if r["full_junction_model"]),
            "rows": rows, "wall_s": round(time.time() - t0, 1)}
