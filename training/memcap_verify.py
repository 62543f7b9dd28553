"""Circuit-in-the-loop check: re-simulate a trained network's neurons in ngspice.

For each of ``samples`` test images the input is encoded once; the PyTorch model gives every
layer's spikes. Then in ngspice, with the checkpoint's mapped (quantized) capacitance pairs:

* the **whole output layer** is simulated, driven by the model's hidden-layer spikes; its
  spikes give ``accuracy_circuit`` by the model's decision rule (``neurons.decide``);
* optionally ``hidden_neurons`` randomly chosen hidden neurons per sample, driven by the
  input spikes;
* or, :func:`verify_whole_network`, every neuron of every layer, each layer driven by the
  previous layer's *circuit* spikes: the circuit's own accuracy and per-layer agreement.

Spike agreement = fraction of (neuron, time step) cells where model and ngspice agree on
"spike / no spike". Per side, rows with the same spike train and capacitance are one row of
that multiplicity (exact: identical circuits in parallel), which keeps decks small; rows that
never spike in a sample only load the membranes and are lumped into one row per side at
their mean capacitance. Memcapacitors are simulated as
their read-regime equivalent capacitors by default (``device_model="read"``; pass
``"biolek"`` for the full state model, much slower). Results are cached per sample under
``out`` (an interrupted run resumes).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
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
    """The circuit of one neuron for one sample, small: on each side, input rows with the same
    spike train and the same capacitance are identical circuits in parallel, simulated as one
    row of that multiplicity (exact: R/m, C·m, transistors m=…; the two sides share only the
    ideal input sources); rows that never spike only load the membranes and are lumped into
    one row per side at their mean capacitance (the approximation ``IDEALIZED`` names).
    Returns ``(spikes [T, rows], C+ [rows], C− [rows], multiplicity+ [rows], multiplicity− [rows])``."""
    trains = np.asarray(spikes_in).T                                   # [n_in, T]
    active = trains.any(1)
    sp, caps_p, caps_n, mult_p, mult_n = [], [], [], [], []
    for side, caps in ((0, np.asarray(cp, float)), (1, np.asarray(cn, float))):
        keys, counts = np.unique(np.column_stack([trains[active], caps[active]]), axis=0, return_counts=True)
        groups = [(key[:-1].astype(int), float(key[-1]), int(k)) for key, k in zip(keys, counts)]
        if (~active).any():
            groups.append((np.zeros(trains.shape[1], int), float(caps[~active].mean()), int((~active).sum())))
        for train, c, k in groups:
            sp.append(train)
            caps_p.append(c)
            caps_n.append(c)
            mult_p.append(k if side == 0 else 0)
            mult_n.append(k if side == 1 else 0)
    return np.array(sp).T, caps_p, caps_n, mult_p, mult_n


#: how verify integrates its decks (spike level: memcap.SPIKE_TRAN)
VERIFY_TRAN = mc.SPIKE_TRAN


def _deck(tag, tech, design, job, read_equivalent, tran=None):
    """``(point, deck)``: one neuron's rows ``job`` (:func:`_neuron_rows`) as an ngspice deck."""
    sp, a, c, m_p, m_n = job
    pt = mc.diff_neuron_point(tag, tech, design, sp, a, c, m_p, read_equivalent=read_equivalent,
                              multiplicity_neg=m_n, spikes_only=True)
    return pt, mc.assemble(tech, [pt], title=f"neurospice verify {tag}", tran=tran or VERIFY_TRAN)


def _simulate(tag, tech, design, jobs, read_equivalent, tran=None):
    """Each job (one neuron's rows) in its own ngspice run — a deck's analysis time grows
    faster than its size (README) — integrated at ``tran`` (default :data:`VERIFY_TRAN`):
    the neurons' spike trains, in job order."""
    trains = []
    for k, job in enumerate(jobs):
        pt, deck = _deck(f"{tag}n{k}", tech, design, job, read_equivalent, tran)
        res = run_netlist(deck, circuit=f"verify {tag} neuron {k}", timeout_s=1800)
        trains.append(mc.diff_spikes(res.plot, pt, design))
    return trains


