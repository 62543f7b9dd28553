"""``neurospice train qclif``: a recurrent SNN of qCLIF neurons, quantization-aware (or its
float32 CLIF twin), on row-by-row sequential digits/MNIST or CLIF's context task.

Sequential view: an image of ``H`` rows is ``H`` time steps; step ``t`` presents row ``t`` as
input spikes (pixel > ``pixel_threshold``). ``dvs:DIR``: DVS Gesture from a local copy, read with
tonic (:func:`~neurospice.training.datasets.load_dvs_gesture`), 20 time bins of 512 inputs. Context task (Ferrand et al.): each sample gets a
target class, shown as a one-hot context on the apical pathway at every step; the answer is
whether the image belongs to that class (half the samples do). The test split is the dataset's.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from neurospice.circuits.qclif import QCLIFConfig
from neurospice.files import atomic_write_json, atomic_write_text

from .checkpoint import CheckpointError, read_checkpoint
from .config import QCLIFTrainConfig
from .datasets import load_dataset, load_dvs_gesture, stratified_split, validation_split
from .loop import TrainingRun, fit, plot_history
from .neurons import DECISION_RULE, decide
from .qclif_net import QCLIFRSNN

FAMILY = "qclif"
#: the checkpoint format before checkpoints named their family (still read)
LEGACY_CHECKPOINT_FORMAT = "neurospice.qclif-checkpoint"
VAL_FRACTION = 0.1      #: of the training part, for model selection curves (never the test part)
TASKS = ("classify", "context")


class SequenceData:
    """Row-by-row spike sequences ``[T, N, W]`` (uint8) with labels, optional context ``[N, C]``."""

    def __init__(self, x: np.ndarray, y: np.ndarray, shape, threshold: float,
                 context: np.ndarray | None = None):
        """``x``: images ``[N, H·W]`` (row t → step t), or with ``shape=None`` ready spike
        sequences ``[T, N, features]``."""
        if shape is None:
            self.x = np.asarray(x, dtype=np.uint8)
        else:
            h, w = shape
            self.x = (x.reshape(len(x), h, w) > threshold).astype(np.uint8).transpose(1, 0, 2)
        self.y = np.asarray(y, dtype=np.int64)
        self.context = context

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, idx, device="cpu"):
        x = torch.as_tensor(self.x[:, idx], dtype=torch.float32, device=device)
        c = None
        if self.context is not None:
            one = torch.as_tensor(self.context[idx], dtype=torch.float32, device=device)
            c = one.unsqueeze(0).expand(x.shape[0], -1, -1)
        return x, c, torch.as_tensor(self.y[idx], device=device)


def context_task(y: np.ndarray, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Targets (one-hot ``[N, n_classes]``) and binary answers: half the samples get their own
    class as target, the others a random other class."""
    rng = np.random.default_rng(seed)
    match = rng.random(len(y)) < 0.5
    other = (y + rng.integers(1, n_classes, len(y))) % n_classes
    target = np.where(match, y, other)
    return np.eye(n_classes, dtype=np.float32)[target], match.astype(np.int64)


def make_data(cfg: QCLIFTrainConfig):
    """(train, validation, test) :class:`SequenceData`, the dataset and the output count."""
    if cfg.task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {cfg.task!r}")
    name, _, arg = cfg.dataset.partition(":")
    if name == "dvs":               # event sequences [T, N, F]: split along the sample axis
        ds = load_dvs_gesture(arg, limit=cfg.limit)
        tr, va = stratified_split(ds.y_train, VAL_FRACTION, cfg.seed + 1)
        parts = {"val": (ds.x_train[:, va], ds.y_train[va]), "train": (ds.x_train[:, tr], ds.y_train[tr]),
                 "test": (ds.x_test, ds.y_test)}
        shape = None
    else:
        ds = load_dataset(cfg.dataset, seed=cfg.seed, limit=cfg.limit)
        x_tr, y_tr, x_val, y_val = validation_split(ds.x_train, ds.y_train, VAL_FRACTION, cfg.seed + 1)
        parts = {"val": (x_val, y_val), "train": (x_tr, y_tr), "test": (ds.x_test, ds.y_test)}
        shape = ds.shape
    out = {}
    for k, (part, (x, y)) in enumerate(parts.items()):
        ctx = None
        if cfg.task == "context":
            ctx, y = context_task(y, ds.n_classes, cfg.seed + 17 * k)
        out[part] = SequenceData(x, y, shape, cfg.pixel_threshold, ctx)
    n_out = 2 if cfg.task == "context" else ds.n_classes
    return out["train"], out["val"], out["test"], ds, n_out


def build_model(cfg: QCLIFTrainConfig, n_in: int, n_out: int, n_context: int) -> QCLIFRSNN:
    return QCLIFRSNN(n_in, cfg.hidden, n_out, n_context, QCLIFConfig.for_bits(cfg.bits),
                     neuron=cfg.neuron, seed=cfg.seed)


def evaluate_qclif(model: QCLIFRSNN, data: SequenceData, device="cpu", batch: int = 256) -> dict:
    """Accuracy by :func:`decide` on the output neurons' spikes; hidden and output spikes and
    synaptic operations per inference."""
    model.eval()
    correct, spikes, out_spikes, sops = 0, 0.0, 0.0, 0.0
    _, H, O, _ = model.sizes
    with torch.no_grad():
        for i in range(0, len(data), batch):
            idx = np.arange(i, min(i + batch, len(data)))
            x, c, y = data.batch(idx, device)
            out = model(x, c)
            correct += int((decide(out["out"]) == y).sum())
            hidden = float(out["spikes"].sum())
            spikes += hidden
            out_spikes += float(out["out"].sum())
            # on-chip synaptic operations: each input (and context) spike reaches H somas (apical
            # for context), each hidden spike 2·(H − 1) recurrent synapses (soma and apical, no
            # self-connections) and the O output neurons' somas
            sops += (float(x.sum()) + (float(c.sum()) if c is not None else 0.0)) * H \
                + hidden * (2 * (H - 1) + O)
    model.train()
    return {"accuracy": correct / len(data), "spikes_per_inference": (spikes + out_spikes) / len(data),
            "output_spikes_per_inference": out_spikes / len(data),
            "synaptic_ops_per_inference": sops / len(data)}


def load_qclif_checkpoint(path) -> dict:
    ck = read_checkpoint(path, FAMILY)
    if "w_out" in ck.get("state", {}):
        raise CheckpointError(f"{path} holds a qCLIF network with the float readout layer of "
                              "earlier versions; the class is now read by output neurons in "
                              "hardware: train it again")
    return ck


def model_from_qclif_checkpoint(ck: dict) -> tuple[QCLIFRSNN, QCLIFTrainConfig]:
    cfg = QCLIFTrainConfig(**ck["config"])
    n_in, _, n_out, n_ctx = ck["sizes"]
    model = build_model(cfg, n_in, n_out, n_ctx)
    model.load_state_dict(ck["state"])
    return model, cfg


def energy_per_inference(artefact_path, steps: int, neurons: int) -> dict | None:
    """Every neuron (hidden and output) is clocked once per step: E = steps · neurons · (active
    energy per cycle) from the qCLIF characterization artefact (``runs/qclif/qclif.json``), when
    there is one."""
    from neurospice.characterize.artefact import load_artefact
    path = Path(artefact_path)
    if not path.exists():
        return None
    art = load_artefact(path)
    cycle_J = art["nominal"]["energy_per_cycle_active_pJ"] * 1e-12
    return {"energy_per_inference_pJ": steps * neurons * cycle_J * 1e12, "energy_per_cycle_pJ": cycle_J * 1e12,
            "neurons": neurons, "artefact": str(path),
            "assumption": "one clock cycle per neuron (hidden and output) and time step at the "
            "artefact's random-input activity; synapse weight memory not counted"}


