"""``neurospice compare``: the neuron families side by side on one dataset and split.

For every family the chain is the same, each step from the family's own module:
characterize its circuit in ngspice (artefact, reused when present) → train a network with
``hidden`` neurons in its hidden layer on the dataset (resumed when present) → re-simulate a
sample of the trained network's neurons in ngspice (``verify``) → evaluate it under device
variation at several spread levels. The families:

``memcap``  analog memcapacitive neuron (circuit-aware training, 16-level device pairs);
``qclif``   digital 8-bit qCLIF neuron (sky130 standard cells; recurrent layer, row-by-row input);
``sfq``     superconducting counting neuron (16 wires per neuron, trainable threshold);
``lif``     the ideal reference: the memcap network's linearized LIF neuron with analog weights
            (no circuit behind it, so no energy, latency or circuit check).

**Variation** (one relative spread ``σ`` per family, each drawn per device or neuron, one
draw = one chip; :data:`VARIATION` names them):

* memcap / lif: every capacitance ``C → C·(1 + σ·N(0,1))`` (the programmed value's spread);
  memcap also has CMOS mismatch at every σ > 0: each neuron's comparator offset is off by
  ``δ ~ N(0, σ_θ)``, σ_θ from the offset's Monte Carlo characterization
  (:data:`MC_OFFSET_SAMPLES` samples; ``lif``, the ideal reference, has no comparator);
* sfq: per neuron a critical-current error ``ε ~ N(0, σ)`` shared by its junctions; the bias
  relative to the critical currents is ``1/(1+ε)``, and outside the neuron's characterized
  bias window ``[bias_low, bias_high]`` the neuron fails: below, its junctions never switch
  (silent); above, they run in the voltage state (a pulse every step);
* qclif: per neuron a delay error ``ε ~ N(0, σ)`` of its critical path; the neuron runs at the
  characterized fmax (settle time × guard), so it fails when ``settle·(1+ε)`` exceeds the clock
  period; a failing neuron latches wrong bits, modelled as a random spike (p = ½) every step.

**Variation-aware training** (every family): the plain network fine-tuned with the largest
spread in the loop, a new chip drawn at every training batch (capacitances and comparator
offsets for memcap, capacitances for lif, failing neurons for sfq/qclif); compared with the
plain network at every spread, on the same chips, and chip by chip at the largest spread
(:func:`paired_gain`).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from neurospice.circuits.errors import NeurospiceError

FAMILIES = ("qclif", "memcap", "sfq", "lif")

#: what the spread σ of each family means (the report's wording)
VARIATION = {"memcap": "capacitance spread σ_C/C per device, + comparator offset mismatch (Monte Carlo σ)",
             "lif": "weight (capacitance) spread σ_C/C per synapse",
             "sfq": "critical-current spread σ_Ic/Ic per neuron",
             "qclif": "critical-path delay spread σ_d/d per neuron (CMOS mismatch)"}

#: training settings that differ from each family's defaults (chosen on the validation split of
#: digits with 64 hidden neurons: a white pixel spiking every step, a larger step size; 8 time
#: steps like qCLIF's 8 rows and SFQ's default, so every family answers in 8 steps)
FAMILY_TRAINING = {"memcap": {"max_rate": 1.0, "lr": 3e-2, "steps": 8},
                   "lif": {"max_rate": 1.0, "lr": 3e-2, "steps": 8},
                   "qclif": {"lr": 3e-2}, "sfq": {}}

#: Monte Carlo samples of the memcap comparator's offset (``characterize memcap-diff --mc``)
MC_OFFSET_SAMPLES = 16

#: variation-aware fine-tuning: learning rate relative to the family's training rate
FINE_TUNE_LR = 0.3

#: cryogenic cooling: wall-plug watts per watt dissipated at 4 K, for large cryocoolers
#: (Holmes, Ripple, Manheimer, "Energy-efficient superconducting computing — power budgets and
#: requirements", IEEE Trans. Appl. Supercond. 23(3), 1701610, 2013)
CRYO_W_PER_W_4K = 400.0


@dataclass
class CompareConfig:
    """``neurospice compare`` (defaults: the one place they are written)."""
    dataset: str = "digits"
    families: tuple[str, ...] = FAMILIES
    hidden: int = 64                 #: neurons in every family's hidden layer
    quick: bool = False              #: fewer epochs, cycles, verify samples and draws
    spreads: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3)
    draws: int = 10                  #: Monte Carlo draws (chips) per spread level
    seed: int = 1
    workers: int = 2

    @property
    def epochs(self) -> dict:
        """Training epochs per family."""
        return ({"memcap": 20, "lif": 20, "sfq": 15, "qclif": 30} if self.quick else
                {"memcap": 30, "lif": 30, "sfq": 15, "qclif": 40})

    @property
    def fine_tune_epochs(self) -> dict:
        """Variation-aware fine-tuning epochs per family. memcap/lif: as many as the first
        training — with a new chip every batch the training accuracy still rises after 20
        epochs (digits, σ = 0.3), and their epochs take seconds."""
        e = self.epochs
        return {"memcap": e["memcap"], "lif": e["lif"], "sfq": 5 if self.quick else 8,
                "qclif": 5 if self.quick else 8}

    @property
    def verify(self) -> dict:
        """memcap: test samples (whole output layer each); sfq, qclif: (samples, neurons each)."""
        return ({"memcap": 6, "sfq": (1, 1), "qclif": (1, 2)} if self.quick else
                {"memcap": 30, "sfq": (2, 3), "qclif": (2, 4)})

    @property
    def qclif_cycles(self) -> int:
        return 20 if self.quick else 80


def sha256_of(path) -> str | None:
    from .train import sha256_file
    return sha256_file(path) if path and Path(path).exists() else None


def _spread_curve(evaluate_at, spreads, draws: int) -> list[dict]:
    """``evaluate_at(σ, draw) → accuracy``; mean and std over draws (one draw at σ = 0)."""
    rows = []
    for s in spreads:
        acc = [evaluate_at(s, d) for d in range(1 if s == 0 else draws)]
        rows.append({"spread": s, "accuracy_mean": float(np.mean(acc)),
                     "accuracy_std": float(np.std(acc)), "draws": len(acc),
                     "accuracies": [float(a) for a in acc]})
    return rows


def paired_gain(plain: list[dict], aware: list[dict]) -> dict | None:
    """Variation-aware minus plain accuracy at the largest spread, chip by chip (both curves
    drew the same chips): mean, its standard error, and on how many chips aware was better."""
    a, b = plain[-1], aware[-1]
    if a["spread"] != b["spread"] or a["draws"] < 2 or a["draws"] != b["draws"]:
        return None
    d = np.asarray(b["accuracies"]) - np.asarray(a["accuracies"])
    return {"spread": a["spread"], "gain_mean": float(d.mean()),
            "gain_se": float(d.std(ddof=1) / np.sqrt(len(d))),
            "chips_better": int((d > 0).sum()), "chips_worse": int((d < 0).sum()), "draws": len(d)}


# --------------------------------------------------------------------------- memcap / lif
def _memcap_artefact(c: CompareConfig, out: Path, n_in: int, progress: bool) -> Path:
    path = out / "artefacts" / "memcap" / "memcap_diff.json"
    if not path.exists() or "threshold_mc" not in json.loads(path.read_text()):
        from neurospice.characterize.memcap_diff import characterize_memcap_diff
        characterize_memcap_diff(fan_ins=(n_in, c.hidden), out=path.parent, workers=c.workers,
                                 progress=progress, mc_samples=MC_OFFSET_SAMPLES, seed=c.seed)
    return path


def _memcap_spread_accuracy(ck_path, spreads, draws, offset_sigma_V: float = 0.0) -> list[dict]:
    """Accuracy against capacitance spread; comparator offsets of σ ``offset_sigma_V`` on
    every chip with a spread > 0."""
    from .datasets import load_dataset
    from .train import circuit_twin, evaluate, load_checkpoint, model_from_checkpoint
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
    rows = _spread_curve(at, spreads, draws)
    model.device_map = base
    return rows


def run_memcap_family(c: CompareConfig, out: Path, family: str = "memcap", progress: bool = False) -> dict:
    """Characterize (memcap-diff tables), train (``aware`` for memcap, ``ideal`` for lif),
    verify (memcap), variation curves with and without variation-aware fine-tuning."""
    from .config import TrainConfig
    from .datasets import load_dataset
    from .train import load_checkpoint, train_memcap
    n_in = load_dataset(c.dataset, seed=c.seed).n_inputs
    art = _memcap_artefact(c, out, n_in, progress)
    mode = "aware" if family == "memcap" else "ideal"
    tc = TrainConfig(dataset=c.dataset, mode=mode, curve=str(art), hidden=c.hidden,
                     epochs=c.epochs[family], seed=c.seed, **FAMILY_TRAINING[family])
    m = train_memcap(tc, out=out / "train" / family, progress=progress)
    ck = m["checkpoint"]
    sizes = load_checkpoint(ck)["sizes"]
    artefact = json.loads(art.read_text())
    step_s = artefact["summary"]["step_s"]
    r = {"family": family, "accuracy_model": m["accuracy_test"], "neurons": sum(sizes[1:]),
         "layers": sizes, "steps": tc.steps, "artefact": str(art), "artefact_sha256": sha256_of(art),
         "checkpoint": ck, "checkpoint_sha256": sha256_of(ck), "variation": VARIATION[family],
         "spikes_per_inference": m["spikes_per_inference"], "train_wall_s": m["wall_s"]}
    if family == "memcap":
        from .verify import verify_checkpoint
        v = verify_checkpoint(ck, samples=c.verify["memcap"], workers=c.workers, progress=progress)
        r.update({"energy_per_inference_nJ": m["energy_per_inference_nJ"],
                  "energy_per_spike_pJ": artefact["summary"]["energy_spike_J"] * 1e12,
                  "latency_per_inference_ns": tc.steps * step_s * 1e9,
                  "clock_MHz": 1e-6 / step_s,
                  "energy_counted": m.get("energy_assumptions") or "",
                  "accuracy_circuit": v["accuracy_circuit"],
                  "accuracy_model_on_verified": v["accuracy_model"],
                  "circuit_check": {"kind": "output layer of each sample re-simulated in ngspice",
                                    "samples": v["samples"], "spike_agreement": v["spike_agreement"]}})
    else:
        r.update({"energy_per_inference_nJ": None, "energy_per_spike_pJ": None,
                  "latency_per_inference_ns": None, "clock_MHz": None, "accuracy_circuit": None,
                  "energy_counted": "ideal reference: no circuit, no energy",
                  "circuit_check": None})
    # comparator mismatch (memcap): the Monte Carlo σ of the offset (lif: no comparator)
    sigma_off = 0.0
    if family == "memcap":
        sigma_off = artefact["threshold_mc"]["offset_sigma_V"]
        r["comparator_offset_sigma_mV"] = sigma_off * 1e3
    r["robustness"] = _memcap_spread_accuracy(ck, c.spreads, c.draws, sigma_off)
    # variation-aware: fine-tune the plain network with the largest spread in the loop
    s_max = max(c.spreads)
    if s_max > 0:
        ta = replace(tc, program_sigma=s_max, offset_sigma_V=sigma_off, init_from=ck,
                     epochs=c.fine_tune_epochs[family], lr=tc.lr * FINE_TUNE_LR)
        ma = train_memcap(ta, out=out / "train" / f"{family}-variation-aware", progress=progress)
        r["robustness_variation_aware"] = _memcap_spread_accuracy(ma["checkpoint"], c.spreads, c.draws,
                                                                  sigma_off)
        r["variation_aware_gain"] = paired_gain(r["robustness"], r["robustness_variation_aware"])
        r["variation_aware_checkpoint"] = ma["checkpoint"]
    return r


# --------------------------------------------------------------------------- faults (sfq, qclif)
def _failure_masks(n: int, spread: float, fails, generator: np.random.Generator):
    """Per neuron ``ε ~ N(0, spread)`` → ``fails(ε)``: ``(low, high)`` boolean masks."""
    eps = generator.normal(0.0, spread, n) if spread > 0 else np.zeros(n)
    return fails(eps)


def sfq_failures(bias_low: float, bias_high: float):
    """Critical currents ×(1+ε) put the bias at ``1/(1+ε)`` of nominal: below ``bias_low``
    the junctions never switch (silent), above ``bias_high`` they run free (a pulse every step)."""
    def fails(eps):
        b = 1.0 / np.maximum(1.0 + eps, 1e-6)
        return b < bias_low, b > bias_high
    return fails


def qclif_failures(guard: float):
    """A critical path slower by ``1+ε`` misses the clock (period = settle × ``guard``)."""
    def fails(eps):
        return np.zeros(len(eps), bool), (1.0 + eps) > guard
    return fails


# --------------------------------------------------------------------------- sfq
def run_sfq_family(c: CompareConfig, out: Path, progress: bool = False) -> dict:
    from .config import SFQTrainConfig
    from .datasets import load_dataset
    from .sfq_train import evaluate_sfq, load_sfq_checkpoint, model_from_sfq_checkpoint, train_sfq
    from .sfq_verify import verify_sfq_checkpoint
    art = out / "artefacts" / "sfq" / "sfq.json"
    if not art.exists():
        from neurospice.characterize.sfq import characterize_sfq
        # the neuron only (the cell table is not needed for training), thresholds 1, 2, 4
        characterize_sfq(quick=True, cells=False, bisection_steps=2 if c.quick else 4, out=art.parent,
                         workers=c.workers, progress=progress, margins_for=(4,) if c.quick else None)
    artefact = json.loads(art.read_text())
    s = artefact["summary"]
    tc = SFQTrainConfig(dataset=c.dataset, artefact=str(art), hidden=c.hidden,
                        epochs=c.epochs["sfq"], seed=c.seed, **FAMILY_TRAINING["sfq"])
    m = train_sfq(tc, out=out / "train" / "sfq", progress=progress)
    ck = m["checkpoint"]
    n_samples, n_neurons = c.verify["sfq"]
    v = verify_sfq_checkpoint(ck, samples=n_samples, neurons=n_neurons, workers=c.workers,
                              progress=progress)
    model, cfg = model_from_sfq_checkpoint(load_sfq_checkpoint(ck))
    ds = load_dataset(c.dataset, seed=c.seed)
    # the narrowest measured bias window (every threshold shares the cells and bias network)
    window = min((n for n in s["neurons"].values() if n.get("bias_low") is not None),
                 key=lambda n: n["bias_high"] - n["bias_low"])
    fails = sfq_failures(window["bias_low"], window["bias_high"])

    def fine_tune(fault):
        ta = replace(tc, epochs=c.fine_tune_epochs["sfq"], lr=tc.lr * FINE_TUNE_LR)
        ma = train_sfq(ta, out=out / "train" / "sfq-variation-aware", progress=progress, init_from=ck,
                       fault=fault)
        return model_from_sfq_checkpoint(load_sfq_checkpoint(ma["checkpoint"]))[0], ma["checkpoint"]
    rob = _fault_robustness(c, model, lambda net, spread, rng: install_sfq_faults(net, spread, fails, rng),
                            lambda net: evaluate_sfq(net, ds.x_test, ds.y_test, cfg)["accuracy"],
                            60_000, fine_tune)
    step_s = s["fan_in"] / (s["max_input_rate_GHz"] * 1e9)
    return {"family": "sfq", "accuracy_model": m["accuracy_test"], "accuracy_circuit": None,
            "neurons": sum(model.sizes[1:]), "layers": model.sizes, "steps": cfg.steps,
            "energy_per_spike_pJ": s["energy_per_spike_aJ"] * 1e-6,
            "energy_per_inference_nJ": m["energy_per_inference_aJ"] * 1e-9,
            "energy_counted": (f"bias-source work per switching + static bias power over one spike "
                               f"period at the maximum input rate ({s['energy_per_spike_aJ']:.0f} aJ "
                               f"per pulse, every hidden and output pulse); cryocooling NOT included: "
                               f"× {CRYO_W_PER_W_4K:.0f} W/W at 4 K"),
            "cryo_factor": CRYO_W_PER_W_4K,
            "energy_per_inference_with_cryo_nJ": m["energy_per_inference_aJ"] * 1e-9 * CRYO_W_PER_W_4K,
            "latency_per_inference_ns": cfg.steps * step_s * 1e9,
            "clock_MHz": 1e-6 / step_s,
            "spikes_per_inference": m["spikes_per_inference"],
            "circuit_check": {"kind": "sampled hidden neurons re-simulated in ngspice (RCSJ junctions)",
                              "samples": v["neuron_samples"], "spike_agreement": v["spike_agreement"]},
            "artefact": str(art), "artefact_sha256": sha256_of(art), "checkpoint": ck,
            "checkpoint_sha256": sha256_of(ck), "variation": VARIATION["sfq"],
            "bias_window": [window["bias_low"], window["bias_high"]],
            **rob, "train_wall_s": m["wall_s"]}


def _fault_robustness(c: CompareConfig, model, install, accuracy, seed_base: int, fine_tune) -> dict:
    """Accuracy against spread of ``model`` with faults ``install(net, spread, rng)`` (one chip
    per draw, the same chips for every network); with a positive largest spread, also of the
    network ``fine_tune(fault)`` returns (fine-tuned with a new chip every batch)."""
    def curve(net):
        def at(spread, d):
            hooks = install(net, spread, np.random.default_rng(seed_base + 97 * d))
            try:
                return accuracy(net)
            finally:
                for h in hooks:
                    h.remove()
        return _spread_curve(at, c.spreads, c.draws)
    out = {"robustness": curve(model)}
    s_max = max(c.spreads)
    if s_max > 0:
        g = np.random.default_rng(c.seed)
        tuned, path = fine_tune(lambda net: install(net, s_max, g))
        out.update(robustness_variation_aware=curve(tuned), variation_aware_checkpoint=path)
        out["variation_aware_gain"] = paired_gain(out["robustness"], out["robustness_variation_aware"])
    return out


def install_sfq_faults(model, spread: float, fails, rng: np.random.Generator) -> list:
    """One chip: failure masks per SFQ layer (``fails``) as forward hooks; returns the handles."""
    hooks = []
    for layer in (model.soma1, model.soma2):
        lo, hi = _failure_masks(layer.theta.numel(), spread, fails, rng)
        if lo.any() or hi.any():
            hooks.append(layer.register_forward_hook(_stuck_hook(lo, hi)))
    return hooks


def install_qclif_faults(model, spread: float, fails, rng: np.random.Generator) -> list:
    """One chip: neurons that miss timing latch random spikes (p = ½ per step)."""
    _, bad = _failure_masks(model.sizes[1], spread, fails, rng)
    if not bad.any():
        return []
    bad_t = torch.as_tensor(bad)
    gen = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))

    def hook(module, inputs, output):
        va, v, z = output
        noise = (torch.rand(z.shape, generator=gen) < 0.5).to(z.dtype).to(z.device)
        z = torch.where(bad_t.to(z.device), noise, z)
        return va, v, z
    return [model.cell.register_forward_hook(hook)]


def _stuck_hook(silent: np.ndarray, free_running: np.ndarray):
    """Forward hook on a ``[T, N, neurons]`` output: silent neurons 0, free-running ones 1."""
    lo, hi = torch.as_tensor(silent), torch.as_tensor(free_running)

    def hook(module, inputs, output):
        out = output.clone()
        out[..., lo] = 0.0
        out[..., hi] = 1.0
        return out
    return hook


# --------------------------------------------------------------------------- qclif
def _qclif_artefact(c: CompareConfig, out: Path, progress: bool) -> Path:
    path = out / "artefacts" / "qclif" / "qclif.json"
    if not path.exists():
        from neurospice.characterize.qclif import characterize_qclif
        characterize_qclif(quick=True, cycles=c.qclif_cycles, out=path.parent, workers=c.workers,
                           progress=progress)
    return path


def run_qclif_family(c: CompareConfig, out: Path, progress: bool = False) -> dict:
    from neurospice.characterize.qclif import FMAX_GUARD
    from .config import QCLIFTrainConfig
    from .qclif_train import evaluate_qclif, load_qclif_checkpoint, make_data, model_from_qclif_checkpoint
    from .qclif_train import train_qclif
    from .qclif_verify import verify_qclif_checkpoint
    art = _qclif_artefact(c, out, progress)
    artefact = json.loads(art.read_text())
    tc = QCLIFTrainConfig(dataset=c.dataset, hidden=c.hidden, epochs=c.epochs["qclif"], seed=c.seed,
                          **FAMILY_TRAINING["qclif"])
    m = train_qclif(tc, out=out / "train" / "qclif", progress=progress, artefact=art)
    ck = m["checkpoint"]
    n_samples, n_neurons = c.verify["qclif"]
    v = verify_qclif_checkpoint(ck, samples=n_samples, neurons=n_neurons, workers=c.workers,
                                progress=progress)
    model, cfg = model_from_qclif_checkpoint(load_qclif_checkpoint(ck))
    _, _, test, _, _ = make_data(cfg)
    fails = qclif_failures(FMAX_GUARD)
    H = model.sizes[1]

    def fine_tune(fault):
        ta = replace(tc, epochs=c.fine_tune_epochs["qclif"], lr=tc.lr * FINE_TUNE_LR)
        ma = train_qclif(ta, out=out / "train" / "qclif-variation-aware", progress=progress, artefact=art,
                         init_from=ck, fault=fault)
        return model_from_qclif_checkpoint(load_qclif_checkpoint(ma["checkpoint"]))[0], ma["checkpoint"]
    rob = _fault_robustness(c, model, lambda net, spread, rng: install_qclif_faults(net, spread, fails, rng),
                            lambda net: evaluate_qclif(net, test)["accuracy"], 70_000, fine_tune)
    fmax = artefact["fmax_MHz"]
    e_cycle = artefact["nominal"]["energy_per_cycle_active_pJ"]
    steps = m["steps"]
    return {"family": "qclif", "accuracy_model": m["accuracy_test"], "accuracy_circuit": None,
            "neurons": H, "layers": [m["inputs"], H, model.sizes[2]], "steps": steps,
            "energy_per_spike_pJ": artefact["energy_per_spike_pJ"],
            "energy_per_inference_nJ": steps * H * e_cycle * 1e-3,
            "energy_counted": (f"every hidden neuron clocked once per step at the characterized "
                               f"active energy per cycle ({e_cycle:.2f} pJ, random inputs); weight "
                               f"memory, routing and the off-neuron readout not counted"),
            "latency_per_inference_ns": steps * 1e3 / fmax, "clock_MHz": fmax,
            "spikes_per_inference": m["spikes_per_inference"],
            "circuit_check": {"kind": "sampled neurons re-simulated in ngspice at transistor level "
                                      "(sky130 standard cells), every register every step",
                              "samples": v["neuron_samples"], "spike_agreement": v["spike_agreement"],
                              "bit_exact_agreement": v["bit_exact_agreement"]},
            "bit_exact_cycles": artefact["cycles"], "bit_exact": artefact["bit_exact"],
            "artefact": str(art), "artefact_sha256": sha256_of(art), "checkpoint": ck,
            "checkpoint_sha256": sha256_of(ck), "variation": VARIATION["qclif"],
            **rob, "train_wall_s": m["wall_s"]}


RUNNERS = {"memcap": lambda c, o, p: run_memcap_family(c, o, "memcap", p),
           "lif": lambda c, o, p: run_memcap_family(c, o, "lif", p),
           "sfq": run_sfq_family, "qclif": run_qclif_family}


def compare(c: CompareConfig = CompareConfig(), out="runs/compare", progress: bool = False) -> dict:
    """Run every family in ``c.families`` (each result cached as ``out/families/NAME.json``,
    so an interrupted comparison resumes), then write the report. Returns the JSON summary
    (``families``: one object per family; ``report``: the Markdown path)."""
    t0 = time.time()
    out = Path(out)
    unknown = [f for f in c.families if f not in FAMILIES]
    if unknown:
        raise NeurospiceError(f"unknown families {unknown}; choose from {list(FAMILIES)}")
    from neurospice.circuits.errors import TechnologyError
    results, skipped = {}, {}
    for fam in c.families:
        cached = out / "families" / f"{fam}.json"
        key = _config_key(c)
        if cached.exists():
            prev = json.loads(cached.read_text())
            if prev.get("config_key") == key and _unchanged(prev):
                results[fam] = prev
                continue
        if progress:
            print(f"[compare] {fam}", flush=True)
        t = time.time()
        try:
            r = RUNNERS[fam](c, out, progress)
        except TechnologyError as exc:      # e.g. no sky130 PDK here: the other families go on
            skipped[fam] = str(exc)
            if progress:
                print(f"[compare] {fam} skipped: {exc}", flush=True)
            continue
        r.update({"config_key": key, "wall_s": round(time.time() - t, 1)})
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps(r, indent=1, default=_json_default))
        tmp.replace(cached)
        results[fam] = json.loads(cached.read_text())
    if not results:
        raise NeurospiceError(f"no family could run: {skipped}")
    from .report import write_report
    report = write_report(results, c, out, skipped)
    summary = {"families": results, "skipped": skipped, "report": str(report), "dataset": c.dataset,
               "hidden": c.hidden,
               "spreads": list(c.spreads), "config": asdict(c), "wall_s": round(time.time() - t0, 1)}
    (out / "compare.json").write_text(json.dumps(summary, indent=1, default=_json_default))
    return summary


def _config_key(c: CompareConfig) -> str:
    """Everything that decides a family's numbers (not which families run, nor how many workers)."""
    d = asdict(c)
    d.pop("families")
    d.pop("workers")
    d.update(epochs=c.epochs, verify=c.verify, qclif_cycles=c.qclif_cycles, training=FAMILY_TRAINING,
             fine_tune_lr=FINE_TUNE_LR, fine_tune_epochs=c.fine_tune_epochs,
             mc_offset_samples=MC_OFFSET_SAMPLES)
    return json.dumps(d, sort_keys=True, default=list)


def _unchanged(prev: dict) -> bool:
    """A cached family result still describes the files it names."""
    return all(sha256_of(prev.get(k)) == prev.get(f"{k}_sha256") for k in ("artefact", "checkpoint"))


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON: {type(o)}")
