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


def euler_lif(beta: float, gain: float, threshold: float, n: int, dt: float, **meta):
    """A NIR ``LIF`` node whose Euler step of ``dt`` is ``u[t] = β·u[t−1] + g·I[t]``, reset to 0."""
    import nir
    one = np.ones(n, dtype=np.float32)
    leak = max(1.0 - beta, 1e-9)
    return nir.LIF(tau=one * dt / leak, r=one * gain / leak, v_leak=0 * one,
                   v_threshold=one * threshold, v_reset=0 * one, metadata=meta)


def export_nir(checkpoint, path) -> dict:
    """Write the checkpoint's network as a NIR file; returns ``{'nir', 'family', 'nodes', ...}``."""
    import nir

    from neurospice.files import atomic_write

    from .checkpoint import checkpoint_family
    family, ck = checkpoint_family(checkpoint)
    nodes, edges, meta = family.nir_graph(ck)
    meta = {"generator": "neurospice", "checkpoint": str(checkpoint), "family": family.name, **meta,
            "semantics": SEMANTICS}
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={
        k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in meta.items()})
    path = Path(path)
    atomic_write(path, lambda tmp: nir.write(str(tmp), graph))
    return {"nir": str(path), "family": meta["family"], "nodes": sorted(nodes), "edges": len(edges),
            "dt_s": meta["dt_s"]}
