"""Train SNNs of a user's neuron (family ``custom``): the same ``--mode aware|naive|ideal``
study as the memcapacitive family, for any characterized circuit.

``ideal``  the linearized LIF fit of the artefact, analog weights;
``naive``  the ideal network evaluated with the circuit's table neuron (and quantized currents);
``aware``  trained with the table neuron (and quantized currents) in the loop.

Files under ``out``: ``checkpoint.pt`` (best validation epoch; it embeds the artefact, so the
run folder can move), ``last.pt`` (resume point), ``metrics.json``, ``training.png``.
"""
from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neurospice.characterize.artefact import load_artefact
from neurospice.circuits.errors import ConfigError
from neurospice.files import atomic_write_json

from .checkpoint import load_initial_weights, read_checkpoint
from .config import CustomTrainConfig
from .custom_net import CustomSNN
from .datasets import encode, load_dataset, shift_range, spike_batches, stratified_split
from .loop import TrainingRun, fit, plot_history
from .neurons import DECISION_RULE, LOGIT_STEPS, decide

FAMILY = "custom"
#: weight of the output layer's summed firing margin (per µA) next to spike counts in the loss
MARGIN_WEIGHT_PER_UA = 0.05
#: where a neuron's artefact is made on first use
DEFAULT_OUT = Path("runs/custom")


def neuron_artefact(cfg: CustomTrainConfig, workers: int = 1, progress: bool = False) -> tuple[Path, dict]:
    """The artefact ``cfg`` names, or the neuron's default one (characterized when missing or
    made from another description); an explicit artefact of another netlist is refused."""
    from neurospice.characterize.custom import _safe, characterize_custom
    from neurospice.circuits.custom import NeuronSpec, load_neuron
    spec = load_neuron(cfg.neuron) if cfg.neuron else None
    path = Path(cfg.artefact) if cfg.artefact else DEFAULT_OUT / _safe(spec.name) / "custom.json"
    if path.exists():
        art = load_artefact(path)
        if art.get("family") != "custom":
            raise ConfigError(f"artefact {path} is a {art.get('family')!r} artefact, not a custom neuron's")
        if spec is None or NeuronSpec.from_dict(art["neuron"]).identity() == spec.identity():
            return path, art
        if cfg.artefact:
            raise ConfigError(f"artefact {path} was characterized from another description or netlist "
                              f"than {cfg.neuron}; re-run characterize custom or drop --artefact")
    if spec is None:
        raise ConfigError(f"artefact {path} not found")
    r = characterize_custom(spec, quick=cfg.quick, workers=workers, out=path.parent.parent, progress=progress)
    return Path(r["artefact"]), load_artefact(r["artefact"])


def build_model(cfg: CustomTrainConfig, artefact: dict, n_in: int, n_out: int) -> CustomSNN:
    return CustomSNN(artefact, [n_in, cfg.hidden, n_out], neuron="ideal" if cfg.mode != "aware" else "circuit",
                     levels=cfg.levels if cfg.mode == "aware" else 0, current_sigma=cfg.current_sigma,
                     seed=cfg.seed)


def circuit_twin(model: CustomSNN, artefact: dict, levels: int) -> CustomSNN:
    """The same weights on the circuit's table neuron with quantized currents."""
    twin = CustomSNN(artefact, model.sizes, neuron="circuit", levels=levels,
                     current_sigma=model.current_sigma)
    twin.load_state_dict(model.state_dict(), strict=False)
    return twin


@torch.no_grad()
def evaluate(model: CustomSNN, x, y, cfg: CustomTrainConfig, seed: int, batch: int = 500) -> dict:
    """Accuracy by :func:`decide`; spikes and table energy per inference (circuit neurons)."""
    chip = torch.Generator().manual_seed(seed)
    currents = model.currents(generator=chip)
    correct, n, spikes, energy_pJ, sops = 0, 0, 0.0, 0.0, 0.0
    for i in range(0, len(y), batch):
        s = encode(torch.as_tensor(x[i:i + batch]), cfg.steps, cfg.encoding, seed=seed + i, max_rate=cfg.max_rate)
        _, rec, _ = model(s, currents, record=True, energy=True)
        correct += int((decide(rec[-1]) == torch.as_tensor(y[i:i + batch])).sum())
        n += len(s[0])
        spikes += float(sum(r.sum() for r in rec))
        sops += sum(float(a.sum()) * c.shape[1] for a, c in zip([s] + rec[:-1], currents))
        energy_pJ += float(model.energy_pJ.sum())
    out = {"accuracy": correct / max(n, 1), "spikes_per_inference": spikes / max(n, 1),
           "synaptic_ops_per_inference": sops / max(n, 1)}
    if model.neuron_kind == "circuit":
        out["energy_per_inference_J"] = energy_pJ / max(n, 1) * 1e-12
        # the tables hold each step's whole energy (supplies + input source): not split further
        out["energy_breakdown_J"] = {"neuron_synapse_input_and_static_J": out["energy_per_inference_J"]}
    return out


def load_checkpoint(path) -> dict:
    return read_checkpoint(path, FAMILY)


def model_from_checkpoint(ck: dict) -> tuple[CustomSNN, CustomTrainConfig, dict]:
    cfg = _config_of(ck)
    artefact = ck["artefact"]
    model = build_model(cfg, artefact, ck["sizes"][0], ck["sizes"][-1])
    model.load_state_dict(ck["state"])
    return model, cfg, artefact


def _config_of(ck: dict) -> CustomTrainConfig:
    """The checkpoint's config without re-checking its files (the checkpoint carries its artefact)."""
    cfg = object.__new__(CustomTrainConfig)
    cfg.__dict__.update(ck["config"])
    return cfg


def train_custom(cfg: CustomTrainConfig, out: str | Path | None = None, progress: bool = True,
                 resume: bool = True, workers: int = 1) -> dict:
    """Train one mode; returns the CLI summary (``accuracy_test``, ``checkpoint``, ``wall_s``, ...)."""
    t0 = time.time()
    dev = torch.device(cfg.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but torch sees no CUDA device")
    art_path, artefact = neuron_artefact(cfg, workers=workers, progress=progress)
    cfg = replace(cfg, artefact=str(art_path))
    out = Path(out or f"runs/train/custom-{artefact['neuron']['name']}-{cfg.mode}")
    torch.manual_seed(cfg.seed)
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
        logits = counts + MARGIN_WEIGHT_PER_UA * model.margin_sum
        return nn.functional.cross_entropy(logits * (LOGIT_STEPS / cfg.steps), yb), int((counts.argmax(1) == yb).sum()), len(yb)

    def clamp():
        for w in model.weights:
            w.clamp_(-1, 1)

    def validate():
        return evaluate(model, xva, yva, cfg, seed=10_000)["accuracy"]

    run = TrainingRun(family=FAMILY, config=cfg, model=model, batches=batches, loss=loss, validate=validate,
                      sizes=model.sizes, lr=cfg.lr, epochs=cfg.epochs, seed=cfg.seed, after_step=clamp,
                      extra={"artefact": artefact, "dataset": ds.describe()}, title=f"custom {cfg.mode}",
                      batches_per_epoch=-(-len(ytr) // cfg.batch))
    fitted = fit(run, out, progress=progress, resume=resume)
    evaluated = circuit_twin(model, artefact, cfg.levels) if cfg.mode == "naive" else model
    test = evaluate(evaluated, ds.x_test, ds.y_test, cfg, seed=20_000)
    metrics = {"mode": cfg.mode, "neuron": artefact["neuron"]["name"], "accuracy_test": test["accuracy"],
               "decision": DECISION_RULE, "accuracy_val_best": fitted["best_val"],
               "checkpoint": fitted["checkpoint"], "spikes_per_inference": test["spikes_per_inference"],
               "synaptic_ops_per_inference": test["synaptic_ops_per_inference"],
               "energy_breakdown_J": test.get("energy_breakdown_J"),
               "energy_per_inference_J": test.get("energy_per_inference_J"),
               "energy_counted": "every neuron every step: the table's energy of that step (all DC "
                                 "sources + the input current source); encoder and synapse drivers excluded",
               "evaluated_with": "linearized LIF, analog currents" if cfg.mode == "ideal" else
               "the circuit's table neuron" + (f", {cfg.levels}-level currents" if cfg.levels else ""),
               "synapses": "one ideal current source per synapse, summed current clamped to the characterized range",
               "dataset": ds.describe(), "config": asdict(cfg), "history": fitted["history"],
               "artefact": str(art_path), "wall_s": time.time() - t0}
    atomic_write_json(out / "metrics.json", metrics, indent=1)
    metrics["plot"] = str(plot_history(fitted["history"], out / "training.png", f"custom {cfg.mode}"))
    return metrics
