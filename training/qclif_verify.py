"""``neurospice verify`` for qCLIF checkpoints: sampled neurons of the trained network run in
ngspice on the synaptic sums they received in the model, registers read back every step and
compared bit for bit with the model's state. Two levels of the one generated netlist:

``transistor``  the sky130_fd_sc_hd cells at transistor level (~3.5 core-seconds per step);
``gate``        the same instances as XSPICE digital gates in ngspice's event-driven simulator
                (~5 ms per step): the logic of the netlist at scale; the cells' transistor-level
                function and timing are what ``characterize qclif``'s random cycles establish.

The synaptic sums enter on the neuron's bus input (the saturating synapse array's output);
the AND-gated ports stay idle here — they are checked by ``characterize qclif``'s random cycles.
"""
from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import torch

from neurospice.circuits.errors import NeurospiceError
from neurospice.circuits.qclif import CycleInputs, QCLIFConfig

from .qclif_train import load_qclif_checkpoint, make_data, model_from_qclif_checkpoint
from .verify_common import check_counts, map_jobs, sample_neurons, tally


LEVELS = ("transistor", "gate")


def _simulate_job(job: dict) -> dict:
    from neurospice.characterize.qclif_sim import simulate, simulate_gate_level
    cfg = QCLIFConfig(**job["cfg"])
    z = np.zeros(len(job["s_a"]), dtype=np.int64)
    inp = CycleInputs(bus_a=np.array(job["s_a"]), bus_s=np.array(job["s_s"]), c=z, w_a=z, x=z, w_s=z)
    regs = simulate_gate_level(inp, cfg) if job["level"] == "gate" else simulate(inp, cfg).registers
    return {k: regs[k].tolist() for k in ("va", "v", "z")}


def verify_qclif_checkpoint(checkpoint, samples: int = 2, neurons: int = 2, workers: int = 2,
                            seed: int = 40_000, progress: bool = True, level: str = "transistor") -> dict:
    t0 = time.time()
    check_counts(samples, neurons, workers)
    if level not in LEVELS:
        raise NeurospiceError(f"level must be one of {LEVELS}, not {level!r}")
    ck = load_qclif_checkpoint(checkpoint)
    model, cfg = model_from_qclif_checkpoint(ck)
    if cfg.neuron != "qclif":
        raise NeurospiceError(f"{checkpoint} holds a float CLIF network; only integer qCLIF "
                              "networks run on the circuit")
    model.eval()
    _, _, test, _, _ = make_data(cfg)
    n = min(samples, len(test))
    x, c, y = test.batch(np.arange(n))
    with torch.no_grad():
        out = model(x, c, record=True)
    rec = {k: v.round().long().numpy() for k, v in out["record"].items()}   # [T, n, H]
    qcfg = model.cfg
    jobs = sample_neurons(n, model.sizes[1], neurons, seed)
    payload = [{"cfg": asdict(qcfg), "level": level,
                "s_a": rec["s_a"][:, i, j].tolist(), "s_s": rec["s_s"][:, i, j].tolist()} for i, j in jobs]
    circuits = map_jobs(_simulate_job, payload, workers, progress, "verify qclif", processes=True)
    rows = [{"sample": i, "neuron": j, "circuit": circ, "model": {k: rec[k][:, i, j].tolist() for k in ("va", "v", "z")}}
            for (i, j), circ in zip(jobs, circuits)]
    # every register every step: the state as a tuple per step, compared as one value
    exact = tally((list(zip(*(r["circuit"][k] for k in ("va", "v", "z")))),
                   list(zip(*(r["model"][k] for k in ("va", "v", "z"))))) for r in rows)
    spikes = tally((r["circuit"]["z"], r["model"]["z"]) for r in rows)
    return {"bit_exact_agreement": exact["spike_agreement"], "spike_agreement": spikes["spike_agreement"],
            "neuron_samples_bit_exact": round(exact["trains_identical"] * len(jobs)),
            "neuron_samples": len(jobs), "samples": n,
            "steps": int(x.shape[0]), "bits": qcfg.bits, "level": level,
            "neurons_per_sample": len(jobs) // max(n, 1), "spikes_model": int(sum(sum(r["model"]["z"]) for r in rows)),
            "rows": rows, "wall_s": round(time.time() - t0, 1)}
