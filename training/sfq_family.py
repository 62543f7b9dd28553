"""The superconducting SFQ counting-neuron family (``sfq``) in the registry: CLI options,
characterization, training, verify, NIR export, the comparison row and the transfer curve,
delegating to :mod:`~neurospice.circuits.sfq_cells`, :mod:`~neurospice.characterize.sfq`,
:mod:`~neurospice.training.sfq_net`, :mod:`~neurospice.training.sfq_train` and
:mod:`~neurospice.training.sfq_verify`.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from neurospice.circuits.errors import ConfigError
from neurospice.registry import TRANSFER_STEPS, Family

from neurospice.characterize.sfq_benches import gate_chain_delay_s

from .config import SHIFT_SIDE_PX, SFQTrainConfig
from .family_cli import _given, add_common_train_options, config_from_args, progress_of

#: ``train sfq`` options that map one to one onto SFQTrainConfig fields
TRAIN_OPTIONS = ("dataset", "artefact", "epochs", "hidden", "steps", "max_rate", "outputs_per_class", "augment_px",
                 "lr", "lr_threshold", "seed",
                 "device", "limit")

#: cryogenic cooling: wall-plug watts per watt dissipated at 4 K, for large cryocoolers
#: (Holmes, Ripple, Manheimer, "Energy-efficient superconducting computing — power budgets and
#: requirements", IEEE Trans. Appl. Supercond. 23(3), 1701610, 2013)
CRYO_W_PER_W_4K = 400.0


class SFQFamily(Family):
    name = "sfq"
    summary = ("superconducting SFQ counting neuron (RCSJ junctions): signed synapses (excitatory lines "
               "and inhibit gates), trainable threshold")
    order = 30
    color = "tab:purple"
    transfer_steps = True
    trainable = True
    comparable = True
    variation = "critical-current spread σ_Ic/Ic per neuron"
    legacy_checkpoint_formats = ("neurospice.sfq-checkpoint",)

    def characterize_targets(self):
        return {"sfq": "SFQ cells (truth tables, bias margins) and the counting neuron"}

    def add_characterize_options(self, p, target):
        p.add_argument("--quick", action="store_true", help="thresholds 1, 2, 4 only, coarser bisections")
        p.add_argument("--cells", default=None, metavar="NAME,..",
                       help="cells to characterize (default all; 'none' for the neuron only)")
        p.add_argument("--thresholds", default=None, metavar="T,..",
                       help="neuron thresholds (powers of two; 'none' for the cells only)")
        p.add_argument("--bisection-steps", type=int, default=None, help="halvings per bias-margin side")
        p.add_argument("--rate-steps", type=int, default=None, help="halvings of the maximum-rate search")
        p.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://host:port")

    def characterize(self, target, args):
        from neurospice.characterize.sfq import characterize_sfq
        cells = True if args.cells is None else [c for c in args.cells.split(",") if c not in ("", "none")]
        try:
            thresholds = (None if not args.thresholds else () if args.thresholds == "none"
                          else tuple(int(t) for t in args.thresholds.split(",")))
        except ValueError:
            raise ConfigError(f"--thresholds must be whole numbers separated by commas, got "
                              f"{args.thresholds!r}") from None
        r = characterize_sfq(quick=args.quick, out=os.path.join(args.out, "sfq"), workers=args.workers,
                             scheduler=args.scheduler, progress=progress_of(args), cells=cells,
                             thresholds=thresholds, bisection_steps=args.bisection_steps,
                             rate_steps=args.rate_steps)
        return {k: v for k, v in r.items() if k not in ("cells", "neurons")}

    def add_train_options(self, t):
        d = SFQTrainConfig
        add_common_train_options(t, d)
        t.add_argument("--artefact", default=d.artefact,
                       help="characterize-sfq artefact (default %(default)s, made with --quick on first use)")
        t.add_argument("--steps", type=int, default=d.steps, help="time steps per sample")
        t.add_argument("--max-rate", type=float, default=d.max_rate, help="pulses per step of a white pixel")
        t.add_argument("--outputs-per-class", type=int, default=d.outputs_per_class,
                       help="output neurons per class; a class's vote is their pulses summed")
        t.add_argument("--augment-px", type=int, default=d.augment_px,
                       help="random image shifts (± pixels; default: one per 28 pixels of the image side)")
        t.add_argument("--lr-threshold", type=float, default=d.lr_threshold,
                       help="learning rate of the thresholds and readout scale (--lr: the synapses)")

    def train(self, args):
        cfg = config_from_args(SFQTrainConfig, args, TRAIN_OPTIONS)   # refused here, before torch loads
        from neurospice.circuits.errors import NeurospiceError
        from .sfq_train import train_sfq
        art = Path(cfg.artefact)
        if not art.exists():
            if cfg.artefact != SFQTrainConfig.artefact:
                raise NeurospiceError(f"SFQ artefact {art} not found")
            from neurospice.characterize.sfq import characterize_sfq
            characterize_sfq(quick=True, out=art.parent, progress=not args.json)
        m = train_sfq(cfg, out=args.out or "runs/train/sfq", progress=not args.json, resume=not args.fresh)
        return {k: m[k] for k in ("accuracy_test", "checkpoint", "energy_per_inference_aJ",
                                  "spikes_per_inference", "threshold_histogram", "plot", "wall_s")} | {
            "metrics": str(Path(m["checkpoint"]).parent / "metrics.json")}

    def verify(self, checkpoint, args):
        from .sfq_verify import verify_sfq_checkpoint
        r = verify_sfq_checkpoint(checkpoint, samples=_given(args.samples, 4), neurons=_given(args.hidden_neurons, 3),
                                  workers=args.workers, progress=not args.json)
        return {k: v for k, v in r.items() if k != "rows"}

    def nir_graph(self, ck):
        return sfq_graph(ck)

    def nir_reference(self, ck, samples=None):
        import torch
        from .datasets import encode, load_dataset
        from .sfq_train import model_from_sfq_checkpoint
        model, cfg = model_from_sfq_checkpoint(ck)
        model.eval()
        ds = load_dataset(cfg.dataset, seed=cfg.seed)
        n = len(ds.y_test) if samples is None else min(samples, len(ds.y_test))
        x = encode(torch.as_tensor(ds.x_test[:n]), cfg.steps, "regular", max_rate=cfg.max_rate)
        with torch.no_grad():
            return {"inputs": x, "outputs": {"model": model(x)["out"]}, "labels": ds.y_test[:n],
                    "outputs_per_class": model.outputs_per_class}

    def compare_settings(self, c):
        d = SFQTrainConfig
        return {"epochs": 15, "fine_tune_epochs": 5 if c.quick else 8,
                "outputs_per_class": d.outputs_per_class, "augment_px": d.augment_px,
                "shift_side_px": SHIFT_SIDE_PX,
                "verify": (5, 4) if c.quick else (10, 4), "bisection_steps": 2 if c.quick else 4,
                "cryo_W_per_W": CRYO_W_PER_W_4K}

    def compare_row(self, c, out, progress=False):
        return sfq_row(self, c, Path(out), progress)

    def describe_failures(self, result):
        return ("a neuron whose critical currents are off by ε sees its bias at 1/(1+ε); outside its "
                f"characterized bias window {result.get('bias_window')} it is silent (too low) or "
                "free-running (too high)")

    def transfer(self, result, drives, threshold: int = 4):
        import torch
        from .sfq_net import SFQNeuron
        nrn = SFQNeuron(len(drives), [threshold], init_threshold=threshold)
        pulses = torch.as_tensor(np.round(np.asarray(drives) * threshold), dtype=torch.float32)
        with torch.no_grad():
            out = nrn(pulses.expand(TRANSFER_STEPS, len(drives)).clone())
        return pulses.numpy() / threshold, (out.sum(0) / TRANSFER_STEPS).numpy()


def sfq_row(family, c, out: Path, progress: bool = False) -> dict:
    from neurospice.characterize.artefact import load_artefact
    from neurospice.files import sha256_or_none
    from .datasets import load_dataset
    from .robustness import FINE_TUNE_LR, fault_robustness
    from .sfq_train import evaluate_sfq, load_sfq_checkpoint, model_from_sfq_checkpoint, train_sfq
    from .sfq_verify import verify_sfq_checkpoint
    settings = family.compare_settings(c)
    art = out / "artefacts" / "sfq" / "sfq.json"
    if not art.exists():
        from neurospice.characterize.sfq import characterize_sfq
        # the neuron only (the cell table is not needed for training), thresholds 1, 2, 4
        characterize_sfq(quick=True, cells=False, bisection_steps=settings["bisection_steps"],
                         out=art.parent, workers=c.workers, progress=progress,
                         margins_for=(4,) if c.quick else None)
    s = load_artefact(art)["summary"]
    tc = SFQTrainConfig(dataset=c.dataset, artefact=str(art), hidden=c.hidden, epochs=settings["epochs"],
                        seed=c.seed)
    m = train_sfq(tc, out=out / "train" / "sfq", progress=progress)
    ck = m["checkpoint"]
    n_samples, n_neurons = settings["verify"]
    v = verify_sfq_checkpoint(ck, samples=n_samples, neurons=n_neurons, workers=c.workers, progress=progress)
    model, cfg = model_from_sfq_checkpoint(load_sfq_checkpoint(ck))
    ds = load_dataset(c.dataset, seed=c.seed)
    # the narrowest measured bias window (every threshold shares the cells and bias network)
    window = min((n for n in s["neurons"].values() if n.get("bias_low") is not None),
                 key=lambda n: n["bias_high"] - n["bias_low"])
    fails = sfq_failures(window["bias_low"], window["bias_high"])

    def fine_tune(fault):
        ta = replace(tc, epochs=settings["fine_tune_epochs"], lr=tc.lr * FINE_TUNE_LR)
        ma = train_sfq(ta, out=out / "train" / "sfq-variation-aware", progress=progress, init_from=ck,
                       fault=fault)
        return model_from_sfq_checkpoint(load_sfq_checkpoint(ma["checkpoint"]))[0], ma["checkpoint"]
    rob = fault_robustness(c, model, lambda net, spread, rng: install_sfq_faults(net, spread, fails, rng),
                           lambda net: evaluate_sfq(net, ds.x_test, ds.y_test, cfg)["accuracy"],
                           60_000, fine_tune)
    # a step: its excitatory pulses at the maximum rate, then their way through the gate chain
    step_s = (s["fan_in"] / (s["max_input_rate_GHz"] * 1e9)
              + gate_chain_delay_s(s.get("fan_in_inhibitory", 0)))
    spike_J = s["energy_per_spike_aJ"] * 1e-18
    inference_J = m["energy_per_inference_aJ"] * 1e-18
    return {"accuracy_model": m["accuracy_test"], "neurons": sum(model.sizes[1:]), "layers": model.sizes,
            "outputs_per_class": model.outputs_per_class,
            "steps": cfg.steps, "energy_per_spike_J": spike_J, "energy_per_inference_J": inference_J,
            "energy_counted": (f"bias-source work per switching + static bias power over one spike "
                               f"period at the maximum input rate ({spike_J * 1e18:.0f} aJ "
                               f"per pulse, every hidden and output pulse); cryocooling NOT included: "
                               f"× {CRYO_W_PER_W_4K:.0f} W/W at 4 K"),
            "cryo_factor": CRYO_W_PER_W_4K,
            "energy_per_inference_with_cryo_J": inference_J * CRYO_W_PER_W_4K,
            "latency_per_inference_s": cfg.steps * step_s, "clock_Hz": 1 / step_s,
            "spikes_per_inference": m["spikes_per_inference"],
            "synaptic_ops_per_inference": m["synaptic_ops_per_inference"],
            "energy_breakdown_J": {"switching_and_static_bias_J": inference_J},
            "circuit_check": {"kind": "sampled hidden neurons re-simulated in ngspice (RCSJ junctions)",
                              "samples": v["neuron_samples"], "unit": "neuron-samples",
                              "spike_agreement": v["spike_agreement"]},
            "artefact": str(art), "artefact_sha256": sha256_or_none(art), "checkpoint": ck,
            "checkpoint_sha256": sha256_or_none(ck), "bias_window": [window["bias_low"], window["bias_high"]],
            **rob, "train_wall_s": m["wall_s"]}


def sfq_failures(bias_low: float, bias_high: float):
    """Critical currents ×(1+ε) put the bias at ``1/(1+ε)`` of nominal: below ``bias_low``
    the junctions never switch (silent), above ``bias_high`` they run free (a pulse every step)."""
    def fails(eps):
        b = 1.0 / np.maximum(1.0 + eps, 1e-6)
        return b < bias_low, b > bias_high
    return fails


def install_sfq_faults(model, spread: float, fails, rng: np.random.Generator) -> list:
    from .robustness import failure_masks, stuck_hook
    """One chip: failure masks per SFQ layer (``fails``) as forward hooks; returns the handles."""
    hooks = []
    for layer in (model.soma1, model.soma2):
        lo, hi = failure_masks(layer.theta.numel(), spread, fails, rng)
        if lo.any() or hi.any():
            hooks.append(layer.register_forward_hook(stuck_hook(lo, hi)))
    return hooks


def sfq_graph(ck: dict):
    """``Linear`` (+1 excitatory, −1 inhibitory, 0 none) → ``IF`` (threshold T) per layer. NIR
    has no inhibit-gate rule (a token per inhibitory line, capacity one, cancelling the next
    excitatory pulse): a NIR ``IF`` subtracts inhibitory pulses from its membrane instead."""
    import nir
    import torch
    from .sfq_train import model_from_sfq_checkpoint
    model, cfg = model_from_sfq_checkpoint(ck)
    nodes, edges, prev = {"input": nir.Input(input_type={"input": np.array([model.sizes[0]])})}, [], "input"
    for i, (wire, soma) in enumerate(((model.wire1, model.soma1), (model.wire2, model.soma2))):
        with torch.no_grad():
            mask = wire.mask().detach().numpy().T.astype(np.float32)          # [out, in], −1/0/1
            thr = soma.threshold().detach().numpy().astype(np.float32)
        nodes[f"wires{i}"] = nir.Linear(weight=mask, metadata={"unit": "pulses", "fan_in": wire.fan_in})
        nodes[f"neurons{i}"] = nir.IF(r=np.ones_like(thr), v_threshold=thr, v_reset=np.zeros_like(thr), metadata={
            "neurospice_neuron": "sfq-counter", "thresholds_allowed": np.asarray(model.spec["thresholds"], np.float32),
            "reset": "subtractive: c -= T per output pulse; floor(c/T) pulses per step",
            "inhibition": ("per inhibitory line a gate token (capacity one) set by its pulses at the step's "
                           "start; each excitatory pulse is absorbed by the first gate holding one")})
        edges += [(prev, f"wires{i}"), (f"wires{i}", f"neurons{i}")]
        prev = f"neurons{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([model.sizes[-1]])})
    edges.append((prev, "output"))
    return nodes, edges, {"family": "sfq", "dt_s": 0.0, "steps": cfg.steps,
                          "readout": (f"class k = output neurons k·P … k·P+P−1 (P = {model.outputs_per_class}); "
                                      "the class whose neurons fire the most pulses in all wins"),
                          "outputs_per_class": model.outputs_per_class, "quantization": "ternary synapses",
                          "time": "event-driven; dt_s 0 = a step is one input window, not a fixed time"}
