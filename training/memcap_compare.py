"""``compare`` for the memcap family and its ideal reference (lif): characterize the
differential neuron's tables (with the comparator's Monte Carlo), train (memcap ``aware``,
lif ``ideal``), verify in ngspice (memcap), accuracy under capacitance spread (and
comparator offset mismatch for memcap) with and without variation-aware fine-tuning."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from neurospice.characterize.artefact import load_artefact
from neurospice.files import sha256_or_none
from neurospice.registry import TRANSFER_STEPS

from .robustness import FINE_TUNE_LR, paired_gain, spread_curve


def _artefact(c, out: Path, n_in: int, mc_samples: int, progress: bool) -> Path:
    path = out / "artefacts" / "memcap" / "memcap_diff.json"
    if not path.exists() or "threshold_mc" not in load_artefact(path):
        from neurospice.characterize.memcap_diff import characterize_memcap_diff
        characterize_memcap_diff(fan_ins=(n_in, c.hidden), out=path.parent, workers=c.workers,
                                 progress=progress, mc_samples=mc_samples, seed=c.seed)
    return path


def spread_accuracy(ck_path, spreads, draws, offset_sigma_V: float = 0.0) -> list[dict]:
    """Accuracy against capacitance spread; comparator offsets of σ ``offset_sigma_V`` on
    every chip with a spread > 0."""
    from .datasets import load_dataset
    from .memcap_train import circuit_twin, evaluate, load_checkpoint, model_from_checkpoint
    model, cfg, artefact = model_from_checkpoint(load_checkpoint(ck_path))
    model.eval()
    if cfg.mode == "naive":
        model = circuit_twin(model, artefact)
    ds = load_dataset(cfg.dataset, seed=cfg.seed)
    base = model.device_map

    def at(s, d):
        model.device_map = replace(base, program_sigma=s)
        model.offset_sigma_V = offset_sigma_V if s > 0 else 0.0
        return evaluate(model, ds.x_test, ds.y_test, cfg, seed=50_000 + 97 * d)["accuracy"]
    rows = spread_curve(at, spreads, draws)
    model.device_map = base
    return rows


def memcap_row(family, c, out: Path, progress: bool = False) -> dict:
    from .config import MemcapTrainConfig
    from .datasets import load_dataset
    from .memcap_train import load_checkpoint, train_memcap
    settings = family.compare_settings(c)
    circuit = settings["mode"] != "ideal"
    n_in = load_dataset(c.dataset, seed=c.seed).n_inputs
    art = _artefact(c, out, n_in, settings["mc_offset_samples"], progress)
    tc = MemcapTrainConfig(dataset=c.dataset, mode=settings["mode"], curve=str(art), hidden=c.hidden,
                     epochs=settings["epochs"], seed=c.seed, **settings["training"])
    m = train_memcap(tc, out=out / "train" / family.name, progress=progress)
    ck = m["checkpoint"]
    sizes = load_checkpoint(ck)["sizes"]
    artefact = load_artefact(art)
    step_s = artefact["summary"]["step_s"]
    r = {"accuracy_model": m["accuracy_test"], "neurons": sum(sizes[1:]), "layers": sizes,
         "steps": tc.steps, "artefact": str(art), "artefact_sha256": sha256_or_none(art),
         "checkpoint": ck, "checkpoint_sha256": sha256_or_none(ck),
         "spikes_per_inference": m["spikes_per_inference"], "train_wall_s": m["wall_s"],
         "synaptic_ops_per_inference": m["synaptic_ops_per_inference"]}
    sigma_off = 0.0
    if circuit:
        from .memcap_verify import verify_checkpoint
        v = verify_checkpoint(ck, samples=settings["verify_samples"], workers=c.workers, progress=progress)
        sigma_off = artefact["threshold_mc"]["offset_sigma_V"]   # the comparator's Monte Carlo σ
        r.update({"energy_per_inference_J": m["energy_per_inference_nJ"] * 1e-9,
                  "energy_breakdown_J": m["energy_breakdown_J"],
                  "energy_per_spike_J": artefact["summary"]["energy_spike_J"],
                  "latency_per_inference_s": tc.steps * step_s, "clock_Hz": 1 / step_s,
                  "energy_counted": m.get("energy_assumptions") or "",
                  "accuracy_circuit": v["accuracy_circuit"],
                  "accuracy_model_on_verified": v["accuracy_model"],
                  "comparator_offset_sigma_mV": sigma_off * 1e3,
                  "circuit_check": {"kind": "output layer of each sample re-simulated in ngspice",
                                    "samples": v["samples"], "unit": "samples",
                                    "spike_agreement": v["spike_agreement"]}})
    else:
        r["energy_counted"] = "ideal reference: no circuit, no energy"
    r["robustness"] = spread_accuracy(ck, c.spreads, c.draws, sigma_off)
    s_max = max(c.spreads)
    if s_max > 0:     # variation-aware: fine-tune with the largest spread in the loop
        ta = replace(tc, program_sigma=s_max, offset_sigma_V=sigma_off, init_from=ck,
                     epochs=settings["fine_tune_epochs"], lr=tc.lr * FINE_TUNE_LR)
        ma = train_memcap(ta, out=out / "train" / f"{family.name}-variation-aware", progress=progress)
        r["robustness_variation_aware"] = spread_accuracy(ma["checkpoint"], c.spreads, c.draws, sigma_off)
        r["variation_aware_gain"] = paired_gain(r["robustness"], r["robustness_variation_aware"])
        r["variation_aware_checkpoint"] = ma["checkpoint"]
    return r


def memcap_transfer(ck_path, drives):
    """The checkpoint's first-layer neuron driven by a constant net input (threshold units)."""
    from .memcap_net import IdealNeuron, nearest_layer
    from .memcap_train import load_checkpoint, model_from_checkpoint
    model, _, artefact = model_from_checkpoint(load_checkpoint(ck_path))
    nrn = model.neurons[0]
    lin = IdealNeuron.from_table(nearest_layer(artefact, model.sizes[0]), artefact["threshold"],
                                 artefact["summary"]["v_reset_neg_V"])
    dc = torch.as_tensor(drives, dtype=torch.float32) * lin.threshold / lin.gain   # fF per step
    state = nrn.initial_state((len(drives),))
    spikes = torch.zeros(len(drives))
    with torch.no_grad():
        for _ in range(TRANSFER_STEPS):
            z, state = nrn(dc, torch.zeros_like(dc), state)
            spikes += z
    return np.asarray(drives), (spikes / TRANSFER_STEPS).numpy()
