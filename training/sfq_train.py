"""``neurospice train sfq``: an SNN of SFQ counting neurons (ternary synapses, trainable thresholds,
several output neurons per class)."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from neurospice.files import atomic_write_json, sha256_file

from ..characterize.artefact import load_artefact
from .checkpoint import CheckpointError, read_checkpoint, require_same_sizes
from .config import SHIFT_SIDE_PX, SFQTrainConfig, config_from_saved
from .datasets import encode, load_dataset, shift_range, spike_batches, validation_split
from .loop import TrainingRun, fit, plot_history
from .neurons import decide
from .sfq_net import SFQNet, sfq_spec

FAMILY = "sfq"
#: the checkpoint format before checkpoints named their family (still read)
LEGACY_CHECKPOINT_FORMAT = "neurospice.sfq-checkpoint"
VAL_FRACTION = 0.1      #: of the training part, for the curves (the test part is never looked at)


def sfq_shift_px(cfg: SFQTrainConfig, shape) -> int:
    """The training shift range: ``cfg.augment_px``, or one pixel per :data:`SHIFT_SIDE_PX`."""
    return shift_range(cfg.augment_px, shape, SHIFT_SIDE_PX, at_least_px=0)


def evaluate_sfq(model: SFQNet, x: np.ndarray, y: np.ndarray, cfg: SFQTrainConfig) -> dict:
    model.eval()
    correct, pulses, sops = 0, 0.0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), 256):
            s = encode(x[i:i + 256], cfg.steps, "regular", max_rate=cfg.max_rate).to(cfg.device)
            out = model(s)
            # the memcap rule on the class votes (a class's output pulses summed): most, a tie
            # to the first (not argmax's lowest index)
            correct += int((decide(out["votes"]).cpu() == torch.as_tensor(y[i:i + 256])).sum())
            pulses += float(out["hidden"].sum() + out["out"].sum())
            # a pulse on a line reaches every neuron wired to it (one synapse each, either sign)
            sops += float(model.wire1.synaptic_ops(s).sum() + model.wire2.synaptic_ops(out["hidden"]).sum())
    model.train()
    return {"accuracy": correct / len(x), "spikes_per_inference": pulses / len(x),
            "synaptic_ops_per_inference": sops / len(x)}


def load_sfq_checkpoint(path) -> dict:
    return read_checkpoint(path, FAMILY)


def model_from_sfq_checkpoint(ck: dict) -> tuple[SFQNet, SFQTrainConfig]:
    cfg = config_from_saved(SFQTrainConfig, ck["config"])
    n_in, hidden, n_out = ck["sizes"]
    if n_out % cfg.outputs_per_class:
        raise CheckpointError(f"SFQ checkpoint: {n_out} output neurons are not {cfg.outputs_per_class} per class")
    model = SFQNet(n_in, hidden, n_out // cfg.outputs_per_class, ck["spec"], seed=cfg.seed,
                   outputs_per_class=cfg.outputs_per_class)
    model.load_state_dict(ck["state"])
    return model, cfg


def train_sfq(cfg: SFQTrainConfig, out="runs/train/sfq", progress: bool = True, resume: bool = True,
              fault=None, init_from=None) -> dict:
    """Train; ``fault(model)`` (optional, variation-aware training) installs forward hooks for
    one training batch and returns their handles (a new chip drawn per batch); ``init_from``:
    start from that checkpoint's network (fine-tuning)."""
    t0 = time.time()
    out = Path(out)
    artefact = load_artefact(cfg.artefact)
    spec = sfq_spec(artefact)
    data = load_dataset(cfg.dataset, seed=cfg.seed, limit=cfg.limit)
    # validation from the training part only, stratified (the test part is never looked at)
    x_tr, y_tr, x_val, y_val = validation_split(data.x_train, data.y_train, VAL_FRACTION, cfg.seed + 1)
    torch.manual_seed(cfg.seed)
    model = SFQNet(data.n_inputs, cfg.hidden, data.n_classes, spec, cfg.seed,
                   outputs_per_class=cfg.outputs_per_class).to(cfg.device)
    if init_from:
        init = load_sfq_checkpoint(init_from)
        require_same_sizes(init, model, init_from)
        model.load_state_dict(init["state"])

    batches = spike_batches(x_tr, y_tr, batch=cfg.batch, steps=cfg.steps, encoding="regular",
                            max_rate=cfg.max_rate, shift_px=sfq_shift_px(cfg, data.shape),
                            shape=data.shape, device=cfg.device)

    def loss(batch):
        s, y = batch
        hooks = fault(model) if fault else []
        logits = model(s)["logits"]
        for h in hooks:
            h.remove()
        return torch.nn.functional.cross_entropy(logits, y), int((logits.argmax(1) == y).sum()), len(y)

    run = TrainingRun(family=FAMILY, config=cfg, model=model, batches=batches, loss=loss,
                      validate=lambda: evaluate_sfq(model, x_val, y_val, cfg)["accuracy"],
                      sizes=model.sizes, lr=cfg.lr, epochs=cfg.epochs, seed=cfg.seed,
                      extra={"spec": spec, "artefact_sha256": sha256_file(cfg.artefact)},
                      title="train sfq", batches_per_epoch=-(-len(x_tr) // cfg.batch),
                      param_groups=[{"params": [model.wire1.score, model.wire2.score], "lr": cfg.lr},
                                    {"params": [model.soma1.theta, model.soma2.theta, model.readout_scale],
                                     "lr": cfg.lr_threshold}])
    fitted = fit(run, out, progress=progress, resume=resume)
    ev = evaluate_sfq(model, data.x_test, data.y_test, cfg)
    thresholds = {"hidden": model.soma1.threshold().detach().cpu().int().tolist(),
                  "out": model.soma2.threshold().detach().cpu().int().tolist()}
    plot = plot_history(fitted["history"], out / "history.png", f"SFQ SNN on {cfg.dataset}")
    energy_J = ev["spikes_per_inference"] * spec["energy_per_spike_J"]
    metrics = {"accuracy_test": ev["accuracy"], "spikes_per_inference": ev["spikes_per_inference"],
               "synaptic_ops_per_inference": ev["synaptic_ops_per_inference"],
               "energy_per_inference_aJ": energy_J * 1e18, "accuracy_val_best": fitted["best_val"],
               "checkpoint": fitted["checkpoint"], "plot": str(plot),
               "threshold_histogram": {str(t): int(sum(1 for v in thresholds["hidden"] + thresholds["out"] if v == t))
                                       for t in spec["thresholds"]},
               "history": fitted["history"], "wall_s": round(time.time() - t0, 1), "config": asdict(cfg)}
    atomic_write_json(out / "metrics.json", metrics, indent=1)
    return metrics
