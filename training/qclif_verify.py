"""``neurospice verify`` for qCLIF checkpoints: sampled neurons of the trained network run in
ngspice on the synaptic sums they received in the model, registers read back every step and
compared bit for bit with the model's state. Two levels of the one generated netlist:

``transistor``  the sky130_fd_sc_hd cells at transistor level (~3.5 core-seconds per step);
``gate``        the same instances as XSPICE digital gates in ngspice's event-driven simulator
                (~5 ms per step): the logic of the netlist at scale; the cells' transistor-level
                function and timing are what ``characterize qclif``'s random cycles establish.

The synaptic sums enter on the neuron's bus input (the saturating synapse array's output);
the AND-gated ports stay idle here — they are checked by ``characterize qclif``'s random cycles.
Both layers are sampled: ``neurons`` hidden and ``output_neurons`` output neurons per sample
(default as many as hidden). Where every output neuron of a sample runs, the circuit's own
class is read from their spikes by :func:`~neurospice.training.neurons.decide`
(``accuracy_circuit``, against ``accuracy_model`` on the same samples).
"""
from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import torch

from neurospice.circuits.errors import NeurospiceError
from neurospice.circuits.qclif import CycleInputs, QCLIFConfig

from .neurons import decide
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
                            seed: int = 40_000, progress: bool = True, level: str = "transistor",
                            output_neurons: int | None = None) -> dict:
    from neurospice import validate
    t0 = time.time()
    check_counts(samples, neurons, workers)
    validate.whole("output_neurons", output_neurons, lo=0, optional=True)
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
    rec = {layer: {k: v.round().long().numpy() for k, v in r.items()}       # [T, n, neurons]
           for layer, r in out["record"].items()}
    qcfg = model.cfg
    _, H, O, _ = model.sizes
    n_out = neurons if output_neurons is None else output_neurons
    jobs = [("hidden", i, j) for i, j in sample_neurons(n, H, neurons, seed)] + \
        [("output", i, j) for i, j in sample_neurons(n, O, n_out, seed + 1)]
    payload = [{"cfg": asdict(qcfg), "level": level, "s_a": rec[layer]["s_a"][:, i, j].tolist(),
                "s_s": rec[layer]["s_s"][:, i, j].tolist()} for layer, i, j in jobs]
    circuits = map_jobs(_simulate_job, payload, workers, progress, "verify qclif", processes=True)
    rows = [{"layer": layer, "sample": i, "neuron": j, "circuit": circ,
             "model": {k: rec[layer][k][:, i, j].tolist() for k in ("va", "v", "z")}}
            for (layer, i, j), circ in zip(jobs, circuits)]

    def registers(r, side):   # every register every step: the state as one value per step
        return list(zip(*(r[side][k] for k in ("va", "v", "z"))))
    exact = tally((registers(r, "circuit"), registers(r, "model")) for r in rows)
    spikes = tally((r["circuit"]["z"], r["model"]["z"]) for r in rows)
    by_layer = {layer: tally((registers(r, "circuit"), registers(r, "model")) for r in rows if r["layer"] == layer)
                for layer in ("hidden", "output")}
    result = {"bit_exact_agreement": exact["spike_agreement"], "spike_agreement": spikes["spike_agreement"],
              "bit_exact_agreement_hidden": by_layer["hidden"]["spike_agreement"] if neurons else None,
              "bit_exact_agreement_output": by_layer["output"]["spike_agreement"] if n_out else None,
              "neuron_samples_bit_exact": round(exact["trains_identical"] * len(jobs)),
              "neuron_samples": len(jobs), "output_neuron_samples": sum(r["layer"] == "output" for r in rows),
              "samples": n, "steps": int(x.shape[0]), "bits": qcfg.bits, "level": level,
              "neurons_per_sample": len(jobs) // max(n, 1),
              "spikes_model": int(sum(sum(r["model"]["z"]) for r in rows)), "rows": rows}
    if n_out >= O:            # every output neuron ran: the circuit's own decision
        circ = np.zeros((x.shape[0], n, O), np.int64)
        for r in rows:
            if r["layer"] == "output":
                circ[:, r["sample"], r["neuron"]] = r["circuit"]["z"]
        y_t = torch.as_tensor(np.asarray(y))
        result["accuracy_circuit"] = float((decide(torch.as_tensor(circ)) == y_t).double().mean())
        result["accuracy_model"] = float((decide(out["out"]) == y_t).double().mean())
    return result | {"wall_s": round(time.time() - t0, 1)}
