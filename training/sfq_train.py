"""``neurospice train sfq``: an SNN of SFQ counting neurons (wires + trainable thresholds)."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..characterize.artefact import load_artefact
from .config import SFQTrainConfig
from .datasets import encode, load_dataset, subset, validation_split
from .neurons import decide
from .sfq_net import SFQNet, sfq_spec
from .train import plot_history, read_family_checkpoint, sha256_file

SFQ_CHECKPOINT_FORMAT = "neurospice.sfq-checkpoint"
VAL_FRACTION = 0.1      #: of the training part, for the curves (the test part is never looked at)


def _batches(n: int, size: int, g: torch.Generator):
    order = torch.randperm(n, generator=g)
    return [order[i:i + size] for i in range(0, n, size)]


def evaluate_sfq(model: SFQNet, x: np.ndarray, y: np.ndarray, cfg: SFQTrainConfig) -> dict:
    model.eval()
    correct, pulses = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), 256):
            s = encode(x[i:i + 256], cfg.steps, "regular", max_rate=cfg.max_rate).to(cfg.device)
            out = model(s)
            # the memcap rule: most pulses, a tie to the first (not argmax's lowest index)
            correct += int((decide(out["out"]).cpu() == torch.as_tensor(y[i:i + 256])).sum())
            pulses += float(out["hidden"].sum() + out["out"].sum())
    model.train()
    return {"accuracy": correct / len(x), "spikes_per_inference": pulses / len(x)}


def load_sfq_checkpoint(path) -> dict:
    return read_family_checkpoint(path, SFQ_CHECKPOINT_FORMAT, "an SFQ")


def model_from_sfq_checkpoint(ck: dict) -> tuple[SFQNet, SFQTrainConfig]:
    cfg = SFQTrainConfig(**ck["config"])
    model = SFQNet(*ck["sizes"], ck["spec"], seed=cfg.seed)
    model.load_state_dict(ck["state"])
    return model, cfg


def train_sfq(cfg: SFQTrainConfig, out="runs/train/sfq", progress: bool = True, resume: bool = True,
              fault=None, init_from=None) -> dict:
    """Train; ``fault(model)`` (optional, variation-aware training) installs forward hooks for
    one training batch and returns their handles (a new chip drawn per batch); ``init_from``:
    start from that checkpoint's network (fine-tuning)."""
    t0 = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    artefact = load_artefact(cfg.artefact)
    spec = sfq_spec(artefact)
    data = load_dataset(cfg.dataset, seed=cfg.seed, limit=cfg.limit)
    # validation from the training part only, stratified (the test part is never looked at)
    x_tr, y_tr, x_val, y_val = validation_split(data.x_train, data.y_train, VAL_FRACTION, cfg.seed + 1)
    probe = subset(len(y_tr), 1000, cfg.seed)          # training accuracy on a fixed sample
    torch.manual_seed(cfg.seed)
    model = SFQNet(data.n_inputs, cfg.hidden, data.n_classes, spec, cfg.seed).to(cfg.device)
    if init_from:
        model.load_state_dict(load_sfq_checkpoint(init_from)["state"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history, start = [], 0
    last = out / "last.pt"
    if resume and last.exists():
        ck = load_sfq_checkpoint(last)
        if ck["config"] == asdict(cfg):
            model.load_state_dict(ck["state"])
            opt.load_state_dict(ck["optimizer"])
            history, start = ck["history"], ck["epoch"]
    g = torch.Generator().manual_seed(cfg.seed)
    for _ in range(start):
        torch.randperm(len(x_tr), generator=g)           # replay the shuffles already used
    bar = tqdm(range(start, cfg.epochs), disable=not progress, desc="train sfq")
    for epoch in bar:
        losses = []
        for idx in _batches(len(x_tr), cfg.batch, g):
            s = encode(x_tr[idx.numpy()], cfg.steps, "regular", max_rate=cfg.max_rate).to(cfg.device)
            hooks = fault(model) if fault else []
            logits = model(s)["logits"]
            for h in hooks:
                h.remove()
            loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y_tr[idx.numpy()]).to(cfg.device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        val = evaluate_sfq(model, x_val, y_val, cfg)["accuracy"]
        train_acc = evaluate_sfq(model, x_tr[probe], y_tr[probe], cfg)["accuracy"]
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "train_accuracy": train_acc,
                        "val_accuracy": val})
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", val=f"{val:.3f}")
        torch.save({"format": SFQ_CHECKPOINT_FORMAT, "config": asdict(cfg), "sizes": model.sizes,
                    "spec": spec, "state": model.state_dict(), "optimizer": opt.state_dict(),
                    "epoch": epoch + 1, "history": history, "artefact_sha256": sha256_file(cfg.artefact)},
                   last.with_suffix(".tmp"))
        last.with_suffix(".tmp").replace(last)
    ev = evaluate_sfq(model, data.x_test, data.y_test, cfg)
    thresholds = {"hidden": model.soma1.threshold().detach().cpu().int().tolist(),
                  "out": model.soma2.threshold().detach().cpu().int().tolist()}
    plot = plot_history(history, out / "history.png", f"SFQ SNN on {cfg.dataset}") if history else None
    metrics = {"accuracy_test": ev["accuracy"], "spikes_per_inference": ev["spikes_per_inference"],
               "energy_per_inference_aJ": ev["spikes_per_inference"] * spec["energy_per_spike_aJ"],
               "checkpoint": str(last), "plot": str(plot) if plot else None,
               "threshold_histogram": {str(t): int(sum(1 for v in thresholds["hidden"] + thresholds["out"] if v == t))
                                       for t in spec["thresholds"]},
               "wall_s": round(time.time() - t0, 1), "config": asdict(cfg)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics
