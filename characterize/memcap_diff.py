"""Characterize the differential (signed-weight) memcapacitive neuron for training.

Two sweeps (both from :class:`~neurospice.characterize.recipes.MemcapDiffRecipe`):

* **half**: one membrane's peak and end-of-step voltage against its start voltage and the
  active capacitance of its side, with firing disabled, at each layer's fan-in (idle rows
  load the membrane through their pumps' parasitics, so a 784-input neuron and a
  256-input neuron differ);
* **boundary**: the comparator's firing offset against the negative membrane's voltage.

The artefact (``memcap_diff.json``) holds per fan-in the 2-D tables, the offset table,
the reset levels and the energy numbers that training and energy estimates use.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from neurospice.circuits import memcap as mc

from .artefact import now_iso, save_artefact
from .sweep import PointCache, Sweep, run_sweep

#: denser where the response is steep (small ΣC), out to where charge sharing has saturated
HALF_AXES = {"c_active_fF": [0.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 130.0, 160.0, 200.0, 250.0,
                             300.0, 400.0, 500.0, 640.0],
             "v_mem0_V": [float(v) for v in np.linspace(0, 1.0, 11)]}
BOUNDARY_AXES = {"v_neg0_V": [0.0, 0.3, 0.6, 0.9], "dv_V": [float(v) for v in np.arange(0, 0.2001, 0.0125)]}


def characterize_memcap_diff(fan_ins=(784, 256), technology: str = "generic", corner: str = "tt",
                             temperature_C: float = 27.0, workers: int = 1,
                             scheduler: str | None = None, out: str | Path = "runs/memcap",
                             cache_dir: str | Path | None = None, progress: bool = True) -> dict:
    """Run both sweeps and write ``memcap_diff.json`` under ``out``; return a summary."""
    design = mc.DiffNeuronDesign()
    fan_ins = sorted({int(f) for f in fan_ins})
    half = Sweep(recipe="memcap_diff", axes={**HALF_AXES, "fan_in": fan_ins, "mode": ["half"]},
                 technology=technology, corners=[corner], temperatures_C=[temperature_C])
    bound = Sweep(recipe="memcap_diff", axes={**BOUNDARY_AXES, "fan_in": [fan_ins[0]],
                                              "mode": ["boundary"]},
                  technology=technology, corners=[corner], temperatures_C=[temperature_C])
    cache = PointCache(cache_dir) if cache_dir else None
    res_h = run_sweep(half, workers=workers, scheduler=scheduler, cache=cache, progress=progress)
    res_b = run_sweep(bound, workers=workers, scheduler=scheduler, cache=cache, progress=progress)
    failed = res_h.failed + res_b.failed
    if failed:
        raise RuntimeError(f"{len(failed)} characterization points failed, first: "
                           f"{failed[0].point} — {failed[0].reason}")
    cs, vs = np.array(HALF_AXES["c_active_fF"]), np.array(HALF_AXES["v_mem0_V"])
    layers = {}
    for f in fan_ins:
        grids = {k: np.full((len(vs), len(cs)), np.nan) for k in ("v_mem_peak_V", "v_mem_end_V", "energy_J")}
        for r in res_h.ok:
            if int(r.point["fan_in"]) != f:
                continue
            i = int(np.argmin(abs(vs - r.point["v_mem0_V"])))
            j = int(np.argmin(abs(cs - r.point["c_active_fF"])))
            for k in grids:
                grids[k][i, j] = r.result[k]
        e0 = grids["energy_J"][0]
        slope = float(np.polyfit(cs[cs <= 160], e0[cs <= 160] - e0[0], 1)[0])
        layers[str(f)] = {"c_active_fF": cs.tolist(), "v_mem0_V": vs.tolist(),
                          **{k: g.tolist() for k, g in grids.items()},
                          "energy_idle_step_J": float(e0[0]),
                          "energy_per_active_fF_J": slope}
    vn_axis = np.array(BOUNDARY_AXES["v_neg0_V"])
    offsets, e_spike = [], []
    for vn in vn_axis:
        rows = sorted((r.point["dv_V"], r.result) for r in res_b.ok if abs(r.point["v_neg0_V"] - vn) < 1e-9)
        fired = [dv for dv, m in rows if m["spike"]]
        quiet = [dv for dv, m in rows if not m["spike"] and (not fired or dv < min(fired))]
        if not fired:
            raise RuntimeError(f"comparator never fired at v_neg = {vn} V; widen dv_V")
        offsets.append(0.5 * (max(quiet) + min(fired)) if quiet else min(fired))
        e_spike += [m["energy_J"] for dv, m in rows if m["spike"]]
    idle_ref = layers[str(fan_ins[0])]["energy_idle_step_J"]
    net_hash = hashlib.sha256("".join(sorted(r.key for r in res_h.results + res_b.results)).encode()).hexdigest()
    artefact = {
        "family": "memcap_diff",
        "created": now_iso(),
        "provenance": {"technology": res_h.technology, "corner": corner, "temperature_C": temperature_C,
                       "ngspice": res_h.ngspice, "netlist_hash": net_hash,
                       "sweeps": [half.to_dict(), bound.to_dict()], "design": asdict(design)},
        "units": {"c_active_fF": "fF", "v_mem0_V": "V", "v_mem_peak_V": "V", "v_mem_end_V": "V",
                  "energy_J": "J", "offset_V": "V", "step_s": "s"},
        "layers": layers,
        "threshold": {"v_neg_V": vn_axis.tolist(), "offset_V": offsets},
        "summary": {"step_s": design.step_s, "v_reset_pos_V": 0.0, "v_reset_neg_V": design.v_ref_V,
                    "c_min_F": design.device.c_min_F, "c_max_F": design.device.c_max_F,
                    "fan_ins": fan_ins, "offset_mean_V": float(np.mean(offsets)),
                    "energy_spike_J": float(np.mean(e_spike) - idle_ref),
                    "points": len(res_h.results) + len(res_b.results)},
    }
    path = save_artefact(artefact, Path(out) / "memcap_diff.json")
    return {"artefact": str(path), "points": artefact["summary"]["points"],
            "cached": res_h.n_cached + res_b.n_cached, "failed": 0,
            "offset_V": offsets, "energy_spike_J": artefact["summary"]["energy_spike_J"],
            "energy_idle_step_J": {f: layers[f]["energy_idle_step_J"] for f in layers},
            "energy_per_active_fF_J": {f: layers[f]["energy_per_active_fF_J"] for f in layers},
            "technology": res_h.technology["labels"], "wall_s": res_h.wall_s + res_b.wall_s}
