"""Train memcapacitive SNNs (ideal / naive / aware), evaluate, estimate energy; checkpoints.

Modes (the issue's definitions):

``ideal``  ideal (linearized) neuron trained and evaluated, analog weights;
``naive``  the ideal network, evaluated with the circuit neuron and the quantized device map;
``aware``  trained with the circuit neuron and the quantized device map in the loop.

Everything a run makes goes under ``out``: ``checkpoint.pt`` (best validation epoch),
``last.pt`` (resume point), ``metrics.json``, ``training.png``.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neurospice.characterize.artefact import load_artefact
from neurospice.circuits.errors import NeurospiceError

from neurospice.files import atomic_write_json, sha256_file

from .checkpoint import CheckpointError, load_initial_weights, read_checkpoint
from .config import MemcapTrainConfig
from .datasets import encode, load_dataset, shift_range, spike_batches, stratified_split
from .loop import TrainingRun, fit, plot_history
from .memcap_net import DeviceMap, MemcapSNN
from .neurons import DECISION_RULE, LOGIT_STEPS, decide

FAMILY = "memcap"      #: the family these checkpoints belong to (``lif`` trains as memcap ``ideal``)
MARGIN_WEIGHT_PER_V = 0.5  #: weight of the output margin (per volt) next to spike counts
VAL_CHIPS = 5  #: chips (programming-variation draws) the validation accuracy averages over


def build_model(cfg: MemcapTrainConfig, artefact: dict, n_in: int, n_out: int) -> MemcapSNN:
    neuron = "circuit" if cfg.mode == "aware" else "ideal"
    dm = DeviceMap.from_artefact(artefact, levels=cfg.levels, program_sigma=cfg.program_sigma)
    return MemcapSNN(artefact, [n_in, cfg.hidden, n_out], neuron=neuron, device_map=dm,
                     quantize=cfg.mode == "aware", seed=cfg.seed, offset_sigma_V=cfg.offset_sigma_V)


def circuit_twin(model: MemcapSNN, artefact: dict) -> MemcapSNN:
    """The same weights on circuit neurons with the quantized device map (evaluation)."""
    twin = MemcapSNN(artefact, model.sizes, neuron="circuit", device_map=model.device_map,
                     quantize=True, offset_sigma_V=model.offset_sigma_V)
    twin.load_state_dict(model.state_dict(), strict=False)
    return twin.to(next(model.parameters()).device)


@torch.no_grad()
def evaluate(model: MemcapSNN, x: np.ndarray, y: np.ndarray, cfg: MemcapTrainConfig, seed: int,
             energy: dict | None = None, batch: int = 500) -> dict:
    """Accuracy (the :func:`decide` rule: most spikes, a tie to the first spike; and, as
    ``accuracy_count_only``, spike counts alone with any tie wrong) and, with ``energy``,
    events and energy per inference."""
    dev = next(model.parameters()).device
    chip = torch.Generator().manual_seed(seed)      # one chip: its devices, then its comparators
    caps = model.capacitances(generator=chip)
    caps = [(a.to(dev), b.to(dev)) for a, b in caps]
    offsets = model.offset_errors(generator=chip)
    offsets = [o.to(dev) for o in offsets] if offsets else None
    correct, correct_counts, n = 0, 0, 0
    ev = {"spikes": 0.0, "active_fF": 0.0, "sops": 0.0}
    for i in range(0, len(y), batch):
        xb = torch.as_tensor(x[i:i + batch])
        s = encode(xb, cfg.steps, cfg.encoding, seed=seed + i, max_rate=cfg.max_rate).to(dev)
        counts, rec = model(s, caps, record=True, offsets=offsets)
        yb = torch.as_tensor(y[i:i + batch])
        correct += int((decide(rec[-1]).cpu() == yb).sum())
        unique = (counts == counts.max(1).values[:, None]).sum(1).cpu() == 1
        correct_counts += int(((counts.argmax(1).cpu() == yb) & unique).sum())
        n += len(xb)
        ins = [s] + rec[:-1]
        for layer_in, layer_out, (cp, cn) in zip(ins, rec, caps):
            ev["active_fF"] += float((layer_in @ (cp + cn)).sum())
            ev["spikes"] += float(layer_out.sum())
            ev["sops"] += float(layer_in.sum()) * cp.shape[1]      # an input spike reaches every synapse of its row
    out = {"accuracy": correct / max(n, 1), "accuracy_count_only": correct_counts / max(n, 1),
           "synaptic_ops_per_inference": ev["sops"] / max(n, 1)}
    if energy:
        n_neurons = sum(model.sizes[1:])
        parts = {"static_J": energy["idle_step_J"] * n_neurons * cfg.steps,
                 "synapse_J": energy["per_active_fF_J"] * ev["active_fF"] / n,
                 "neuron_J": energy["spike_J"] * ev["spikes"] / n}
        per_inf = sum(parts.values())
        out.update({"energy_per_inference_J": per_inf, "energy_breakdown_J": parts,
                    "spikes_per_inference": ev["spikes"] / n,
                    "active_fF_per_inference": ev["active_fF"] / n})
    return out


def energy_model(artefact: dict) -> dict:
    """Per-event energies from the artefact (the largest fan-in's numbers, conservative)."""
    layers = artefact["layers"]
    f = max(layers, key=int)
    return {"idle_step_J": layers[f]["energy_idle_step_J"],
            "per_active_fF_J": max(layers[k]["energy_per_active_fF_J"] for k in layers),
            "spike_J": artefact["summary"]["energy_spike_J"],
            "assumptions": ("every neuron pays its idle energy (comparator bias, leak) each step; "
                            "each active row costs energy_per_active_fF × (C+ + C−) per step; each "
                            "output spike costs energy_spike (comparator, latch, reset); input "
                            "encoder and row drivers' static power excluded")}


def load_checkpoint(path) -> dict:
    """A memcap checkpoint (:func:`~neurospice.training.checkpoint.read_checkpoint`)."""
    return read_checkpoint(path, FAMILY)


def model_from_checkpoint(ck: dict, artefact: dict | None = None) -> tuple[MemcapSNN, MemcapTrainConfig, dict]:
    """The network of a checkpoint. Its artefact comes from the checkpoint itself (checkpoints
    carry the tables they were trained with, so a run folder can move), else — an older
    checkpoint — from the file it names, which must be unchanged since training."""
    cfg = MemcapTrainConfig(**ck["config"])
    artefact = artefact or ck.get("artefact")
    if artefact is None:
        artefact = load_artefact(cfg.curve)
        if ck.get("curve_sha256") and sha256_file(cfg.curve) != ck["curve_sha256"]:
            raise CheckpointError(f"curve artefact {cfg.curve} changed since this checkpoint was trained")
    model = build_model(cfg, artefact, ck["sizes"][0], ck["sizes"][-1])
    model.load_state_dict(ck["state"])
    return model, cfg, artefact


def train_memcap(cfg: MemcapTrainConfig, out: str | Path = "runs/train", progress: bool = True,
                 resume: bool = True) -> dict:
    """Train one mode; returns the CLI summary (``accuracy_test``, ``checkpoint``,
    ``energy_per_inference_nJ``, ``wall_s``, …)."""
    t0 = time.time()
    out = Path(out)
    if cfg.mode not in ("ideal", "naive", "aware"):
        raise NeurospiceError(f"mode must be ideal, naive or aware, not {cfg.mode!r}")
    torch.manual_seed(cfg.seed)
    dev = torch.device(cfg.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise NeurospiceError("--device cuda requested but torch sees no CUDA device")
    artefact = load_artefact(cfg.curve)
    ds = load_dataset(cfg.dataset, seed=cfg.seed, limit=cfg.limit)
    tr, va = stratified_split(ds.y_train, cfg.val_fraction, cfg.seed + 1)
    xtr, ytr, xva, yva = ds.x_train[tr], ds.y_train[tr], ds.x_train[va], ds.y_train[va]
    model = build_model(cfg, artefact, ds.n_inputs, ds.n_classes).to(dev)
    if cfg.init_from:
        load_initial_weights(model, cfg.init_from, FAMILY)
    batches = spike_batches(xtr, ytr, batch=cfg.batch, steps=cfg.steps, encoding=cfg.encoding,
                            max_rate=cfg.max_rate, shift_px=shift_range(cfg.augment_px, ds.shape),
                            shape=ds.shape, device=dev)

    def loss(batch):
        s, yb = batch
        counts = model(s)
        # spike counts decide the class; the summed margin (V) keeps gradients alive while
        # outputs are silent or saturated
        logits = counts + MARGIN_WEIGHT_PER_V * model.margin_sum
        value = nn.functional.cross_entropy(logits * (LOGIT_STEPS / cfg.steps), yb)
        return value, int((counts.argmax(1) == yb).sum()), len(yb)

    def clamp():
        for w in model.weights:
            w.clamp_(-1, 1)

    # under programming variation, one chip's validation accuracy is too noisy to pick
    # the best epoch by: average over VAL_CHIPS fixed chips
    chips = VAL_CHIPS if cfg.program_sigma > 0 or cfg.offset_sigma_V > 0 else 1

    def validate():
        return float(np.mean([evaluate(model, xva, yva, cfg, seed=10_000 + 97 * d)["accuracy"]
                              for d in range(chips)]))

    extra = {"curve_sha256": sha256_file(cfg.curve), "dataset": ds.describe(), "artefact": artefact}
    run = TrainingRun(family=FAMILY, config=cfg, model=model, batches=batches, loss=loss,
                      validate=validate, sizes=model.sizes, lr=cfg.lr, epochs=cfg.epochs,
                      seed=cfg.seed, after_step=clamp, extra=extra, title=cfg.mode,
                      batches_per_epoch=-(-len(ytr) // cfg.batch))
    fitted = fit(run, out, progress=progress, resume=resume)
    history = fitted["history"]
    energy = energy_model(artefact)
    evaluated = circuit_twin(model, artefact) if cfg.mode == "naive" else model
    test = evaluate(evaluated, ds.x_test, ds.y_test, cfg, seed=20_000, energy=energy)
    metrics = {"mode": cfg.mode, "accuracy_test": test["accuracy"],
               "accuracy_test_count_only": test["accuracy_count_only"], "decision": DECISION_RULE,
               "accuracy_val_best": fitted["best_val"], "checkpoint": fitted["checkpoint"],
               "energy_per_inference_nJ": test["energy_per_inference_J"] * 1e9,
               "spikes_per_inference": test["spikes_per_inference"],
               "synaptic_ops_per_inference": test["synaptic_ops_per_inference"],
               "energy_breakdown_J": test["energy_breakdown_J"],
               "energy_assumptions": energy["assumptions"],
               "evaluated_with": "ideal neuron, analog weights" if cfg.mode == "ideal" else
               f"circuit neuron tables, {cfg.levels}-level device map",
               "dataset": ds.describe(), "config": asdict(cfg), "history": history,
               "curve": cfg.curve, "curve_sha256": extra["curve_sha256"],
               "wall_s": time.time() - t0}
    atomic_write_json(out / "metrics.json", metrics, indent=1)
    metrics["plot"] = str(plot_history(history, out / "training.png", cfg.mode))
    return metrics
