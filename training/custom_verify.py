"""Re-simulate a trained network of a user's neuron in ngspice, whole sample sequences.

For each of ``samples`` test samples the model runs once and records, per layer, the spikes
and the (clamped) current it fed every neuron at every step. Each re-simulated neuron is one
sweep point of the neuron's recipe: its subcircuit from the rest voltage, driven by that
neuron's own current sequence (step-wise constant, the synapses as one ideal source), every
point packed with others into one ngspice run by the sweep runner (cached: an interrupted
verify resumes; workers or a Dask cluster). Re-simulated: every output neuron of each sample
(their circuit spikes give ``accuracy_circuit`` by the model's decision rule,
:func:`~neurospice.training.neurons.decide`) and ``hidden_neurons`` hidden neurons per sample
drawn at random.

Spike agreement = fraction of (neuron, step) cells where model and circuit agree on "spike /
no spike". Disagreement here that the one-step tables do not show is state the table does not
hold (see the artefact's ``limits`` and ``state_check``).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from neurospice.characterize import custom as _custom_recipe  # noqa: F401  (registers the neuron recipe)
from neurospice.characterize.sweep import PointCache, Sweep, run_sweep

from .custom_train import circuit_twin, load_checkpoint, model_from_checkpoint
from .datasets import encode, load_dataset
from .neurons import decide
from .verify_common import check_counts, sample_neurons, tally


def verify_checkpoint(checkpoint, samples: int = 20, hidden_neurons: int = 8, workers: int = 1,
                      scheduler: str | None = None, cache_dir=None, seed: int = 30_000,
                      progress: bool = True) -> dict:
    """Returns ``spike_agreement`` (all re-simulated neurons), per layer, ``accuracy_circuit``,
    ``accuracy_model``, ``samples``, ... (see the module docstring)."""
    t0 = time.time()
    check_counts(samples, hidden_neurons, workers)
    ck = load_checkpoint(checkpoint)
    model, cfg, artefact = model_from_checkpoint(ck)
    if model.neuron_kind != "circuit":
        model = circuit_twin(model, artefact, cfg.levels)
    model.eval()
    ds = load_dataset(cfg.dataset, seed=cfg.seed)
    n = min(samples, len(ds.y_test))
    s_in = encode(torch.as_tensor(ds.x_test[:n]), cfg.steps, cfg.encoding, seed=seed, max_rate=cfg.max_rate)
    with torch.no_grad():     # one chip, drawn from ``seed`` (a re-run, resumed or not, is the same)
        _, rec, fed = model(s_in, model.currents(generator=torch.Generator().manual_seed(seed)),
                            record=True)
    spikes = [r.numpy().astype(int) for r in rec]           # per layer [T, n, width]
    currents_A = [f.numpy().astype(float) * 1e-6 for f in fed]
    out_layer = len(spikes) - 1
    picks = [(b, out_layer, j) for b in range(n) for j in range(spikes[-1].shape[2])]
    if out_layer > 0 and hidden_neurons:
        picks += [(b, 0, j) for b, j in sample_neurons(n, spikes[0].shape[2], hidden_neurons, seed)]
    rest = float(artefact["summary"]["rest_V"])
    points = [{"v_mem0_V": rest, "i_seq_A": [float(x) for x in currents_A[li][:, b, j]],
               "sample": b, "layer": li, "neuron": j} for b, li, j in picks]
    prov = artefact["provenance"]
    sweep = Sweep(recipe="custom_neuron", axes={}, technology=artefact["neuron"]["technology"],
                  corners=[prov["corner"]], temperatures_C=[prov["temperature_C"]],
                  options={"neuron": artefact["neuron"]}, point_list=points)
    res = run_sweep(sweep, workers=workers, scheduler=scheduler, progress=progress,
                    cache=PointCache(cache_dir) if cache_dir else None)
    failed = [r for r in res.results if r.status != "ok"]
    if failed:
        from neurospice.circuits.errors import SimulationError
        raise SimulationError(f"{len(failed)} neuron sequences failed to simulate, first: "
                              f"{failed[0].point['sample']}/{failed[0].point['layer']}/"
                              f"{failed[0].point['neuron']}: {failed[0].reason}")
    circuit = {(p["sample"], p["layer"], p["neuron"]): r.result["spike"]
               for p, r in zip(points, res.results)}
    layers = []
    for li in sorted({p[1] for p in picks}):
        keys = [k for k in circuit if k[1] == li]
        t = tally((circuit[k], spikes[li][:, k[0], k[2]].tolist()) for k in keys)
        layers.append({"layer": li, "role": "output" if li == out_layer else "hidden",
                       "neurons_simulated": len(keys), **t})
    everything = tally((circuit[k], spikes[k[1]][:, k[0], k[2]].tolist()) for k in circuit)
    n_out = spikes[-1].shape[2]
    circ_out = np.array([[circuit[(b, out_layer, j)] for j in range(n_out)] for b in range(n)])   # [n, out, T]
    pred_c = decide(torch.as_tensor(circ_out.transpose(2, 0, 1)))
    pred_m = decide(torch.as_tensor(spikes[-1]))
    y = torch.as_tensor(ds.y_test[:n])
    return {"spike_agreement": everything["spike_agreement"], "trains_identical": everything["trains_identical"],
            "layers": layers, "accuracy_circuit": float((pred_c == y).float().mean()),
            "accuracy_model": float((pred_m == y).float().mean()),
            "decisions_agreeing": float((pred_c == pred_m).float().mean()), "samples": n,
            "neurons_simulated": len(points), "steps": cfg.steps,
            "ngspice_points_cached": res.n_cached, "technology": res.technology["labels"],
            "idealized": "synapses: one ideal current source per neuron carrying the model's summed, "
                         "clamped current; neurons start at rest_V; hidden neurons driven by the "
                         "model's input spikes, output neurons by the model's hidden spikes",
            "checkpoint": str(checkpoint), "wall_s": time.time() - t0, **res.speed()}
