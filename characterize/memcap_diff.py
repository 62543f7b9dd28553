"""Characterize the differential (signed-weight) memcapacitive neuron for training.

Two sweeps (both from :class:`~neurospice.characterize.recipes.MemcapDiffRecipe`):

* **half**: one membrane's peak and end-of-step voltage against its start voltage and the
  active capacitance of its side, with firing disabled, at each layer's fan-in (idle rows
  load the membrane through their pumps' parasitics, so a 784-input neuron and a
  256-input neuron differ);
* **boundary**: the comparator's firing offset against the negative membrane's voltage;
* **offset Monte Carlo** (``mc_samples`` > 0): the same boundary at the reset level of the
  negative membrane, once per mismatch sample (generic technology: Pelgrom threshold shifts of
  the comparator's matched devices, :data:`~neurospice.characterize.recipes.GENERIC_MISMATCH`;
  sky130: the PDK's own per-device mismatch) — the distribution of the offset from chip to
  chip, which variation-aware training samples from.

The artefact (``memcap_diff.json``) holds per fan-in the 2-D tables, the offset table,
the reset levels and the energy numbers that training and energy estimates use.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from neurospice.circuits import memcap as mc

from . import memcap_recipes  # noqa: F401  (registers the memcap recipes)
from .artefact import now_iso, save_artefact
from .recipes import GENERIC_MISMATCH
from .sweep import PointCache, Sweep, run_sweep, speed

#: denser where the response is steep (small ΣC), out to where charge sharing has saturated
HALF_AXES = {"c_active_fF": [0.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 130.0, 160.0, 200.0, 250.0,
                             300.0, 400.0, 500.0, 640.0],
             "v_mem0_V": [float(v) for v in np.linspace(0, 1.0, 11)]}
BOUNDARY_AXES = {"v_neg0_V": [0.0, 0.3, 0.6, 0.9], "dv_V": [float(v) for v in np.arange(0, 0.2001, 0.0125)]}
#: the Monte Carlo boundary: wider (a sample's offset may be below zero), 5 mV steps
OFFSET_MC_DV_V = [float(v) for v in np.arange(-0.05, 0.1201, 0.005)]


def _firing_offset(rows: list[tuple[float, dict]], where: str, fires_at_start_ok: bool = False) -> float:
    """Midpoint between the largest quiet and the smallest firing ``dv`` (sorted rows).
    ``fires_at_start_ok``: firing already at the smallest ``dv`` gives that ``dv`` (the offset
    is at most that) instead of an error."""
    fired = [dv for dv, m in rows if m["spike"]]
    if not fired:
        raise RuntimeError(f"comparator never fired ({where}); widen dv_V")
    quiet = [dv for dv, m in rows if not m["spike"] and dv < min(fired)]
    if not quiet:
        if fires_at_start_ok:
            return min(fired)
        raise RuntimeError(f"comparator fired at the smallest dv ({where}); widen dv_V downwards")
    return 0.5 * (max(quiet) + min(fired))


def characterize_memcap_diff(fan_ins=(784, 256), technology: str = "generic", corner: str = "tt",
                             temperature_C: float = 27.0, workers: int = 1,
                             scheduler: str | None = None, out: str | Path = "runs/memcap",
                             cache_dir: str | Path | None = None, progress: bool = True,
                             mc_samples: int = 0, seed: int = 1) -> dict:
    """Run the sweeps and write ``memcap_diff.json`` under ``out``; return a summary.
    ``mc_samples`` > 0 adds the comparator offset's Monte Carlo distribution
    (``threshold_mc`` in the artefact)."""
    from neurospice import validate
    validate.whole("mc_samples", mc_samples, lo=0)
    validate.whole("seed", seed, lo=0)
    design = mc.DiffNeuronDesign()
    fan_ins = sorted({validate.whole("fan_in", f, lo=1) for f in fan_ins})
    half = Sweep(recipe="memcap_diff", axes={**HALF_AXES, "fan_in": fan_ins, "mode": ["half"]},
                 technology=technology, corners=[corner], temperatures_C=[temperature_C])
    bound = Sweep(recipe="memcap_diff", axes={**BOUNDARY_AXES, "fan_in": [fan_ins[0]],
                                              "mode": ["boundary"]},
                  technology=technology, corners=[corner], temperatures_C=[temperature_C])
    cache = PointCache(cache_dir) if cache_dir else None
    res_h = run_sweep(half, workers=workers, scheduler=scheduler, cache=cache, progress=progress)
    res_b = run_sweep(bound, workers=workers, scheduler=scheduler, cache=cache, progress=progress)
    res_mc = None
    if mc_samples > 0:
        v_neg = design.v_ref_V
        mc_sweep = Sweep(recipe="memcap_diff", axes={"v_neg0_V": [v_neg], "dv_V": OFFSET_MC_DV_V,
                                                     "fan_in": [fan_ins[0]], "mode": ["boundary"]},
                         technology=technology, corners=[corner], temperatures_C=[temperature_C],
                         mc_samples=mc_samples, seed=seed)
        res_mc = run_sweep(mc_sweep, workers=workers, scheduler=scheduler, cache=cache, progress=progress)
    runs = [res_h, res_b] + ([res_mc] if res_mc else [])
    failed = [f for r in runs for f in r.failed]
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
        offsets.append(_firing_offset(rows, f"v_neg = {vn} V", fires_at_start_ok=True))
        e_spike += [m["energy_J"] for dv, m in rows if m["spike"]]
    idle_ref = layers[str(fan_ins[0])]["energy_idle_step_J"]
    threshold_mc = None
    if res_mc is not None:
        mc_offsets = []
        for k in range(mc_samples):
            rows = sorted((r.point["dv_V"], r.result) for r in res_mc.ok if r.point["mc"] == k)
            mc_offsets.append(_firing_offset(rows, f"Monte Carlo sample {k}"))
        nominal = float(np.interp(v_neg, vn_axis, offsets))
        threshold_mc = {"v_neg_V": v_neg, "offset_V": mc_offsets, "nominal_offset_V": nominal,
                        "offset_error_mean_V": float(np.mean(mc_offsets) - nominal),
                        "offset_sigma_V": float(np.std(mc_offsets, ddof=1)), "samples": mc_samples,
                        "resolution_V": OFFSET_MC_DV_V[1] - OFFSET_MC_DV_V[0], "seed": seed,
                        "mismatch_model": ("the PDK's per-device mismatch" if technology == "sky130" else
                                           "Pelgrom threshold shifts of the comparator pair and mirror, "
                                           f"A_VT = {GENERIC_MISMATCH['a_vt_mV_um']} mV·µm")}
    all_results = [x for r in runs for x in r.results]
    net_hash = hashlib.sha256("".join(sorted(r.key for r in all_results)).encode()).hexdigest()
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
        **({"threshold_mc": threshold_mc} if threshold_mc else {}),
        "summary": {"step_s": design.step_s, "v_reset_pos_V": 0.0, "v_reset_neg_V": design.v_ref_V,
                    "c_min_F": design.device.c_min_F, "c_max_F": design.device.c_max_F,
                    "fan_ins": fan_ins, "offset_mean_V": float(np.mean(offsets)),
                    "energy_spike_J": float(np.mean(e_spike) - idle_ref),
                    "points": len(all_results)},
    }
    path = save_artefact(artefact, Path(out) / "memcap_diff.json")
    return {"artefact": str(path), "points": artefact["summary"]["points"],
            "cached": sum(r.n_cached for r in runs), "failed": 0,
            "offset_V": offsets, "energy_spike_J": artefact["summary"]["energy_spike_J"],
            "offset_sigma_V": threshold_mc["offset_sigma_V"] if threshold_mc else None,
            "energy_idle_step_J": {f: layers[f]["energy_idle_step_J"] for f in layers},
            "energy_per_active_fF_J": {f: layers[f]["energy_per_active_fF_J"] for f in layers},
            "technology": res_h.technology["labels"], "wall_s": sum(r.wall_s for r in runs),
            **speed(sum(r.analysis_s for r in runs), sum(r.worker_s for r in runs))}
