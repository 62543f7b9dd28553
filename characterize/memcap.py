"""Characterize the memcapacitive neuron: sweep → tables → fitted transfer curve → artefact + plot.

The transfer curve is the membrane voltage after one step from rest (``v_mem0 = 0``)
as a function of the active input capacitance, over the sub-threshold range. The
2-D tables (active capacitance × start voltage) of end-of-step voltage, peak voltage,
spike flag and energy go into the same artefact; training uses them.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from neurospice.circuits import memcap as mc
from neurospice.files import atomic_savefig

from . import memcap_recipes  # noqa: F401  (registers the memcap recipes)
from .artefact import fit_curve, now_iso, save_artefact
from .sweep import PointCache, Sweep, run_sweep

QUICK_AXES = {"c_active_fF": [float(v) for v in np.linspace(0, 320, 33)],
              "v_mem0_V": [0.0, 0.15, 0.3, 0.45, 0.6]}
FULL_AXES = {"c_active_fF": [float(v) for v in np.linspace(0, 480, 97)],
             "v_mem0_V": [float(v) for v in np.linspace(0, 0.7, 15)]}
DEFAULT_FAN_IN = 64  #: the 8x8 digits network's fan-in (one synapse per pixel)


def memcap_sweep(quick: bool = True, corner: str = "tt", technology: str = "generic",
                 temperature_C: float = 27.0, fan_in: int = DEFAULT_FAN_IN, mc_samples: int = 0,
                 seed: int = 1, vdd_V: list[float] | None = None) -> Sweep:
    axes = dict(QUICK_AXES if quick else FULL_AXES)
    axes["fan_in"] = [fan_in]
    if vdd_V:
        axes["vdd_V"] = [float(v) for v in vdd_V]
    return Sweep(recipe="memcap", axes=axes, technology=technology, corners=[corner],
                 temperatures_C=[temperature_C], mc_samples=mc_samples, seed=seed)


def characterize_memcap(quick: bool = True, corner: str = "tt", technology: str = "generic",
                        temperature_C: float = 27.0, fan_in: int = DEFAULT_FAN_IN,
                        mc_samples: int = 0, seed: int = 1, workers: int = 1,
                        scheduler: str | None = None, vdd_V: list[float] | None = None,
                        out: str | Path = "runs/memcap",
                        cache_dir: str | Path | None = None, progress: bool = True,
                        plot: bool = True) -> dict:
    """Run the sweep and write ``memcap_curve.json`` (+ ``memcap_curve.png``) under ``out``.

    Returns the summary the CLI prints: ``points``, ``failed``, ``cached``, ``artefact``,
    ``fit_rms`` (held-out RMS of the spline fit / curve range), ``linear_rms``,
    ``nonlinearity_ratio`` (linear / spline RMS), ``plot``, ``technology``, ``wall_s``, and the
    sweep's speed (``analysis_s``, ``worker_s``, ``efficiency``: :func:`~.sweep.speed`).
    """
    sweep = memcap_sweep(quick, corner, technology, temperature_C, fan_in, mc_samples, seed, vdd_V)
    if vdd_V and len(vdd_V) > 1:
        raise ValueError("the artefact holds one supply voltage; run one --vdd per artefact")
    res = run_sweep(sweep, workers=workers, scheduler=scheduler,
                    cache=PointCache(cache_dir) if cache_dir else None, progress=progress)
    design = mc.NeuronDesign()
    cs = np.array(sweep.axes["c_active_fF"])
    vs = np.array(sweep.axes["v_mem0_V"])
    shape = (len(vs), len(cs))
    grids = {k: np.full(shape, np.nan) for k in ("v_mem_end_V", "v_mem_peak_V", "spike", "energy_J")}
    counts = np.zeros(shape)
    for r in res.ok:
        i = int(np.argmin(abs(vs - r.point["v_mem0_V"])))
        j = int(np.argmin(abs(cs - r.point["c_active_fF"])))
        for k in grids:
            val = float(r.result["spike" if k == "spike" else k])
            grids[k][i, j] = val if counts[i, j] == 0 else grids[k][i, j] + val
        counts[i, j] += 1
    with np.errstate(invalid="ignore"):
        for k in grids:
            grids[k] = grids[k] / np.where(counts, counts, np.nan)
    # main curve: from rest, points that did not fire (nominal or MC mean)
    row0 = int(np.argmin(abs(vs)))
    sub = (grids["spike"][row0] < 0.5) & np.isfinite(grids["v_mem_end_V"][row0])
    x, y = cs[sub], grids["v_mem_end_V"][row0][sub]
    if len(x) < 6:
        raise RuntimeError(f"only {len(x)} sub-threshold points from rest; widen the sweep")
    fit = fit_curve(x, y)
    peaks_fired = grids["v_mem_peak_V"][grids["spike"] > 0.5]
    peaks_quiet = grids["v_mem_peak_V"][(grids["spike"] < 0.5) & np.isfinite(grids["v_mem_peak_V"])]
    v_th_lo = float(peaks_quiet.max()) if peaks_quiet.size else float("nan")
    v_th_hi = float(peaks_fired.min()) if peaks_fired.size else float("nan")
    fire_from_rest = cs[grids["spike"][row0] > 0.5]
    # energy per step from rest: idle (no input) and per fF of active input, the slope over
    # the lower half of the sub-threshold range (near threshold the comparator's crowbar
    # current dominates: that part stays in the table, not in a per-fF number)
    e_row = grids["energy_J"][row0][sub]
    low = x <= np.median(x)
    e_slope = float(np.polyfit(x[low], e_row[low], 1)[0])
    e_base = float(grids["energy_J"][row0][0])
    net_hash = hashlib.sha256("".join(sorted(r.key for r in res.results)).encode()).hexdigest()
    summary_curve = {"x_name": "c_active_fF", "y_name": "v_mem_end_V", "x_unit": "fF",
                     "y_unit": "V", "x": x.tolist(), "y": y.tolist(), "v_mem0_V": float(vs[row0]),
                     **fit}
    artefact = {
        "family": "memcap",
        "created": now_iso(),
        "provenance": {"technology": res.technology, "corner": corner,
                       "temperature_C": temperature_C, "ngspice": res.ngspice,
                       "netlist_hash": net_hash, "sweep": sweep.to_dict(),
                       "design": asdict(design), "mismatch_model":
                       "sky130 PDK statistics" if technology == "sky130" else
                       "generic (see neurospice.characterize.recipes.GENERIC_MISMATCH)"},
        "units": {"c_active_fF": "fF", "v_mem0_V": "V", "v_mem_end_V": "V", "v_mem_peak_V": "V",
                  "spike": "1", "energy_J": "J", "step_s": "s"},
        "table": {"c_active_fF": cs.tolist(), "v_mem0_V": vs.tolist(),
                  **{k: np.where(np.isfinite(g), g, None).tolist() for k, g in grids.items()}},
        "curve": summary_curve,
        "summary": {"step_s": design.step_s, "v_threshold_V": 0.5 * (v_th_lo + v_th_hi),
                    "v_threshold_bracket_V": [v_th_lo, v_th_hi],
                    "c_fire_from_rest_fF": float(fire_from_rest.min()) if fire_from_rest.size else None,
                    "energy_idle_step_J": e_base,
                    "energy_per_active_fF_J": float(e_slope),
                    "c_min_F": design.device.c_min_F, "c_max_F": design.device.c_max_F,
                    "fan_in": fan_in, "points": len(res.results), "failed": len(res.failed)},
        "failed_points": [{"point": r.point, "reason": r.reason} for r in res.failed],
    }
    out = Path(out)
    path = save_artefact(artefact, out / "memcap_curve.json")
    png = ensure_plot(artefact, out / "memcap_curve.png") if plot else None
    m = fit["metrics"]
    return {"points": len(res.results), "failed": len(res.failed), "cached": res.n_cached,
            "artefact": str(path), "plot": str(png) if png else None,
            "fit_rms": m["spline"]["rms_frac"], "linear_rms": m["linear"]["rms_frac"],
            "nonlinearity_ratio": m["linear"]["rms_frac"] / max(m["spline"]["rms_frac"], 1e-12),
            "fit_metrics": m, "technology": res.technology["labels"], "ngspice": res.ngspice,
            "wall_s": res.wall_s, **res.speed()}


PLOT_DIGEST_KEY = "neurospice-data-sha256"  #: PNG text chunk naming the data a plot shows


def _plot_digest(artefact: dict) -> str:
    from .artefact import _canonical
    shown = {k: artefact[k] for k in ("table", "curve", "summary", "provenance")}
    return hashlib.sha256(_canonical(shown)).hexdigest()


def ensure_plot(artefact: dict, path: str | Path) -> Path:
    """Draw the plot unless ``path`` already shows exactly this data (a cached re-run
    would otherwise spend most of its time redrawing an identical figure)."""
    path, digest = Path(path), _plot_digest(artefact)
    try:
        from PIL import Image
        with Image.open(path) as img:
            if img.text.get(PLOT_DIGEST_KEY) == digest:
                return path
    except (OSError, ImportError, AttributeError):
        pass
    return plot_memcap(artefact, path, metadata={PLOT_DIGEST_KEY: digest})


def plot_memcap(artefact: dict, path: str | Path, metadata: dict | None = None) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .artefact import evaluate
    t, c = artefact["table"], artefact["curve"]
    cs = np.array(t["c_active_fF"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    for i, v0 in enumerate(t["v_mem0_V"]):
        row = np.array(t["v_mem_peak_V"][i], dtype=float)
        ax.plot(cs, row, ".-", ms=4, lw=0.8, label=f"peak, start {v0:.2f} V")
    ax.axhline(artefact["summary"]["v_threshold_V"], color="k", ls=":", label="firing threshold")
    ax.set(xlabel="active input capacitance ΣC [fF]", ylabel="membrane peak in step [V]",
           title="ngspice: membrane peak per step")
    ax.legend(fontsize=7)
    ax = axes[1]
    xx = np.linspace(min(c["x"]), max(c["x"]), 400)
    ax.plot(c["x"], c["y"], "ko", ms=4, label="ngspice (from rest)")
    for name, style in (("spline", "-"), ("parametric", "--"), ("linear", ":")):
        if name in c["fits"]:
            rms = c["metrics"][name]["rms_frac"] * 100
            ax.plot(xx, evaluate(artefact, xx, name), style, label=f"{name} (held-out RMS {rms:.2f} %)")
    ax.set(xlabel="active input capacitance ΣC [fF]", ylabel="membrane after one step [V]",
           title="transfer curve: data vs fits")
    ax.legend(fontsize=7)
    ax = axes[2]
    e = np.array(t["energy_J"], dtype=float) * 1e15
    for i, v0 in enumerate(t["v_mem0_V"]):
        ax.plot(cs, e[i], ".-", ms=4, lw=0.8, label=f"start {v0:.2f} V")
    ax.set(xlabel="active input capacitance ΣC [fF]", ylabel="energy per step [fJ]",
           title="energy per 10 ns step (all sources)")
    ax.legend(fontsize=7)
    prov = artefact["provenance"]
    fig.suptitle(f"memcapacitive neuron — {', '.join(prov['technology']['labels'])}, "
                 f"{prov['temperature_C']:g} °C, {prov['ngspice']}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    atomic_savefig(fig, path, dpi=110, metadata=metadata)
    plt.close(fig)
    return path