def train_qclif(cfg: QCLIFTrainConfig, out="runs/train/qclif", progress: bool = True,
                resume: bool = True, artefact="runs/qclif/qclif.json", fault=None, init_from=None) -> dict:
    """Train; ``fault(model)`` (optional, variation-aware training) installs forward hooks for
    one training batch and returns their handles (a new chip drawn per batch); ``init_from``:
    start from that checkpoint's network (fine-tuning)."""
    t0 = time.time()
    out = Path(out)
    train, val, test, ds, n_out = make_data(cfg)
    n_ctx = ds.n_classes if cfg.task == "context" else 0
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, train.x.shape[2], n_out, n_ctx).to(cfg.device)
    if init_from:
        model.load_state_dict(load_qclif_checkpoint(init_from)["state"])

    def batches(gen):
        for idx in torch.randperm(len(train), generator=gen).split(cfg.batch):
            yield train.batch(idx.numpy(), cfg.device)

    def loss(batch):
        x, c, y = batch
        hooks = fault(model) if fault else []
        out = model(x, c)
        for h in hooks:
            h.remove()
        return (torch.nn.functional.cross_entropy(out["logits"], y), int((decide(out["out"]) == y).sum()),
                len(y))

    run = TrainingRun(family=FAMILY, config=cfg, model=model, batches=batches, loss=loss,
                      validate=lambda: evaluate_qclif(model, val, cfg.device)["accuracy"],
                      sizes=model.sizes, lr=cfg.lr, epochs=cfg.epochs, seed=cfg.seed,
                      title=f"train {cfg.neuron}{cfg.bits}", batches_per_epoch=-(-len(train) // cfg.batch))
    fitted = fit(run, out, progress=progress, resume=resume)
    ev = evaluate_qclif(model, test, cfg.device)
    plot = plot_history(fitted["history"], out / "history.png",
                        f"{cfg.neuron} {cfg.bits}-bit on {cfg.dataset} ({cfg.task})")
    metrics = {"accuracy_test": ev["accuracy"], "spikes_per_inference": ev["spikes_per_inference"],
               "synaptic_ops_per_inference": ev["synaptic_ops_per_inference"],
               "accuracy_val_best": fitted["best_val"], "checkpoint": fitted["checkpoint"], "plot": str(plot),
               "steps": int(train.x.shape[0]), "inputs": int(train.x.shape[2]),
               "samples": {"train": len(train), "validation": len(val), "test": len(test)},
               "output_spikes_per_inference": ev["output_spikes_per_inference"],
               "decision_rule": DECISION_RULE,
               "energy": energy_per_inference(artefact, int(train.x.shape[0]), cfg.hidden + n_out),
               "history": fitted["history"], "wall_s": round(time.time() - t0, 1), "config": asdict(cfg)}
    atomic_write_json(out / "metrics.json", metrics, indent=1)
    return metrics


def bits_table(cfg: QCLIFTrainConfig, widths=(4, 6, 8), out="runs/train/qclif-bits",
               progress: bool = True, resume: bool = True) -> dict:
    """Train the float32 CLIF twin and the qCLIF network at each width on the same data and
    split; accuracy-vs-width table (Markdown + JSON) under ``out``."""
    from dataclasses import replace
    out = Path(out)
    runs = [("clif", max(widths))] + [("qclif", b) for b in widths]
    rows = []
    for neuron, bits in runs:
        c = replace(cfg, neuron=neuron, bits=bits)
        name = "clif-float32" if neuron == "clif" else f"qclif-{bits}bit"
        m = train_qclif(c, out=out / name, progress=progress, resume=resume)
        rows.append({"model": name, "neuron": neuron, "bits": None if neuron == "clif" else bits,
                     "accuracy_test": m["accuracy_test"], "spikes_per_inference": m["spikes_per_inference"],
                     "checkpoint": m["checkpoint"], "wall_s": m["wall_s"]})
    ref = rows[0]["accuracy_test"]
    lines = [f"Accuracy vs width, {cfg.dataset} ({cfg.task}), {cfg.hidden} recurrent neurons, "
             f"{cfg.epochs} epochs, same split and seed", "",
             "| model | bits | test accuracy | vs float32 (points) | spikes / inference |",
             "|---|---|---|---|---|"]
    for r in rows:
        r["delta_points"] = 100 * (r["accuracy_test"] - ref)
        lines.append(f"| {r['model']} | {r['bits'] or 'float32'} | {r['accuracy_test']:.4f} | "
                     f"{r['delta_points']:+.1f} | {r['spikes_per_inference']:.0f} |")
    atomic_write_text(out / "bits_table.md", "\n".join(lines) + "\n")
    summary = {"rows": rows, "table": str(out / "bits_table.md"), "float_accuracy": ref,
               "config": asdict(cfg)}
    atomic_write_json(out / "bits_table.json", summary, indent=1)
    return summary
