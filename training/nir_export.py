"""``neurospice export CHECKPOINT --nir FILE``: a trained network as a NIR graph (``nir`` package).

Discrete-time semantics, stated in the graph's metadata: one NIR time step = one network step of
``dt_s``; every node's continuous parameters are the Euler reading of the discrete update
(``u[t] = β·u[t−1] + g·I[t]`` ↔ ``τ = dt/(1−β)``, ``R = g/(1−β)``, ``v_leak = 0``).

* **memcap** / **lif** (memcap ``ideal``): per layer ``Linear`` (weight = C+ − C− in fF, the
  mapped, quantized device pairs; ``C+`` and ``C−`` themselves in the node metadata) → ``LIF``
  (the linearized neuron; reset to 0 V). For circuit-table neurons the tables (peak and end
  voltage over start voltage × active capacitance, comparator offset) ride along as metadata of
  the ``LIF`` node, the nearest standard neuron: a NIR consumer that knows them runs the circuit
  neuron, any other runs its linearization.
* **sfq**: ``Linear`` (0/1 wires, 16 per neuron) → ``IF`` (``r = 1``, threshold ``T``);
  the counter's subtractive reset and several output pulses per step noted as metadata.
* **qclif**: the somatic path ``Affine`` (W_s, b_s; integers) → ``LIF`` (shift leak
  ``β = 1 − 2^−s``, threshold θ, subtractive reset) with the recurrent ``Linear`` (W_s^rec);
  the apical compartment (W_a, W_a^rec, b_a, linear decay, power-of-two modulation) has no
  standard NIR node: its weights and equations are metadata of the ``LIF`` node. Readout ``Affine``.

NIR metadata is flat (strings and arrays), so names carry units.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from neurospice.circuits.errors import NeurospiceError


def _euler_lif(beta: float, gain: float, threshold: float, n: int, dt: float, **meta):
    import nir
    one = np.ones(n, dtype=np.float32)
    leak = max(1.0 - beta, 1e-9)
    return nir.LIF(tau=one * dt / leak, r=one * gain / leak, v_leak=0 * one,
                   v_threshold=one * threshold, v_reset=0 * one, metadata=meta)


def _memcap_graph(ck: dict):
    import nir
    from .memcap_net import IdealNeuron, nearest_layer
    from .train import model_from_checkpoint
    model, cfg, artefact = model_from_checkpoint(ck)
    model.eval()
    if cfg.mode == "aware":
        model.quantize = True
    dt = float(artefact["summary"]["step_s"])
    with torch.no_grad():
        caps = model.capacitances()
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
        nodes[f"neurons{i}"] = _euler_lif(lin.beta, lin.gain, lin.threshold, n_out, dt, **meta)
        edges += [(prev, f"synapses{i}"), (f"synapses{i}", f"neurons{i}")]
        prev = f"neurons{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([model.sizes[-1]])})
    edges.append((prev, "output"))
    return nodes, edges, {"family": "memcap" if cfg.mode != "ideal" else "lif", "dt_s": dt,
                          "readout": "class = most output spikes over the steps",
                          "steps": cfg.steps, "quantization": f"{cfg.levels} levels per device"
                          if cfg.mode != "ideal" else "analog weights"}


def _sfq_graph(ck: dict):
    import nir
    from .sfq_train import model_from_sfq_checkpoint
    model, cfg = model_from_sfq_checkpoint(ck)
    nodes, edges, prev = {"input": nir.Input(input_type={"input": np.array([model.sizes[0]])})}, [], "input"
    for i, (wire, soma) in enumerate(((model.wire1, model.soma1), (model.wire2, model.soma2))):
        with torch.no_grad():
            mask = wire.mask().detach().numpy().T.astype(np.float32)          # [out, in], 0/1
            thr = soma.threshold().detach().numpy().astype(np.float32)
        nodes[f"wires{i}"] = nir.Linear(weight=mask, metadata={"unit": "pulses", "fan_in": wire.fan_in})
        nodes[f"neurons{i}"] = nir.IF(r=np.ones_like(thr), v_threshold=thr, v_reset=np.zeros_like(thr), metadata={
            "neurospice_neuron": "sfq-counter", "thresholds_allowed": np.asarray(model.spec["thresholds"], np.float32),
            "reset": "subtractive: c -= T per output pulse; floor(c/T) pulses per step"})
        edges += [(prev, f"wires{i}"), (f"wires{i}", f"neurons{i}")]
        prev = f"neurons{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([model.sizes[-1]])})
    edges.append((prev, "output"))
    return nodes, edges, {"family": "sfq", "dt_s": 0.0, "steps": cfg.steps,
                          "readout": "class = most output pulses", "quantization": "binary wires",
                          "time": "event-driven; dt_s 0 = a step is one input window, not a fixed time"}


def _qclif_graph(ck: dict):
    import nir
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
             "neurons": _euler_lif(beta, 1.0, float(q.threshold), H, 1.0, **{
                 "neurospice_neuron": "qclif", "bits": cfg.bits, "threshold_LSB": q.threshold,
                 "reset": "subtractive (V -= theta after a spike), saturating",
                 "equations": "Va'=clip(Va+S_a-d_a,0,2^B-1); m=(S_s>>k(Va)) if Va>0 else 0; "
                              "V'=clip(V-(V>>4)+m-z*theta); z'=[acc>=theta]",
                 "apical_w_a_rec_LSB": w["w_a_rec"].T, "apical_b_a_LSB": w["b_a"],
                 "apical_decay_LSB": q.apical_decay}),
             "readout": nir.Affine(weight=model.w_out.detach().numpy().T.astype(np.float32),
                                   bias=model.b_out.detach().numpy().astype(np.float32),
                                   metadata={"input": "spike counts / steps"}),
             "output": nir.Output(output_type={"output": np.array([n_out])})}
    edges = [("input", "soma_in"), ("soma_in", "neurons"), ("neurons", "soma_rec"),
             ("soma_rec", "neurons"), ("neurons", "readout"), ("readout", "output")]
    return nodes, edges, {"family": "qclif", "dt_s": 1.0, "steps": 0, "quantization": f"{cfg.bits}-bit integers",
                          "time": "one clock cycle per step; dt_s 1 = one step (the clock sets seconds)",
                          "readout": "spike counts / steps through the readout Affine"}


def export_nir(checkpoint, path) -> dict:
    """Write the checkpoint's network as a NIR file; returns ``{'nir', 'family', 'nodes', ...}``."""
    import nir
    from .qclif_train import QCLIF_CHECKPOINT_FORMAT
    from .sfq_train import SFQ_CHECKPOINT_FORMAT
    from .train import CHECKPOINT_FORMAT, read_torch_file
    ck = read_torch_file(checkpoint)
    fmt = ck.get("format") if isinstance(ck, dict) else None
    builders = {CHECKPOINT_FORMAT: _memcap_graph, SFQ_CHECKPOINT_FORMAT: _sfq_graph,
                QCLIF_CHECKPOINT_FORMAT: _qclif_graph}
    if fmt not in builders:
        raise NeurospiceError(f"{checkpoint}: not a neurospice checkpoint (format {fmt!r})")
    nodes, edges, meta = builders[fmt](ck)
    meta = {"generator": "neurospice", "checkpoint": str(checkpoint), **meta,
            "semantics": "discrete time: one NIR step = one network step of dt_s; LIF parameters are "
                         "the Euler reading of u[t] = beta*u[t-1] + g*I[t] (tau = dt/(1-beta), "
                         "R = g/(1-beta))"}
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={k: (json.dumps(v) if isinstance(v, (dict, list)) else v)
                                                             for k, v in meta.items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nir.write(str(path), graph)
    return {"nir": str(path), "family": meta["family"], "nodes": sorted(nodes), "edges": len(edges),
            "dt_s": meta["dt_s"]}