#: how :func:`_neuron_rows` groups rows and :func:`_simulate` splits them into decks (part of
#: what a cached result answers, besides the deck text itself, :func:`_deck_settings`)
JOBS_LAYOUT = "grouped-rows/one-neuron-per-deck"


def _deck_settings(tech, design, read_equivalent) -> str:
    """A digest of the deck ``_deck`` writes for a fixed two-row, two-step neuron: any change
    to how verify decks are written (devices, model cards, analysis, saved vectors) changes it,
    and with it the verify cache key."""
    probe = (np.array([[1, 0], [0, 1]]), [20e-15, 5e-15], [5e-15, 20e-15], [1, 1], [1, 1])
    deck = _deck("probe", tech, design, probe, read_equivalent)[1]
    # the deck names the model library by path; its contents are in the technology's fingerprint
    return hashlib.sha256(f"{JOBS_LAYOUT}\n{tech.fingerprint}\n{deck}".encode()).hexdigest()


@dataclass
class _Recorded:
    """A checkpoint's network on its first test samples: what both verifies start from."""

    model: object
    cfg: object
    design: object
    tech: object
    n: int
    y: np.ndarray
    caps_np: list            #: per layer (C+ [n_in, n_out], C− [n_in, n_out]) in F
    layers: list             #: per layer the model's spikes [T, n, size] (int)
    s_np: np.ndarray         #: input spikes [T, n, n_in] (int)
    cache: Path


def _record(checkpoint, samples: int, device_model: str, seed: int, out, kind: str) -> _Recorded:
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
    # how the decks are written is part of what a cached row answers
    settings = _deck_settings(tech, design, device_model == "read")
    key = hashlib.sha256((sha256_file(checkpoint) + device_model + str(seed) + settings + kind).encode()).hexdigest()[:16]
    cache = Path(out or Path(checkpoint).parent / "verify") / key
    cache.mkdir(parents=True, exist_ok=True)
    return _Recorded(model, cfg, design, tech, n, y, [(a.numpy() * 1e-15, b.numpy() * 1e-15) for a, b in caps],
                     [r.numpy().astype(int) for r in rec], s_in.numpy().astype(int), cache)


def _decided(trains: list, label: int) -> bool:
    """``trains [neuron][step]`` of an output layer read by ``decide``: the label's class?"""
    return int(decide(torch.as_tensor(np.array(trains).T[:, None, :])).item()) == label


def verify_checkpoint(checkpoint, samples: int = 100, hidden_neurons: int = 0, workers: int = 2,
                      out: str | Path | None = None, device_model: str = "read",
                      seed: int = 30_000, progress: bool = True) -> dict:
    t0 = time.time()
    check_counts(samples, hidden_neurons, workers)
    r0 = _record(checkpoint, samples, device_model, seed, out, "")
    model, cfg, design, tech, n, y, caps_np, cache = (r0.model, r0.cfg, r0.design, r0.tech, r0.n, r0.y,
                                                      r0.caps_np, r0.cache)
    hidden, outs, s_np = r0.layers[0], r0.layers[-1], r0.s_np
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
            jobs.append(_neuron_rows(hidden[:, b, :], cp[:, j], cn[:, j]))
        cp0, cn0 = caps_np[0]
        for j in pick[b]:
            jobs.append(_neuron_rows(s_np[:, b, :], cp0[:, j], cn0[:, j]))
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
    corr_c = sum(_decided(r["output_circuit"], r["label"]) for r in results)
    corr_m = sum(_decided(r["output_model"], r["label"]) for r in results)
    return {"spike_agreement": round(agree + hid_agree) / max(total + hid_total, 1),
            "spike_agreement_output": agree / max(total, 1),
            "spike_agreement_hidden": hid_agree / hid_total if hid_total else None,
            "accuracy_circuit": corr_c / n, "accuracy_model": corr_m / n, "samples": n,
            "neurons_per_sample": model.sizes[-1] + hidden_neurons, "steps": cfg.steps,
            "device_model": device_model, "technology": tech.name, "cache": str(cache),
            "checkpoint": str(checkpoint), "wall_s": time.time() - t0}


