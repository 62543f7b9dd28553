"""The user's own neuron circuit as a family (``custom``): a SPICE subcircuit plus a TOML
description (:mod:`neurospice.circuits.custom`), through every verb.

``characterize custom --neuron FILE.toml`` and ``train custom --neuron FILE.toml`` take the
description; ``verify`` and ``export`` read it from the checkpoint (which embeds the
artefact); ``compare --families custom:FILE.toml,...`` puts the circuit beside the built-in
families — the registry hands ``custom:FILE.toml`` to :meth:`CustomFamily.with_argument`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neurospice.registry import TRANSFER_STEPS, Family, FamilyError, add_option

from .config import CustomTrainConfig
from .family_cli import _given, add_common_train_options, config_from_args, progress_of

#: ``train custom`` options that map one to one onto CustomTrainConfig fields
TRAIN_OPTIONS = ("neuron", "artefact", "dataset", "mode", "epochs", "hidden", "steps", "encoding", "max_rate",
                 "augment_px", "lr", "levels", "current_sigma", "seed", "device", "limit", "quick", "init_from")
#: verify defaults: test samples, hidden neurons per sample
VERIFY_DEFAULTS = (20, 8)


class CustomFamily(Family):
    name = "custom"
    summary = "your own analog neuron circuit: a SPICE subcircuit + a TOML description (--neuron FILE.toml)"
    order = 50
    color = "tab:purple"
    trainable = True
    comparable = False          #: needs a description: compare takes custom:FILE.toml
    variation = "synapse current spread σ per synapse (ideal current sources)"
    failure_model = "every synapse current ×(1 + σ·N(0,1)), one draw per chip"
    neuron: str | None = None   #: the TOML of a ``custom:FILE.toml`` instance

    def with_argument(self, argument: str) -> "CustomFamily":
        """The family of one neuron description (``custom:FILE.toml``), ready for ``compare``."""
        from neurospice.circuits.custom import load_neuron
        spec = load_neuron(argument)          # refused here, before anything runs
        fam = CustomFamily()
        # named as the user wrote it, so the registry finds it again from a result's name
        fam.neuron, fam.name, fam.comparable = argument, f"custom:{argument}", True
        return fam

    # -- characterize --------------------------------------------------------------------
    def characterize_targets(self):
        return {"custom": "your own neuron circuit (SPICE subcircuit + TOML): one step's tables"}

    def add_characterize_options(self, p, target):
        p.add_argument("--neuron", required=True, metavar="FILE.toml", help="the neuron's description")
        p.add_argument("--quick", action="store_true", help="coarse grid (≤ 2 min)")
        p.add_argument("--corner", action="append", help="process corner (repeat; default tt)")
        p.add_argument("--temperature", type=float, action="append", help="°C (repeat; default 27)")
        p.add_argument("--mc", type=int, default=0, help="Monte-Carlo mismatch samples of the grid")
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://host:port")

    def characterize(self, target, args):
        from neurospice.characterize.custom import characterize_custom
        return characterize_custom(args.neuron, quick=args.quick, corners=args.corner or ["tt"],
                                   temperatures_C=args.temperature or [27.0], mc_samples=args.mc,
                                   seed=args.seed, workers=args.workers, scheduler=args.scheduler,
                                   out=os.path.join(args.out, "custom"), progress=progress_of(args))

    # -- train ---------------------------------------------------------------------------
    def add_train_options(self, t):
        d = CustomTrainConfig
        add_common_train_options(t, d)
        t.add_argument("--neuron", default=None, metavar="FILE.toml",
                       help="the neuron's description (characterized on first use)")
        t.add_argument("--artefact", default=None, help="a characterize-custom artefact instead")
        t.add_argument("--mode", default=d.mode, choices=["aware", "naive", "ideal"])
        t.add_argument("--steps", type=int, default=d.steps, help="time steps per sample (step_s each)")
        t.add_argument("--encoding", default=d.encoding, choices=["rate", "regular", "latency"])
        t.add_argument("--max-rate", type=float, default=d.max_rate, help="spikes per step of a white pixel")
        t.add_argument("--augment-px", type=int, default=d.augment_px, help="random image shifts (± pixels)")
        t.add_argument("--levels", type=int, default=d.levels,
                       help="quantization levels of each synapse current's magnitude (0: analog)")
        t.add_argument("--current-sigma", type=float, default=d.current_sigma,
                       help="relative spread of each synapse current (one draw per chip)")
        t.add_argument("--quick", action="store_true", help="characterize on first use with the coarse grid")
        t.add_argument("--init-from", default=None, metavar="CHECKPOINT", help="start from a checkpoint's weights")

    def train(self, args):
        cfg = config_from_args(CustomTrainConfig, args, TRAIN_OPTIONS)   # refused here, before torch loads
        from .custom_train import train_custom
        m = train_custom(cfg, out=args.out, progress=not args.json, resume=not args.fresh,
                         workers=os.cpu_count() or 1)
        e = m["energy_per_inference_J"]
        return {k: m[k] for k in ("mode", "neuron", "accuracy_test", "checkpoint", "spikes_per_inference",
                                  "plot", "wall_s")} | {
            "energy_per_inference_nJ": e * 1e9 if e is not None else None,
            "metrics": str(Path(m["checkpoint"]).parent / "metrics.json")}

    # -- verify --------------------------------------------------------------------------
    def add_verify_options(self, v):
        add_option(v, "--scheduler", default=None, help="Dask scheduler address tcp://host:port (custom)")

    def verify(self, checkpoint, args):
        from .custom_verify import verify_checkpoint
        return verify_checkpoint(checkpoint, samples=_given(args.samples, VERIFY_DEFAULTS[0]),
                                 hidden_neurons=_given(args.hidden_neurons, VERIFY_DEFAULTS[1]),
                                 workers=args.workers, scheduler=getattr(args, "scheduler", None),
                                 progress=not args.json)

    # -- export --------------------------------------------------------------------------
    def nir_graph(self, ck):
        return custom_graph(ck)

    # -- compare -------------------------------------------------------------------------
    def compare_settings(self, c):
        return {"neuron": self._spec_digest(), "epochs": 15 if c.quick else 25,
                # an analog family: every output neuron of ``verify_samples`` samples, and
                # sampled hidden neurons (fewer in a quick run)
                "verify": (c.verify_samples, 4 if c.quick else VERIFY_DEFAULTS[1]), "quick_grid": c.quick}

    def _spec_digest(self) -> str:
        if not self.neuron:
            raise FamilyError("compare needs the neuron's description: --families custom:FILE.toml")
        from neurospice.circuits.custom import load_neuron
        return load_neuron(self.neuron).identity()[:16]

    def compare_row(self, c, out, progress=False):
        return custom_row(self, c, Path(out), progress)

    def transfer(self, result, drives):
        """The first layer's neuron under a constant current, ``drives`` in units of its firing
        current at rest (one-step boundary)."""
        import torch
        from .custom_train import load_checkpoint, model_from_checkpoint
        model, _, _ = model_from_checkpoint(load_checkpoint(result["checkpoint"]))
        nrn = model.neurons[0]
        from .neurons import interp1d
        unit = float(interp1d(nrn.boundary, nrn.v_axis, torch.tensor(nrn.rest_V)))   # firing current at rest
        if unit <= 0:              # a neuron that fires from rest without input: the range's top
            unit = float(nrn.i_axis[-1])
        i = torch.as_tensor(drives, dtype=torch.float32) * unit
        v, total = nrn.initial_state((len(drives),)), torch.zeros(len(drives))
        with torch.no_grad():
            for _ in range(TRANSFER_STEPS):
                z, v = nrn(i, v)
                total += z
        return np.asarray(drives), (total / TRANSFER_STEPS).numpy()


def custom_row(family: CustomFamily, c, out: Path, progress: bool = False) -> dict:
    """characterize (coarse grid with ``--quick``) → train aware → verify → current spread,
    with and without variation-aware fine-tuning."""
    from dataclasses import replace

    import torch

    from neurospice.characterize.artefact import load_artefact
    from neurospice.characterize.custom import characterize_custom
    from neurospice.circuits.custom import load_neuron
    from neurospice.files import sha256_or_none
    from .custom_train import evaluate, load_checkpoint, model_from_checkpoint, train_custom
    from .custom_verify import verify_checkpoint
    from .datasets import load_dataset
    from .robustness import FINE_TUNE_LR, paired_gain, spread_curve
    settings = family.compare_settings(c)
    spec = load_neuron(family.neuron)
    r = characterize_custom(spec, quick=c.quick, workers=c.workers, out=out / "artefacts" / "custom",
                            progress=progress)
    art = Path(r["artefact"])
    artefact = load_artefact(art)
    tc = CustomTrainConfig(neuron=family.neuron, artefact=str(art), dataset=c.dataset, hidden=c.hidden,
                           epochs=settings["epochs"], seed=c.seed)
    safe = f"custom-{spec.name}"
    m = train_custom(tc, out=out / "train" / safe, progress=progress, workers=c.workers)
    ck = m["checkpoint"]
    n_samples, n_hidden = settings["verify"]
    v = verify_checkpoint(ck, samples=n_samples, hidden_neurons=n_hidden, workers=c.workers, progress=progress)
    step_s = artefact["summary"]["step_s"]
    sizes = load_checkpoint(ck)["sizes"]
    row = {"accuracy_model": m["accuracy_test"], "accuracy_circuit": v["accuracy_circuit"],
           "accuracy_model_on_verified": v["accuracy_model"],
           "neurons": sum(sizes[1:]), "layers": sizes, "steps": tc.steps,
           "spikes_per_inference": m["spikes_per_inference"],
           "energy_per_inference_J": m["energy_per_inference_J"],
           "synaptic_ops_per_inference": m["synaptic_ops_per_inference"],
           "energy_breakdown_J": m["energy_breakdown_J"],
           "energy_per_spike_J": artefact["summary"].get("energy_per_spike_J"),
           "energy_counted": m["energy_counted"], "latency_per_inference_s": tc.steps * step_s,
           "clock_Hz": 1 / step_s, "artefact": str(art), "artefact_sha256": sha256_or_none(art),
           "checkpoint": ck, "checkpoint_sha256": sha256_or_none(ck), "train_wall_s": m["wall_s"],
           "neuron_description": str(family.neuron),
           "circuit_check": {"kind": "output neurons and sampled hidden neurons re-simulated over whole "
                                     "sample sequences in ngspice", "samples": v["samples"],
                             "unit": "samples", "spike_agreement": v["spike_agreement"]}}

    def spread(ck_path):
        model, cfg, _ = model_from_checkpoint(load_checkpoint(ck_path))
        model.eval()
        ds = load_dataset(cfg.dataset, seed=cfg.seed)

        def at(s, d):
            model.current_sigma = s
            return evaluate(model, ds.x_test, ds.y_test, cfg, seed=50_000 + 97 * d)["accuracy"]
        with torch.no_grad():
            return spread_curve(at, c.spreads, c.draws)
    row["robustness"] = spread(ck)
    s_max = max(c.spreads)
    if s_max > 0:
        ta = replace(tc, current_sigma=s_max, epochs=settings["epochs"], lr=tc.lr * FINE_TUNE_LR, init_from=ck)
        ma = train_custom(ta, out=out / "train" / f"{safe}-variation-aware", progress=progress,
                          workers=c.workers)
        row["robustness_variation_aware"] = spread(ma["checkpoint"])
        row["variation_aware_gain"] = paired_gain(row["robustness"], row["robustness_variation_aware"])
        row["variation_aware_checkpoint"] = ma["checkpoint"]
    return row


def custom_graph(ck: dict):
    """Per layer ``Linear`` (synapse currents, A) → ``LIF`` (the linearized neuron; the tables
    as metadata). NIR's LIF is ``τ·du/dt = (v_leak − u) + R·I``: one Euler step of ``dt`` is the
    fit ``u' = β·u + g·I + c`` with ``dt/τ = 1 − β``, ``R = g/(1 − β)``, ``v_leak = c/(1 − β)``."""
    import nir
    import torch
    from .custom_train import model_from_checkpoint
    from .nir_export import EXPORT_CHIP_SEED
    model, cfg, artefact = model_from_checkpoint(ck)
    model.eval()
    lif, s = artefact["fits"]["lif"], artefact["summary"]
    dt = float(s["step_s"])
    leak = max(1.0 - lif["beta"], 1e-9)
    with torch.no_grad():      # one chip, the same every export (current spread, if any)
        currents = model.currents(generator=torch.Generator().manual_seed(EXPORT_CHIP_SEED))
    nodes, edges, prev = {"input": nir.Input(input_type={"input": np.array([model.sizes[0]])})}, [], "input"
    for k, (c, n_out) in enumerate(zip(currents, model.sizes[1:])):
        nodes[f"synapses{k}"] = nir.Linear(weight=(c.numpy().T * 1e-6).astype(np.float32),
                                           metadata={"unit": "A", "scheme": "one ideal current source per synapse"})
        one = np.ones(n_out, dtype=np.float32)
        m = artefact["model"]
        nodes[f"neurons{k}"] = nir.LIF(
            tau=one * dt / leak, r=one * lif["gain_V_per_A"] / leak, v_leak=one * lif["offset_V"] / leak,
            v_threshold=one * lif["threshold_V"], v_reset=one * s["rest_V"], metadata={
                "neurospice_neuron": f"custom:{artefact['neuron']['name']} (linearized; tables below)",
                "table_v_mem0_V": np.asarray(m["v_mem0_V"], np.float32),
                "table_i_in_A": np.asarray(m["i_in_A"], np.float32),
                "table_boundary_A": np.asarray(m["boundary_A"], np.float32),
                "table_v_end_quiet_V": np.asarray(m["v_end_quiet_V"], np.float32),
                "table_v_end_fired_V": np.asarray(m["v_end_fired_V"], np.float32),
                "netlist_sha256": artefact["provenance"]["netlist_hash"]})
        edges += [(prev, f"synapses{k}"), (f"synapses{k}", f"neurons{k}")]
        prev = f"neurons{k}"
    nodes["output"] = nir.Output(output_type={"output": np.array([model.sizes[-1]])})
    edges.append((prev, "output"))
    return nodes, edges, {"family": "custom", "neuron": artefact["neuron"]["name"], "dt_s": dt,
                          "steps": cfg.steps, "readout": "class = most output spikes over the steps"}
