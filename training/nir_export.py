"""``neurospice export CHECKPOINT --nir FILE``: a trained network as a NIR graph (``nir`` package).

The checkpoint names its family; the family's ``nir_graph`` builds the nodes (see each
family's module for its mapping). Discrete-time semantics, stated in the graph's metadata:
one NIR time step = one network step of ``dt_s``; every LIF node's continuous parameters are
the Euler reading of the discrete update (``u[t] = β·u[t−1] + g·I[t]`` ↔ ``τ = dt/(1−β)``,
``R = g/(1−β)``, ``v_leak = 0``) — :func:`euler_lif`.

NIR metadata is flat (strings and arrays), so names carry units.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SEMANTICS = ("discrete time: one NIR step = one network step of dt_s; LIF parameters are the Euler "
             "reading of u[t] = beta*u[t-1] + g*I[t] (tau = dt/(1-beta), R = g/(1-beta))")


#: the chip an export draws where a network has a device spread: the same file every export
EXPORT_CHIP_SEED = 40_000


def euler_lif(beta: float, gain: float, threshold: float, n: int, dt: float, **meta):
    """A NIR ``LIF`` node whose Euler step of ``dt`` is ``u[t] = β·u[t−1] + g·I[t]``, reset to 0."""
    import nir
    one = np.ones(n, dtype=np.float32)
    leak = max(1.0 - beta, 1e-9)
    return nir.LIF(tau=one * dt / leak, r=one * gain / leak, v_leak=0 * one,
                   v_threshold=one * threshold, v_reset=0 * one, metadata=meta)


#: time conventions a graph can be written in: the consumer's fixed step (s) and how the input
#: gain R·(1−β) of each LIF node is split between R and the weights feeding it
#: (snnTorch 1.0 ``import_from_nir``: dt = 1e-4 s, β = 1 − dt/τ, it requires R·dt/τ = 1, so
#: the gain goes into the weights; Norse 1.1 ``from_nir``: dt = 1e-3 s by default, v += dt/τ·(i − v),
#: R ignored, so R = 1 and the rest goes into the weights)
CONVENTIONS = {"physical": None,
               "snntorch": {"dt_s": 1e-4, "r": lambda beta: 1.0 / np.maximum(1.0 - beta, 1e-9)},
               "norse": {"dt_s": 1e-3, "r": lambda beta: np.ones_like(beta)}}

#: what an export in the physical convention says to the user
PHYSICAL_NOTE = ("NIR written in the physical time convention (tau in seconds, one step = dt_s); "
                 "snnTorch assumes its own step of 1e-4 s and Norse 1e-3 s: to run this network "
                 "in them, export with --dt-convention snntorch or --dt-convention norse")


def retime(nodes: dict, edges: list, dt_s: float, convention: str) -> tuple[dict, list[str]]:
    """The same discrete-time network for a consumer whose step is the convention's: every LIF
    node keeps its β (``τ' = dt'/(1−β)``), its ``R`` becomes the convention's and the weights of
    the Linear/Affine nodes feeding it take the rest of the input gain. Returns the new nodes and
    the names of LIF nodes that could not be re-timed (something other than Linear/Affine feeds
    them)."""
    import nir
    spec = CONVENTIONS[convention]
    if spec is None:
        return nodes, []
    nodes, skipped = dict(nodes), []
    for name, node in list(nodes.items()):
        if not isinstance(node, nir.LIF):
            continue
        feeds = [a for a, b in edges if b == name]
        if not dt_s or any(not isinstance(nodes[a], (nir.Linear, nir.Affine)) for a in feeds):
            skipped.append(name)
            continue
        tau = np.asarray(node.tau, np.float64)
        beta = 1.0 - dt_s / tau
        r_new = np.broadcast_to(spec["r"](beta), tau.shape).astype(np.float64)
        factor = (np.asarray(node.r, np.float64) / r_new).astype(np.float32)
        for a in feeds:
            n = nodes[a]
            w = (np.asarray(n.weight) * factor[:, None]).astype(np.float32)
            nodes[a] = (nir.Affine(weight=w, bias=(np.asarray(n.bias) * factor).astype(np.float32),
                                   metadata=n.metadata) if isinstance(n, nir.Affine)
                        else nir.Linear(weight=w, metadata=n.metadata))
        nodes[name] = nir.LIF(tau=(spec["dt_s"] / (1.0 - beta)).astype(np.float32),
                              r=r_new.astype(np.float32), v_leak=np.asarray(node.v_leak, np.float32),
                              v_threshold=np.asarray(node.v_threshold, np.float32),
                              v_reset=np.asarray(node.v_reset, np.float32), metadata=node.metadata)
    return nodes, skipped


def export_nir(checkpoint, path, convention: str = "physical") -> dict:
    """Write the checkpoint's network as a NIR file in a time ``convention`` (:data:`CONVENTIONS`);
    returns ``{'nir', 'family', 'nodes', 'dt_s', 'convention', ...}``."""
    import nir

    from neurospice.circuits.errors import NeurospiceError
    from neurospice.files import atomic_write

    from .checkpoint import checkpoint_family
    if convention not in CONVENTIONS:
        raise NeurospiceError(f"unknown time convention {convention!r}; choose from {sorted(CONVENTIONS)}")
    family, ck = checkpoint_family(checkpoint)
    nodes, edges, meta = family.nir_graph(ck)
    nodes, not_retimed = retime(nodes, edges, meta["dt_s"], convention)
    network_dt_s = meta["dt_s"]
    if CONVENTIONS[convention]:
        meta["dt_s"] = CONVENTIONS[convention]["dt_s"]
    meta = {"generator": "neurospice", "checkpoint": str(checkpoint), "family": family.name, **meta,
            "time_convention": convention, "network_dt_s": network_dt_s, "semantics": SEMANTICS}
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={
        k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in meta.items()})
    path = Path(path)
    atomic_write(path, lambda tmp: nir.write(str(tmp), graph))
    out = {"nir": str(path), "family": meta["family"], "nodes": sorted(nodes), "edges": len(edges),
           "dt_s": meta["dt_s"], "convention": convention, "network_dt_s": network_dt_s}
    if convention == "physical":
        out["note"] = PHYSICAL_NOTE
    if not_retimed:
        out["not_retimed"] = not_retimed
    return out
