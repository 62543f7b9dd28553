"""The one training loop every family uses: epochs of mini-batches, validation, the
best-validation checkpoint, resume from ``last.pt``.

A family describes one run as a :class:`TrainingRun` (its model, its batches, its loss, its
validation) and :func:`fit` does the rest, the same way for all:

* files under ``out``: ``checkpoint.pt`` (the best validation epoch so far), ``last.pt``
  (the resume point: model, optimizer, schedule, the shuffling generator's state and torch's
  global random state), both written atomically after every epoch
  (:mod:`neurospice.training.checkpoint`);
* resume: a ``last.pt`` whose configuration equals this run's in every field but
  ``epochs`` and ``device`` is continued (more epochs may be asked for); its generator state
  makes the continued run draw the batches an uninterrupted run would have drawn, and its
  global random state the same device variation (a spread drawn at every training step from
  torch's global generator), so a run killed and resumed ends with the same weights;
* schedule: Adam at ``lr``, optionally cosine-annealed over ``epochs``;
* model selection on the validation split only; after :func:`fit` the model holds the
  best-validation weights.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
from tqdm.auto import tqdm

from neurospice.circuits.errors import NeurospiceError
from neurospice.files import atomic_savefig

from .checkpoint import read_checkpoint, save_checkpoint
from .config import config_from_saved

#: configuration fields that may differ between a run and the ``last.pt`` it resumes
RESUMABLE_CHANGES = ("epochs", "device")


@dataclass
class TrainingRun:
    family: str
    config: object                      #: the family's training config dataclass
    model: torch.nn.Module
    batches: Callable[[torch.Generator], Iterable]   #: one epoch's batches (shuffled by the generator)
    loss: Callable[[object], tuple]      #: batch → (loss tensor, correct, samples)
    validate: Callable[[], float]        #: validation accuracy of ``model`` now
    sizes: list
    lr: float
    epochs: int
    seed: int
    cosine: bool = True                  #: cosine-annealed learning rate over ``epochs``
    after_step: Callable[[], None] | None = None      #: e.g. clamp weights into range
    extra: dict = field(default_factory=dict)         #: stored in every checkpoint
    title: str = "train"
    batches_per_epoch: int | None = None              #: for the progress bar
    param_groups: list | None = None     #: Adam parameter groups (own learning rates); default all at ``lr``


def _resume_identity(config) -> dict:
    return {k: v for k, v in asdict(config).items() if k not in RESUMABLE_CHANGES}


def _schedule(opt, run: TrainingRun, done: int):
    """Cosine schedule over this run's ``epochs``, advanced past the ``done`` epochs."""
    if not run.cosine:
        return None
    for group in opt.param_groups:     # a resumed optimizer holds the annealed rate: the
        group["lr"] = group.get("initial_lr", group["lr"])    # schedule replays from the start
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(run.epochs, 1))
    with warnings.catch_warnings():        # replaying the schedule: no optimizer step here,
        warnings.simplefilter("ignore", UserWarning)     # on purpose
        for _ in range(done):
            sched.step()
    return sched


def fit(run: TrainingRun, out, progress: bool = True, resume: bool = True) -> dict:
    """Train ``run`` under ``out``; returns ``{history, checkpoint, last, best_val, wall_s}``."""
    if run.epochs < 1:
        raise NeurospiceError(f"epochs must be at least 1, got {run.epochs}")
    t0 = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    best_path, last_path = out / "checkpoint.pt", out / "last.pt"
    model = run.model
    opt = torch.optim.Adam(run.param_groups or model.parameters(), lr=run.lr)
    gen = torch.Generator().manual_seed(run.seed)
    history, done = [], 0
    if resume and last_path.exists():
        ck = read_checkpoint(last_path, run.family)
        saved = config_from_saved(type(run.config), ck["config"])
        if _resume_identity(saved) == _resume_identity(run.config) and ck.get("sizes") == run.sizes:
            model.load_state_dict(ck["state"])
            opt.load_state_dict(ck["optimizer"])
            gen.set_state(ck["generator"])
            if "torch_rng" in ck:          # (an older last.pt has none)
                torch.set_rng_state(ck["torch_rng"])
            if ck.get("cuda_rng") and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(ck["cuda_rng"])
            done = min(ck["epoch"], run.epochs)
            history = ck["history"][:done]
    sched = _schedule(opt, run, done)
    best = max((h["val_accuracy"] for h in history), default=-1.0)
    if done and not best_path.exists():
        best = -1.0
    body = lambda epoch: {"config": asdict(run.config), "sizes": run.sizes,  # noqa: E731
                          "state": model.state_dict(), "epoch": epoch, "history": history, **run.extra}
    for epoch in range(done, run.epochs):
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for batch in tqdm(run.batches(gen), total=run.batches_per_epoch, leave=False,
                          desc=f"{run.title} epoch {epoch + 1}/{run.epochs}", disable=not progress):
            loss, ok, n = run.loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if run.after_step:
                with torch.no_grad():
                    run.after_step()
            loss_sum += float(loss.detach()) * n
            correct += int(ok)
            seen += n
        if sched:
            sched.step()
        model.eval()
        with torch.no_grad():
            val = float(run.validate())
        history.append({"epoch": epoch, "loss": loss_sum / max(seen, 1),
                        "train_accuracy": correct / max(seen, 1), "val_accuracy": val,
                        "wall_s": round(time.time() - t0, 2)})
        if progress:
            h = history[-1]
            print(f"[{run.title}] epoch {epoch + 1}/{run.epochs} loss {h['loss']:.3f} "
                  f"train {h['train_accuracy']:.3f} val {val:.3f}", flush=True)
        if val > best:
            best = val
            save_checkpoint(best_path, run.family, **body(epoch + 1))
        save_checkpoint(last_path, run.family, **body(epoch + 1), optimizer=opt.state_dict(),
                        generator=gen.get_state(), torch_rng=torch.get_rng_state(),
                        cuda_rng=torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None)
    model.load_state_dict(read_checkpoint(best_path, run.family)["state"])
    model.eval()
    return {"history": history, "checkpoint": str(best_path), "last": str(last_path),
            "best_val": best, "wall_s": time.time() - t0}


def plot_history(history: list[dict], path, title: str):
    """Loss and train/validation accuracy per epoch as a PNG at ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ep = [h["epoch"] + 1 for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(ep, [h["loss"] for h in history], "o-")
    a.set(xlabel="epoch", ylabel="training loss", title=f"{title}: loss")
    b.plot(ep, [h["train_accuracy"] for h in history], "o-", label="train")
    b.plot(ep, [h["val_accuracy"] for h in history], "s-", label="validation")
    b.set(xlabel="epoch", ylabel="accuracy", title=f"{title}: accuracy")
    b.legend()
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=100)
    plt.close(fig)
    return path
