"""The digital qCLIF neuron family (``qclif``, sky130 standard cells) in the registry: CLI
options, characterization, training, verify, NIR export, the comparison row and the transfer
curve, delegating to :mod:`~neurospice.circuits.qclif`, :mod:`~neurospice.characterize.qclif`,
:mod:`~neurospice.training.qclif_net`, :mod:`~neurospice.training.qclif_train` and
:mod:`~neurospice.training.qclif_verify`.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from neurospice.circuits.errors import ConfigError
from neurospice.registry import TRANSFER_STEPS, Family, add_option

from .config import QCLIFTrainConfig
from .family_cli import _given, add_common_train_options, config_from_args, progress_of

#: ``train qclif`` options that map one to one onto QCLIFTrainConfig fields
TRAIN_OPTIONS = ("dataset", "task", "neuron", "bits", "epochs", "hidden", "lr", "seed", "device", "limit")

#: ``compare`` training settings that differ from QCLIFTrainConfig's defaults: none (3e-2, the
#: learning rate used with the float readout before the output neurons, silences the output
#: layer for good on MNIST)
COMPARE_TRAINING: dict = {}


class QCLIFFamily(Family):
    name = "qclif"
    summary = "digital qCLIF neuron (sky130 standard cells): integer two-compartment LIF, recurrent layer"
    order = 10
    color = "tab:green"
    transfer_steps = True
    trainable = True
    comparable = True
    variation = "critical-path delay spread σ_d/d per neuron (CMOS mismatch)"
    legacy_checkpoint_formats = ("neurospice.qclif-checkpoint",)

    def characterize_targets(self):
        return {"qclif": "qCLIF gate netlist in sky130 at transistor level: random cycles bit-exact, fmax, energy"}

    def add_characterize_options(self, p, target):
        p.add_argument("--quick", action="store_true", help="fewer cycles and corners")
        p.add_argument("--bits", type=int, default=8, help="weight and state width")
        p.add_argument("--cycles", type=int, default=None,
                       help="random cycles checked bit-exact (default 200, 80 with --quick)")
        from neurospice.circuits.qclif import DEFAULT_SEED
        p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random cycles' seed (default %(default)s)")
        p.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://host:port")

    def characterize(self, target, args):
        from neurospice.characterize.qclif import characterize_qclif
        from neurospice.circuits.qclif import QCLIFConfig
        r = characterize_qclif(quick=args.quick, out=os.path.join(args.out, "qclif"),
                               cfg=QCLIFConfig.for_bits(args.bits), cycles=args.cycles,
                               workers=args.workers, seed=args.seed, progress=progress_of(args),
                               scheduler=args.scheduler)
        return {k: v for k, v in r.items() if k not in ("cells", "config", "chunks")}

    def add_train_options(self, t):
        d = QCLIFTrainConfig
        add_common_train_options(t, d, {"dataset": "digits | mnist[:PATH] | idx:DIR (row by row) | "
                                                   "dvs:DIR (DVS Gesture, local copy)"})
        t.add_argument("--task", default=d.task, choices=["classify", "context"],
                       help="row-by-row classification or CLIF's context task")
        t.add_argument("--neuron", default=d.neuron, choices=["qclif", "clif"],
                       help="integer qCLIF or its float32 CLIF twin")
        t.add_argument("--bits", type=int, default=d.bits, help="width")
        t.add_argument("--bits-table", default=None, metavar="B1,B2,..",
                       help="train the float CLIF and qCLIF at each width; accuracy-vs-width table")

    def train(self, args):
        cfg = config_from_args(QCLIFTrainConfig, args, TRAIN_OPTIONS)
        if args.bits_table:
            from dataclasses import replace
            try:
                widths = [int(b) for b in args.bits_table.split(",")]
            except ValueError:
                raise ConfigError(f"--bits-table must be whole numbers separated by commas, got "
                                  f"{args.bits_table!r}") from None
            for b in widths:                     # every width refused or accepted before training
                replace(cfg, bits=b)
            from .qclif_train import bits_table
            return bits_table(cfg, widths, out=args.out or "runs/train/qclif-bits",
                              progress=not args.json, resume=not args.fresh)
        from .qclif_train import train_qclif
        name = f"{cfg.neuron}{cfg.bits if cfg.neuron == 'qclif' else ''}-{cfg.task}"
        m = train_qclif(cfg, out=args.out or f"runs/train/{name}", progress=not args.json,
                        resume=not args.fresh)
        return {k: m[k] for k in ("accuracy_test", "checkpoint", "spikes_per_inference", "energy", "plot",
                                  "samples", "wall_s")} | {
            "metrics": str(Path(m["checkpoint"]).parent / "metrics.json")}

    def add_verify_options(self, v):
        add_option(v, "--level", default="transistor", choices=["transistor", "gate"],
                   help="qclif: sky130 cells at transistor level, or the same netlist as XSPICE "
                        "digital gates (event-driven, ~1000x faster: the logic at scale)")
        add_option(v, "--output-neurons", type=int, default=None,
                   help="qclif: output neurons re-simulated per sample (default as many as "
                        "--hidden-neurons; all of them also give the circuit's own accuracy)")

    def verify(self, checkpoint, args):
        from .qclif_verify import verify_qclif_checkpoint
        r = verify_qclif_checkpoint(checkpoint, samples=_given(args.samples, 2), neurons=_given(args.hidden_neurons, 2),
                                    workers=args.workers, progress=not args.json, level=args.level,
                                    output_neurons=args.output_neurons)
        return {k: v for k, v in r.items() if k != "rows"}

    def nir_graph(self, ck):
        return qclif_graph(ck)

    def compare_settings(self, c):
        return {"epochs": 30 if c.quick else 40, "fine_tune_epochs": 5 if c.quick else 8,
                # verify: samples, hidden and output neurons per sample (transistor level, ~3.5 s a cycle)
                "verify": (1, 1, 1) if c.quick else (2, 2, 2), "cycles": 20 if c.quick else 80,
                # the same netlist as XSPICE gates (event-driven, ~1000× faster): the logic at scale
                "verify_gate": (5, 4, 4) if c.quick else (10, 4, 4),
                "training": COMPARE_TRAINING}

    def compare_row(self, c, out, progress=False):
        return qclif_row(self, c, Path(out), progress)

    def describe_failures(self, result):
        return ("a neuron whose critical path is slower by 1+ε than the guard at fmax allows latches "
                "wrong bits (random spikes)")

    def transfer(self, result, drives):
        from neurospice.circuits.qclif import step
        from .qclif_train import load_qclif_checkpoint, model_from_qclif_checkpoint
        q = model_from_qclif_checkpoint(load_qclif_checkpoint(result["checkpoint"]))[0].cfg
        s_s = np.round(np.asarray(drives) * q.threshold).astype(np.int64).clip(*q.bus_range)
        va = np.full(len(drives), q.va_max, np.int64)        # context on: apical saturated (×1)
        v = z = np.zeros(len(drives), np.int64)
        spikes = np.zeros(len(drives))
        for _ in range(TRANSFER_STEPS):
            va, v, z = step(q, va, v, z, np.full(len(drives), q.apical_decay, np.int64), s_s)
            spikes += z
        return s_s / q.threshold, spikes / TRANSFER_STEPS


def qclif_row(family, c, out: Path, progress: bool = False) -> dict:
    from neurospice.characterize.artefact import load_artefact
    from neurospice.characterize.qclif import FMAX_GUARD
    from neurospice.files import sha256_or_none
    from .qclif_train import evaluate_qclif, load_qclif_checkpoint, make_data, model_from_qclif_checkpoint
    from .qclif_train import train_qclif
    from .qclif_verify import verify_qclif_checkpoint
    from .robustness import FINE_TUNE_LR, fault_robustness
    settings = family.compare_settings(c)
    art = out / "artefacts" / "qclif" / "qclif.json"
    if not art.exists():
        from neurospice.characterize.qclif import characterize_qclif
        characterize_qclif(quick=True, cycles=settings["cycles"], out=art.parent, workers=c.workers,
                           progress=progress)
    artefact = load_artefact(art)
    tc = QCLIFTrainConfig(dataset=c.dataset, hidden=c.hidden, epochs=settings["epochs"], seed=c.seed,
                          **settings["training"])
    m = train_qclif(tc, out=out / "train" / "qclif", progress=progress, artefact=art)
    ck = m["checkpoint"]
    n_samples, n_neurons, n_output = settings["verify"]
    v = verify_qclif_checkpoint(ck, samples=n_samples, neurons=n_neurons, output_neurons=n_output,
                                workers=c.workers, progress=progress)
    g_samples, g_neurons, g_output = settings["verify_gate"]
    vg = verify_qclif_checkpoint(ck, samples=g_samples, neurons=g_neurons, output_neurons=g_output,
                                 workers=c.workers, progress=progress, level="gate")
    model, cfg = model_from_qclif_checkpoint(load_qclif_checkpoint(ck))
    _, _, test, _, _ = make_data(cfg)
    fails = qclif_failures(FMAX_GUARD)
    H, n_out = model.sizes[1], model.sizes[2]

    def fine_tune(fault):
        ta = replace(tc, epochs=settings["fine_tune_epochs"], lr=tc.lr * FINE_TUNE_LR)
        ma = train_qclif(ta, out=out / "train" / "qclif-variation-aware", progress=progress, artefact=art,
                         init_from=ck, fault=fault)
        return model_from_qclif_checkpoint(load_qclif_checkpoint(ma["checkpoint"]))[0], ma["checkpoint"]
    rob = fault_robustness(c, model, lambda net, spread, rng: install_qclif_faults(net, spread, fails, rng),
                           lambda net: evaluate_qclif(net, test)["accuracy"], 70_000, fine_tune)
    fmax_Hz = artefact["fmax_MHz"] * 1e6
    cycle_J = artefact["nominal"]["energy_per_cycle_active_pJ"] * 1e-12
    steps = m["steps"]
    return {"accuracy_model": m["accuracy_test"], "neurons": H + n_out, "layers": [m["inputs"], H, n_out],
            "steps": steps, "energy_per_spike_J": artefact["energy_per_spike_pJ"] * 1e-12,
            "energy_per_inference_J": steps * (H + n_out) * cycle_J,
            "energy_counted": (f"every neuron, hidden and output, clocked once per step at the "
                               f"characterized active energy per cycle ({cycle_J * 1e12:.2f} pJ, random "
                               f"inputs); weight memory and routing not counted"),
            "latency_per_inference_s": (steps + 1) / fmax_Hz, "clock_Hz": fmax_Hz,
            "spikes_per_inference": m["spikes_per_inference"],
            "synaptic_ops_per_inference": m["synaptic_ops_per_inference"],
            "energy_breakdown_J": {"neuron_clocked_J": steps * H * cycle_J,
                                   "output_neuron_clocked_J": steps * n_out * cycle_J},
            "circuit_check": {"kind": "sampled hidden and output neurons re-simulated in ngspice at "
                                      "transistor level (sky130 standard cells), every register every step",
                              "samples": v["neuron_samples"], "unit": "neuron-samples",
                              "spike_agreement": v["spike_agreement"],
                              "bit_exact_agreement": v["bit_exact_agreement"]},
            "circuit_check_at_scale": {"kind": "the same gate netlist as XSPICE digital gates in ngspice "
                                               "(event-driven), every register every step",
                                       "level": "gate (XSPICE)",
                                       "samples": vg["neuron_samples"], "unit": "neuron-samples",
                                       "spike_agreement": vg["spike_agreement"],
                                       "bit_exact_agreement": vg["bit_exact_agreement"]},
            "bit_exact_cycles": artefact["cycles"], "bit_exact": artefact["bit_exact"],
            "artefact": str(art), "artefact_sha256": sha256_or_none(art), "checkpoint": ck,
            "checkpoint_sha256": sha256_or_none(ck), **rob, "train_wall_s": m["wall_s"]}


def qclif_failures(guard: float):
    """A critical path slower by ``1+ε`` misses the clock (period = settle × ``guard``)."""
    def fails(eps):
        return np.zeros(len(eps), bool), (1.0 + eps) > guard
    return fails


def install_qclif_faults(model, spread: float, fails, rng: np.random.Generator) -> list:
    """One chip: neurons (hidden and output) that miss timing latch random spikes (p = ½ per step)."""
    import torch
    from .robustness import failure_masks
    gen = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
    hooks = []
    for cell, size in ((model.cell, model.sizes[1]), (model.out_cell, model.sizes[2])):
        _, bad = failure_masks(size, spread, fails, rng)
        if not bad.any():
            continue
        bad_t = torch.as_tensor(bad)

        def hook(module, inputs, output, bad_t=bad_t):
            va, v, z = output
            noise = (torch.rand(z.shape, generator=gen) < 0.5).to(z.dtype).to(z.device)
            return va, v, torch.where(bad_t.to(z.device), noise, z)
        hooks.append(cell.register_forward_hook(hook))
    return hooks


def qclif_graph(ck: dict):
    """Somatic ``Affine`` → ``LIF`` with recurrent ``Linear``; the apical path as metadata; output
    ``Affine`` → ``LIF`` (the output neurons)."""
    import nir
    import torch
    from .nir_export import euler_lif
    from neurospice.circuits.errors import NeurospiceError
    from neurospice.circuits.qclif import QCLIFConfig
    from .qclif_train import model_from_qclif_checkpoint
    model, cfg = model_from_qclif_checkpoint(ck)
    if cfg.neuron != "qclif":
        raise NeurospiceError("only integer qCLIF checkpoints export (a float CLIF has no circuit)")
    q = QCLIFConfig.for_bits(cfg.bits)
    with torch.no_grad():
        w = {k: v.numpy().astype(np.float32) for k, v in model.integer_weights().items()}
    n_in, H, n_out, _ = model.sizes
    beta = 1.0 - 2.0 ** -q.soma_leak_shift
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}),
             "soma_in": nir.Affine(weight=w["w_s"].T, bias=w["b_s"], metadata={"unit": "LSB"}),
             "soma_rec": nir.Linear(weight=w["w_s_rec"].T, metadata={"unit": "LSB", "self_connections": "none"}),
             "neurons": euler_lif(beta, 1.0, float(q.threshold), H, 1.0, **{
                 "neurospice_neuron": "qclif", "bits": cfg.bits, "threshold_LSB": q.threshold,
                 "reset": "subtractive (V -= theta after a spike), saturating",
                 "equations": "Va'=clip(Va+S_a-d_a,0,2^B-1); m=(S_s>>k(Va)) if Va>0 else 0; "
                              "V'=clip(V-(V>>4)+m-z*theta); z'=[acc>=theta]",
                 "apical_w_a_rec_LSB": w["w_a_rec"].T, "apical_b_a_LSB": w["b_a"],
                 "apical_decay_LSB": q.apical_decay}),
             "output_in": nir.Affine(weight=w["w_o"].T, bias=w["b_o"], metadata={"unit": "LSB"}),
             "output_neurons": euler_lif(beta, 1.0, float(q.threshold), n_out, 1.0, **{
                 "neurospice_neuron": "qclif", "bits": cfg.bits, "threshold_LSB": q.threshold,
                 "apical_b_a_LSB": w["b_oa"], "apical_decay_LSB": q.apical_decay,
                 "decision": "most spikes, a tie to the first spike (neurospice.training.neurons.decide)"}),
             "output": nir.Output(output_type={"output": np.array([n_out])})}
    edges = [("input", "soma_in"), ("soma_in", "neurons"), ("neurons", "soma_rec"),
             ("soma_rec", "neurons"), ("neurons", "output_in"), ("output_in", "output_neurons"),
             ("output_neurons", "output")]
    return nodes, edges, {"family": "qclif", "dt_s": 1.0, "steps": 0, "quantization": f"{cfg.bits}-bit integers",
                          "time": "one clock cycle per step; dt_s 1 = one step (the clock sets seconds)",
                          "readout": "output qCLIF neurons (one clock cycle behind the hidden layer), "
                                     "read by decide"}
