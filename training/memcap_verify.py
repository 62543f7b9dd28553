"""Circuit-in-the-loop check: re-simulate a trained network's neurons in ngspice.

For each of ``samples`` test images the input is encoded once; the PyTorch model gives every
layer's spikes. Then in ngspice, with the checkpoint's mapped (quantized) capacitance pairs:

* the **whole output layer** is simulated, driven by the model's hidden-layer spikes; its
  spikes give ``accuracy_circuit`` by the model's decision rule (``neurons.decide``);
* optionally ``hidden_neurons`` randomly chosen hidden neurons per sample, driven by the
  input spikes.

Spike agreement = fraction of (neuron, time step) cells where model and ngspice agree on
"spike / no spike". Rows that never spike in a sample only load the membranes; they are
lumped into one group per side at their mean capacitance. Memcapacitors are simulated as
their read-regime equivalent capacitors by default (``device_model="read"``; pass
``"biolek"`` for the full state model, much slower). Results are cached per sample under
``out`` (an interrupted run resumes).
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from neurospice.circuits import memcap as mc
from neurospice.circuits.engine import run_netlist
from neurospice.circuits.technology import generic
from neurospice.files import atomic_write_json, sha256_file

from .datasets import encode, load_dataset
from .neurons import decide
from .verify_common import check_counts, map_jobs, tally
from .memcap_train import circuit_twin, load_checkpoint, model_from_checkpoint


def _neuron_rows(spikes_in: np.ndarray, cp: np.ndarray, cn: np.ndarray):
    """Rows of one neuron for one sample: active rows individually, idle rows lumped."""
    active = np.flatnonzero(spikes_in.any(0))
    idle = np.flatnonzero(~spikes_in.any(0))
    sp = [spikes_in[:, active]]
    caps_p, caps_n, mult = list(cp[active]), list(cn[active]), [1] * len(active)
    if len(idle):
        sp.append(np.zeros((spikes_in.shape[0], 1), int))
        caps_p.append(float(cp[idle].mean())); caps_n.append(float(cn[idle].mean()))
        mult.append(len(idle))
    return np.concatenate(sp, 1), caps_p, caps_n, mult


def _simulate(tag, tech, design, jobs, read_equivalent):
    pts = [mc.diff_neuron_point(f"{tag}n{k}", tech, design, *job, read_equivalent=read_equivalent)
           for k, job in enumerate(jobs)]
    res = run_netlist(mc.assemble(tech, pts, title=f"neurospice verify {tag}"), circuit=f"verify {tag}",
                      timeout_s=1800)
    return [mc.measure_diff(res.plot, p, design)["spikes"] for p in pts]


def verify_checkpoint(checkpoint, samples: int = 100, hidden_neurons: int = 0, workers: int = 2,
                      out: str | Path | None = None, device_model: str = "read",
                      seed: int = 30_000, progress: bool = True) -> dict:
    t0 = time.time()
    check_counts(samples, hidden_neurons, workers)
    ck = load_checkpoint(checkpoint)
    model, cfg, artefact = model_from_checkpoint(ck)
    model.eval()
    twin = circuit_twin(model, artefact) if model.neuron_kind != "circuit" else model
    design = mc.DiffNeuronDesign(**{k: v for k, v in artefact["provenance"]["design"].items()
                                    if k not in ("device", "fire_enabled")})
    tech = generic(artefact["provenance"]["corner"])
    ds = load_dataset(cfg.dataset, seed=cfg.seed)
    n = min(samples, len(ds.y_test))
    x, y = ds.x_test[:n], ds.y_test[:n]
    s_in = encode(torch.as_tensor(x), cfg.steps, cfg.encoding, seed=seed, max_rate=cfg.max_rate)
    with torch.no_grad():     # one chip, drawn from ``seed``: the samples cached under ``key``
        chip = torch.Generator().manual_seed(seed)       # and a resumed run's agree
        caps = twin.capacitances(generator=chip)
        counts, rec = twin(s_in, caps, record=True, offsets=twin.offset_errors(generator=chip))
    caps_np = [(a.numpy() * 1e-15, b.numpy() * 1e-15) for a, b in caps]
    hidden = rec[0].numpy().astype(int)   # [T, n, H]
    outs = rec[-1].numpy().astype(int)    # [T, n, O]
    s_np = s_in.numpy().astype(int)
    # the simulator settings are part of what a cached row answers
    settings = f"{mc.SIM_RELTOL}/{mc.TRAN_MAX_STEP_S}"
    key = hashlib.sha256((sha256_file(checkpoint) + device_model + str(seed) + settings).encode()).hexdigest()[:16]
    cache = Path(out or Path(checkpoint).parent / "verify") / key
    cache.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pick = [sorted(rng.choice(model.sizes[1], size=hidden_neurons, replace=False).tolist())
            for _ in range(n)] if hidden_neurons else [[] for _ in range(n)]

    def one(b):
        f = cache / f"sample_{b}.json"
        if f.exists():
            return json.loads(f.read_text())
        jobs = []
        cp, cn = caps_np[-1]
        for j in range(cp.shape[1]):
            sp, a, c, m = _neuron_rows(hidden[:, b, :], cp[:, j], cn[:, j])
            jobs.append((sp, a, c, m))
        cp0, cn0 = caps_np[0]
        for j in pick[b]:
            sp, a, c, m = _neuron_rows(s_np[:, b, :], cp0[:, j], cn0[:, j])
            jobs.append((sp, a, c, m))
        spikes = _simulate(f"s{b}", tech, design, jobs, device_model == "read")
        n_out = cp.shape[1]
        r = {"output_circuit": spikes[:n_out], "output_model": outs[:, b, :].T.tolist(),
             "hidden_index": pick[b], "hidden_circuit": spikes[n_out:],
             "hidden_model": [hidden[:, b, j].tolist() for j in pick[b]], "label": int(y[b])}
        atomic_write_json(f, r)
        return r

    results = list(map_jobs(one, list(range(n)), workers, progress, "verify"))
    # one train per neuron and sample ([neuron][step] lists), agreement per (neuron, step)
    out_t = tally((c, m) for r in results for c, m in zip(r["output_circuit"], r["output_model"]))
    hid_t = tally((c, m) for r in results for c, m in zip(r["hidden_circuit"], r["hidden_model"]))
    total, hid_total = out_t["steps_compared"], hid_t["steps_compared"]
    agree, hid_agree = out_t["spike_agreement"] * total, hid_t["spike_agreement"] * hid_total
    # [n_out, T] → [T, 1, n_out]: the model's decision rule on the circuit's output spikes
    corr_c = sum(int(decide(torch.as_tensor(np.array(r["output_circuit"]).T[:, None, :])).item() == r["label"])
                 for r in results)
    corr_m = sum(int(decide(torch.as_tensor(np.array(r["output_model"]).T[:, None, :])).item() == r["label"])
                 for r in results)
    return {"spike_agreement": round(agree + hid_agree) / max(total + hid_total, 1),
            "spike_agreement_output": agree / max(total, 1),
            "spike_agreement_hidden": hid_agree / hid_total if hid_total else None,
            "accuracy_circuit": corr_c / n, "accuracy_model": corr_m / n, "samples": n,
            "neurons_per_sample": model.sizes[-1] + hidden_neurons, "steps": cfg.steps,
            "device_model": device_model, "technology": tech.name, "cache": str(cache),
            "checkpoint": str(checkpoint), "wall_s": time.time() - t0}