#: what a whole-network verify still idealizes (reported with its results)
IDEALIZED = ("input spikes from ideal voltage sources (no encoder or row-driver circuit)",
             "a neuron's idle input rows (no spike in the sample) lumped into one row per side at "
             "their mean capacitance",
             "the layers' supplies and bias lines ideal (no IR drop, no coupling between neurons)")


def verify_whole_network(checkpoint, samples: int = 100, workers: int = 2, out: str | Path | None = None,
                         device_model: str = "read", seed: int = 30_000, progress: bool = True) -> dict:
    """Every layer in ngspice: layer 1 driven by the encoded input spikes, each next layer by the
    previous layer's *circuit* spikes, so ``accuracy_circuit`` (the output layer read by
    ``decide``) is the circuit's own. Per layer: spike agreement with the model (the model's
    layer driven by the model's previous layer — how far the circuit has drifted by that layer).

    A layer is many independent circuits: every (sample, neuron) of it is one ngspice run (one
    neuron per deck: a deck's analysis time grows faster than its size), on ``workers``
    threads; a sample's layer is written under ``out`` once all its neurons are in, so a killed
    run resumes from the samples and layers it had finished."""
    t0 = time.time()
    check_counts(samples, 0, workers)
    rec = _record(checkpoint, samples, device_model, seed, out, "whole-network")
    read = device_model == "read"
    drive, circuit = rec.s_np, []                       # [T, n, n_in]
    for layer, (cp, cn) in enumerate(rec.caps_np):
        size = cp.shape[1]
        files = [rec.cache / f"layer{layer + 1}_sample{b}.json" for b in range(rec.n)]
        spikes = np.zeros((drive.shape[0], rec.n, size), int)
        todo = []
        for b, f in enumerate(files):
            if f.exists():
                spikes[:, b, :] = np.asarray(json.loads(f.read_text()), int).T
            else:
                todo += [(b, j) for j in range(size)]

        def one(job, drive=drive, cp=cp, cn=cn, layer=layer):
            b, j = job
            rows = _neuron_rows(drive[:, b, :], cp[:, j], cn[:, j])
            return _simulate(f"s{b}l{layer}n{j}", rec.tech, rec.design, [rows], read)[0]
        for (b, j), train in zip(todo, map_jobs(one, todo, workers, progress, f"verify layer {layer + 1}")):
            spikes[:, b, j] = train
            if j == size - 1:                            # the sample's layer is complete
                atomic_write_json(files[b], spikes[:, b, :].T.tolist())
        circuit.append(spikes)
        drive = spikes
    layers, agree, total = [], 0.0, 0
    for k, size in enumerate(rec.model.sizes[1:]):
        t = tally((circuit[k][:, b, j], rec.layers[k][:, b, j]) for b in range(rec.n) for j in range(size))
        layers.append({"layer": k + 1, "neurons": size, "spike_agreement": t["spike_agreement"],
                       "trains_identical": t["trains_identical"],
                       "driven_by": "input spikes" if k == 0 else f"layer {k}'s circuit spikes"})
        agree += t["spike_agreement"] * t["steps_compared"]
        total += t["steps_compared"]
    labels = rec.y.astype(int)
    return {"whole_network": True,
            "accuracy_circuit": sum(_decided(circuit[-1][:, b, :].T, labels[b]) for b in range(rec.n)) / rec.n,
            "accuracy_model": sum(_decided(rec.layers[-1][:, b, :].T, labels[b]) for b in range(rec.n)) / rec.n,
            "spike_agreement": agree / max(total, 1), "layers": layers, "samples": rec.n,
            "neurons_per_sample": sum(rec.model.sizes[1:]), "steps": rec.cfg.steps,
            "device_model": device_model, "technology": rec.tech.name,
            "idealized": list(IDEALIZED) + (["memcapacitors as their read-regime capacitors"] if read else []),
            "cache": str(rec.cache), "checkpoint": str(checkpoint), "wall_s": time.time() - t0}
