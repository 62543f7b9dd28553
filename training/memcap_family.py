"""The memcapacitive neuron family (``memcap``) and its ideal reference (``lif``) in the
registry: CLI options, characterization targets, training, verify, NIR export, the
comparison row and the transfer curve, each delegating to the memcap stage modules
(:mod:`~neurospice.circuits.memcap`, :mod:`~neurospice.characterize.memcap`,
:mod:`~neurospice.characterize.memcap_diff`, :mod:`~neurospice.training.memcap_train`,
:mod:`~neurospice.training.memcap_verify`).

``lif`` is the memcap network's linearized LIF neuron with analog weights, trained as memcap
``--mode ideal``: its checkpoints are memcap checkpoints; it has no circuit (no energy,
latency or circuit check) and exists for ``compare``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neurospice.registry import Family, add_option

from .config import MemcapTrainConfig
from .family_cli import _given, add_common_train_options, config_from_args, progress_of

#: ``train memcap`` options that map one to one onto MemcapTrainConfig fields
TRAIN_OPTIONS = ("dataset", "mode", "curve", "epochs", "hidden", "steps", "encoding", "init_from", "lr",
                 "augment_px", "max_rate", "levels", "program_sigma", "offset_sigma_V", "seed", "device", "limit")

#: Monte Carlo samples of the comparator's offset for ``compare`` (``characterize memcap-diff --mc``)
MC_OFFSET_SAMPLES = 16

#: ``compare`` training settings that differ from MemcapTrainConfig's defaults (chosen on the
#: validation split of digits with 64 hidden neurons: a white pixel spiking every step, a
#: larger step size; 8 time steps like qCLIF's 8 rows and SFQ's default)
COMPARE_TRAINING = {"max_rate": 1.0, "lr": 3e-2, "steps": 8}


class MemcapFamily(Family):
    name = "memcap"
    summary = "analog memcapacitive neuron (after Oshio et al., COOL CHIPS 2022), generic 180 nm or sky130"
    order = 20
    color = "tab:blue"
    trainable = True
    comparable = True
    variation = "capacitance spread σ_C/C per device, + comparator offset mismatch (Monte Carlo σ)"
    legacy_checkpoint_formats = ("neurospice.checkpoint",)   # version 1, before 'family'
    verifies_whole_network = True
    train_mode = "aware"          #: what ``compare`` trains this family as

    # -- characterize --------------------------------------------------------------------
    def characterize_targets(self):
        return {"memcap": "single-ended memcapacitive neuron: one step's membrane curve",
                "memcap-diff": "the signed-weight (differential) neuron's tables for training"}

    def add_characterize_options(self, p, target):
        p.add_argument("--corner", default="tt", choices=["tt", "ff", "ss", "fs", "sf"])
        p.add_argument("--temperature", type=float, default=27.0, help="°C")
        p.add_argument("--mc", type=int, default=0,
                       help="Monte-Carlo mismatch samples (memcap: per point; memcap-diff: of the "
                            "comparator offset, giving threshold_mc.offset_sigma_V)")
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://host:port")
        if target == "memcap":
            p.add_argument("--quick", action="store_true", help="small sweep (~1 min on 2 cores)")
            p.add_argument("--technology", default="generic", choices=["generic", "sky130"],
                           help="generic: built-in illustrative models; sky130: SkyWater PDK")
            p.add_argument("--vdd", type=float, default=None, help="supply and spike amplitude, V")
            p.add_argument("--fan-in", type=int, default=64, help="synapses per neuron row")
        else:
            p.add_argument("--layer-fan-in", type=int, action="append",
                           help="fan-in of a layer to tabulate (repeat; default 784 and 256)")

    def characterize(self, target, args):
        out = os.path.join(args.out, "memcap")
        if target == "memcap":
            from neurospice.characterize.memcap import characterize_memcap
            return characterize_memcap(quick=args.quick, corner=args.corner, technology=args.technology,
                                       temperature_C=args.temperature, fan_in=args.fan_in,
                                       mc_samples=args.mc, seed=args.seed, workers=args.workers,
                                       scheduler=args.scheduler, vdd_V=[args.vdd] if args.vdd else None,
                                       out=out, progress=progress_of(args))
        from neurospice.characterize.memcap_diff import characterize_memcap_diff
        return characterize_memcap_diff(fan_ins=args.layer_fan_in or (784, 256), corner=args.corner,
                                        temperature_C=args.temperature, workers=args.workers,
                                        scheduler=args.scheduler, out=out, progress=progress_of(args),
                                        mc_samples=args.mc, seed=args.seed)

    # -- train ---------------------------------------------------------------------------
    def add_train_options(self, t):
        d = MemcapTrainConfig
        add_common_train_options(t, d)
        t.add_argument("--mode", default=d.mode, choices=["aware", "naive", "ideal"])
        t.add_argument("--curve", default=d.curve,
                       help="memcap-diff artefact (default %(default)s, made on first use if missing)")
        t.add_argument("--steps", type=int, default=d.steps, help="time steps per sample (10 ns each)")
        t.add_argument("--encoding", default=d.encoding, choices=["rate", "regular", "latency"])
        t.add_argument("--init-from", default=d.init_from, metavar="CHECKPOINT",
                       help="start from a checkpoint's weights (e.g. fine-tune an ideal run as aware)")
        t.add_argument("--augment-px", type=int, default=d.augment_px,
                       help="random image shifts of up to ± this many pixels during training "
                            "(0: off; default: 1 per 14 pixels of image side)")
        t.add_argument("--max-rate", type=float, default=d.max_rate,
                       help="rate and regular encodings: spikes per step of a white pixel (default %(default)s)")
        t.add_argument("--levels", type=int, default=d.levels, help="states per memcapacitor")
        t.add_argument("--program-sigma", type=float, default=d.program_sigma,
                       help="relative programming variation per device")
        t.add_argument("--offset-sigma", dest="offset_sigma_V", type=float, default=d.offset_sigma_V,
                       help="comparator offset mismatch per neuron, V (σ; e.g. the artefact's "
                            "threshold_mc.offset_sigma_V from characterize memcap-diff --mc N)")

    def train(self, args):
        cfg = config_from_args(MemcapTrainConfig, args, TRAIN_OPTIONS)   # refused here, before torch loads
        from neurospice.circuits.errors import NeurospiceError
        from .datasets import load_dataset
        from .memcap_train import train_memcap
        curve = Path(cfg.curve)
        if not curve.exists():
            if cfg.curve != MemcapTrainConfig.curve:   # only the default artefact is made on demand
                raise NeurospiceError(f"curve artefact {curve} not found")
            from neurospice.characterize.memcap_diff import characterize_memcap_diff
            n_in = load_dataset(cfg.dataset).n_inputs  # the layers' fan-ins decide the tables
            characterize_memcap_diff(fan_ins=(n_in, cfg.hidden), out=curve.parent,
                                     workers=os.cpu_count() or 1, progress=not args.json)
        m = train_memcap(cfg, out=args.out or f"runs/train/memcap-{cfg.mode}",
                         progress=not args.json, resume=not args.fresh)
        return {k: m[k] for k in ("mode", "accuracy_test", "checkpoint", "energy_per_inference_nJ",
                                  "spikes_per_inference", "plot", "wall_s")} | {
            "metrics": str(Path(m["checkpoint"]).parent / "metrics.json")}

    # -- verify --------------------------------------------------------------------------
    def add_verify_options(self, v):
        add_option(v, "--device-model", default="read", choices=["read", "biolek"],
                   help="memcap: memcapacitors as read-regime capacitors or the full Biolek model")

    def verify(self, checkpoint, args):
        from .memcap_verify import verify_checkpoint, verify_whole_network
        if args.whole_network:
            return verify_whole_network(checkpoint, samples=_given(args.samples, 100), workers=args.workers,
                                        device_model=args.device_model, progress=not args.json)
        return verify_checkpoint(checkpoint, samples=_given(args.samples, 100),
                                 hidden_neurons=_given(args.hidden_neurons, 0), workers=args.workers,
                                 device_model=args.device_model, progress=not args.json)

    # -- export --------------------------------------------------------------------------
    def nir_graph(self, ck):
        return memcap_graph(ck)

    def nir_reference(self, ck, samples=None):
        import torch
        from .datasets import encode, load_dataset
        from .memcap_net import MemcapSNN
        from .memcap_train import model_from_checkpoint
        model, cfg, artefact = model_from_checkpoint(ck)
        model.eval()
        ds = load_dataset(cfg.dataset, seed=cfg.seed)
        n = len(ds.y_test) if samples is None else min(samples, len(ds.y_test))
        x = encode(torch.as_tensor(ds.x_test[:n]), cfg.steps, cfg.encoding, seed=20_000, max_rate=cfg.max_rate)
        outputs = {}
        with torch.no_grad():
            if cfg.mode != "aware":              # the ideal neuron on analog weights: what NIR holds
                outputs["model"] = model(x, record=True)[1][-1]
            else:                                # exported: the mapped device pairs, linearized neuron
                model.quantize = True
                outputs["model"] = model(x, model.capacitances(), record=True)[1][-1]
                lin = MemcapSNN(artefact, model.sizes, neuron="ideal", device_map=model.device_map)
                lin.load_state_dict(model.state_dict(), strict=False)
                outputs["linearized"] = lin(x, lin.capacitances(), record=True)[1][-1]
        return {"inputs": x, "outputs": outputs, "labels": ds.y_test[:n]}

    # -- compare -------------------------------------------------------------------------
    def compare_settings(self, c):
        epochs = 20 if c.quick else 30
        return {"epochs": epochs, "fine_tune_epochs": epochs, "verify_samples": c.verify_samples,
                "training": COMPARE_TRAINING, "mc_offset_samples": MC_OFFSET_SAMPLES,
                "mode": self.train_mode}

    def compare_row(self, c, out, progress=False):
        from .memcap_compare import memcap_row
        return memcap_row(self, c, Path(out), progress)

    def describe_failures(self, result):
        sig = result.get("comparator_offset_sigma_mV")
        return ("every capacitance ×(1 + σ·N(0,1))" +
                (f"; at every σ > 0 each neuron's comparator offset off by N(0, {sig:.1f} mV) "
                 "(its Monte Carlo σ)" if sig else ""))

    def transfer(self, result, drives):
        from .memcap_compare import memcap_transfer
        return memcap_transfer(result["checkpoint"], drives)


class LifFamily(MemcapFamily):
    name = "lif"
    summary = "ideal reference: the memcap network's linearized LIF neuron, analog weights (no circuit)"
    order = 40
    color = "tab:gray"
    trainable = False
    variation = "weight (capacitance) spread σ_C/C per synapse"
    legacy_checkpoint_formats = ()
    verifies_whole_network = False
    train_mode = "ideal"

    def characterize_targets(self):
        return {}

    def describe_failures(self, result):
        return "every capacitance ×(1 + σ·N(0,1)) (no comparator: the ideal neuron)"

    def verify(self, checkpoint, args):
        raise self._lacks("circuit to verify against (the ideal reference)")


def memcap_graph(ck: dict):
    """Per layer ``Linear`` (C+ − C− in fF) → ``LIF`` (the linearized neuron, tables as metadata)."""
    import nir
    import torch
    from .nir_export import EXPORT_CHIP_SEED, euler_lif
    from .memcap_net import IdealNeuron, nearest_layer
    from .memcap_train import model_from_checkpoint
    model, cfg, artefact = model_from_checkpoint(ck)
    model.eval()
    if cfg.mode == "aware":
        model.quantize = True
    dt = float(artefact["summary"]["step_s"])
    with torch.no_grad():      # one chip, the same every export (programming spread, if any)
        caps = model.capacitances(generator=torch.Generator().manual_seed(EXPORT_CHIP_SEED))
    nodes, edges, prev = {"input": nir.Input(input_type={"input": np.array([model.sizes[0]])})}, [], "input"
    for i, ((cp, cn), n_in, n_out) in enumerate(zip(caps, model.sizes[:-1], model.sizes[1:])):
        cp, cn = cp.numpy().T.astype(np.float32), cn.numpy().T.astype(np.float32)   # [out, in]
        nodes[f"synapses{i}"] = nir.Linear(weight=cp - cn, metadata={
            "unit": "fF", "c_pos_fF": cp, "c_neg_fF": cn,
            "scheme": "differential pair per weight: C+ onto the positive membrane, C− onto the negative"})
        table = nearest_layer(artefact, n_in)
        lin = IdealNeuron.from_table(table, artefact["threshold"], artefact["summary"]["v_reset_neg_V"])
        meta = {"neurospice_neuron": "memcap-diff" if cfg.mode != "ideal" else "memcap-ideal (linearized)",
                "units": "state V, input fF per step", "reset": "to 0 V (negative membrane to V_ref)"}
        if cfg.mode != "ideal":
            meta.update({"table_v_mem0_V": np.asarray(table["v_mem0_V"], np.float32),
                         "table_c_active_fF": np.asarray(table["c_active_fF"], np.float32),
                         "table_v_mem_peak_V": np.asarray(table["v_mem_peak_V"], np.float32),
                         "table_v_mem_end_V": np.asarray(table["v_mem_end_V"], np.float32),
                         "offset_v_neg_V": np.asarray(artefact["threshold"]["v_neg_V"], np.float32),
                         "offset_V": np.asarray(artefact["threshold"]["offset_V"], np.float32),
                         "v_ref_V": float(artefact["summary"]["v_reset_neg_V"])})
        nodes[f"neurons{i}"] = euler_lif(lin.beta, lin.gain, lin.threshold, n_out, dt, **meta)
        edges += [(prev, f"synapses{i}"), (f"synapses{i}", f"neurons{i}")]
        prev = f"neurons{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([model.sizes[-1]])})
    edges.append((prev, "output"))
    return nodes, edges, {"family": "memcap" if cfg.mode != "ideal" else "lif", "dt_s": dt,
                          "readout": "class = most output spikes over the steps",
                          "steps": cfg.steps, "quantization": f"{cfg.levels} levels per device"
                          if cfg.mode != "ideal" else "analog weights"}
