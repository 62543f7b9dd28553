"""Characterize a user's neuron (:mod:`neurospice.circuits.custom`) through the sweep runner.

Four parts, every simulation a cached sweep point (workers, Dask, resume after a kill):

1. **grid**: one step from each membrane start voltage under each constant input current
   (``[ranges]``): end-of-step membrane voltage, spike and its time, energy from every supply
   and from the input source;
2. **boundary**: per grid row, the firing current found by bisection between the row's last
   quiet and first firing cell (:func:`run_searches`), to :data:`BOUNDARY_TOLERANCE` of the
   current range — the table model's spike decision (:mod:`neurospice.circuits.custom_model`);
3. **state check**: random multi-step sequences simulated whole and compared with the table
   model rolled over the same currents — what the table cannot hold (state other than the
   membrane voltage that outlives a step: a spike still under way at a step's end, charge on
   other nodes) shows up here, measured, in the artefact;
4. **variation** (optional): the grid again at other corners and temperatures and per Monte
   Carlo sample (generic: Pelgrom threshold shifts per transistor; sky130: the PDK's
   mismatch), each summarized against the nominal table.

The artefact (``custom.json``, ``family: custom``) holds the spec (netlist text included, its
SHA-256 in the provenance), the measured grid, the model tables, fits with held-out errors
(the table model at half resolution predicting the other half; a linearized LIF), the state
check, failed points, and the energy summary.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurospice.circuits import custom as cu
from neurospice.circuits.custom_model import TableModel, bilinear, build_model
from neurospice.circuits.errors import NeurospiceError
from neurospice.circuits.technology import GENERIC_MOS_COMMON, Technology
from neurospice.files import atomic_savefig

from .artefact import now_iso, save_artefact
from .recipes import GENERIC_MISMATCH, DeckPiece, mc_sample, register_recipe
from .sweep import PointCache, Sweep, run_searches, run_sweep, speed

#: bisection stops when the bracket is below this fraction of the input current range
BOUNDARY_TOLERANCE = 2e-4
#: ngspice output step: this fraction of a network step (spikes are found between samples)
OUTPUT_STEPS_PER_STEP = 500
#: random sequences of the state check (full / quick), steps each
STATE_CHECK = {"full": 32, "quick": 12, "steps": 6}


class CharacterizationError(NeurospiceError):
    """The circuit's characterization cannot give a neuron model (never or always spikes)."""


@register_recipe
@dataclass
class CustomNeuronRecipe:
    """One neuron instance per point: ``v_mem0_V`` and ``i_in_A`` (one step) or ``i_seq_A``
    (a step-wise constant sequence). ``options['neuron']``: the spec's dict."""

    name: str = "custom_neuron"
    version: int = 1

    @staticmethod
    def check_axes(axes: dict) -> None:
        from neurospice import validate as v
        for x in axes.get("v_mem0_V", []):
            v.number("v_mem0_V", x)
        for x in axes.get("i_in_A", []):
            v.number("i_in_A", x)

    @staticmethod
    def spec(options) -> cu.NeuronSpec:
        return cu.NeuronSpec.from_dict(options["neuron"])

    def build(self, point, tag, tech: Technology, options):
        spec = self.spec(options)
        currents = point.get("i_seq_A") or [point["i_in_A"]]
        rng = mc_sample(point)
        header = (f"* neuron {spec.subckt} sha256 {spec.netlist_sha256[:16]} membrane {spec.membrane} "
                  f"spike {spec.spike_level_V:.9g} V step {spec.step_s:.9g} s")
        own, name = "", None
        if rng is not None and tech.name == "generic-180nm":
            own, name = cu.mismatched_subckt(spec, tag, rng, GENERIC_MISMATCH["a_vt_mV_um"],
                                             GENERIC_MOS_COMMON)
        text = "\n".join(x for x in (header, own, cu.instance(spec, tag, currents,
                                                                float(point["v_mem0_V"]), name)) if x)
        return DeckPiece(tag, text, {"currents": [float(c) for c in currents]})

    def analysis(self, piece, options) -> str:
        spec = self.spec(options)
        n = len(piece.data["currents"]) if piece is not None else 1
        return f".tran {spec.step_s / OUTPUT_STEPS_PER_STEP:.6g} {n * spec.step_s:.9g}"

    def assemble(self, tech, pieces, temperature_C, options) -> str:
        spec = self.spec(options)
        longest = max(pieces, key=lambda p: len(p.data["currents"]))
        cards = cu.generic_model_cards(GENERIC_MOS_COMMON) if tech.name == "generic-180nm" else []
        saves = " ".join(s for p in pieces for s in cu.saves(spec, p.tag))
        return "\n".join([f"* neurospice custom neuron {spec.name}", tech.header(), *cards,
                          cu.deck_library(spec.netlist_text), *(p.text for p in pieces),
                          f".save time {saves}", f".temp {temperature_C:g}",
                          self.analysis(longest, options), ".end", ""])

    def measure(self, plot, piece, point, options) -> dict:
        spec = self.spec(options)
        m = cu.measure_steps(plot, spec, piece.tag, piece.data["currents"])
        energy = [s + i for s, i in zip(m["energy_J"], m["energy_input_J"])]
        m = {**m, "energy_supplies_J": m["energy_J"], "energy_J": energy}
        if "i_seq_A" in point:
            return m
        return {k: (v[0] if isinstance(v, list) else {p: x[0] for p, x in v.items()}) for k, v in m.items()}


# -- the searches -------------------------------------------------------------------------
def boundary_task(v0: float, i_axis, row: list[dict], tolerance_A: float):
    """Generator task (:func:`run_searches`): the firing current of the row at ``v0``."""
    fired = [bool(r["spike"]) for r in row]
    if not any(fired):
        return {"kind": "never"}
    if all(fired):
        return {"kind": "always"}
    j = fired.index(True)
    lo, hi, r_lo, r_hi = float(i_axis[j - 1]), float(i_axis[j]), row[j - 1], row[j]
    while hi - lo > tolerance_A:
        mid = 0.5 * (lo + hi)
        res = (yield [{"v_mem0_V": v0, "i_in_A": mid}])[0]
        if res is None:
            raise CharacterizationError(f"boundary search at v_mem0 = {v0:g} V: the point "
                                        f"i_in = {mid:g} A failed to simulate")
        if res["spike"]:
            hi, r_hi = mid, res
        else:
            lo, r_lo = mid, res
    return {"kind": "boundary", "quiet_A": lo, "fired_A": hi, "quiet": r_lo, "fired": r_hi,
            "monotone": fired[j:] == [True] * (len(fired) - j)}


# -- entry point ----------------------------------------------------------------------------
def characterize_custom(neuron, *, quick: bool = False, corners=("tt",), temperatures_C=(27.0,),
                        mc_samples: int = 0, seed: int = 1, workers: int = 1,
                        scheduler: str | None = None, out: str | Path = "runs/custom",
                        cache_dir: str | Path | None = None, progress: bool = True) -> dict:
    """Characterize ``neuron`` (a :class:`NeuronSpec` or the path of its TOML) and write
    ``<out>/<name>/custom.json``; returns the CLI summary (``points, failed, cached,
    artefact, fit_rms, wall_s``, ...). Every option is checked before any simulation."""
    from neurospice import validate as v
    from neurospice.circuits.technology import CORNERS
    t0 = time.perf_counter()
    spec = neuron if isinstance(neuron, cu.NeuronSpec) else cu.load_neuron(neuron)
    corners, temps = list(corners), [float(t) for t in temperatures_C]
    if not corners or not temps:
        raise v.ConfigError("give at least one corner and one temperature")
    for c in corners:
        v.choice("corner", c, CORNERS)
    for t in temps:
        v.temperature_C("temperature_C", t)
    v.whole("mc_samples", mc_samples, lo=0)
    v.whole("seed", seed, lo=0)
    v.whole("workers", workers, lo=1)
    rows, cols = spec.grid_points(quick)
    v_axis = np.linspace(*spec.membrane_V, rows)
    i_axis = np.linspace(*spec.input_A, cols)
    options = {"neuron": spec.to_dict()}
    cache = PointCache(cache_dir) if cache_dir else None
    run = dict(workers=workers, scheduler=scheduler, cache=cache, progress=progress)

    def grid_sweep(corner, temp, mc=0):
        return run_sweep(Sweep(recipe="custom_neuron", technology=spec.technology, corners=[corner],
                               temperatures_C=[temp], mc_samples=mc, seed=seed, options=options,
                               axes={"v_mem0_V": v_axis.tolist(), "i_in_A": i_axis.tolist()}), **run)

    nominal = grid_sweep(corners[0], temps[0])
    stats = _counts(nominal)
    grid, failed = _grid(nominal, v_axis, i_axis)
    spikes = np.asarray(grid["spike"])
    where = (f"input {spec.input_A[0]:g}…{spec.input_A[1]:g} A, membrane start "
             f"{spec.membrane_V[0]:g}…{spec.membrane_V[1]:g} V, spike = {spec.pin_of('spike')} rising "
             f"through {spec.spike_level_V:g} V within {spec.step_s:g} s")
    if not spikes.any():
        raise CharacterizationError(f"neuron {spec.name} never spikes over the characterized range "
                                    f"({where}); widen [ranges] input_A or check [spike] level_V")
    if spikes.all():
        raise CharacterizationError(f"neuron {spec.name} always spikes over the characterized range "
                                    f"({where}); lower [ranges] input_A or check [spike] level_V")
    template = Sweep(recipe="custom_neuron", axes={}, technology=spec.technology, corners=[corners[0]],
                     temperatures_C=[temps[0]], seed=seed, options=options, point_list=[])
    tol = BOUNDARY_TOLERANCE * (spec.input_A[1] - spec.input_A[0])
    row_results = [[grid["cells"][r][c] for c in range(cols)] for r in range(rows)]
    tasks = [boundary_task(float(v0), i_axis, row_results[r], tol) for r, v0 in enumerate(v_axis)]
    boundaries, s = run_searches(tasks, template, **run)
    _add(stats, s)
    model = build_model(v_axis, i_axis, grid, boundaries)
    table = TableModel(model)
    check, s = _state_check(spec, table, template, quick, seed, run)
    _add(stats, s)
    variation = {}
    for corner in corners:
        for temp in temps:
            if (corner, temp) != (corners[0], temps[0]):
                res = grid_sweep(corner, temp)
                _add(stats, _counts(res))
                variation[f"{corner}/{temp:g}C"] = _against(table, _grid(res, v_axis, i_axis)[0], v_axis, i_axis)
    if mc_samples:
        res = grid_sweep(corners[0], temps[0], mc_samples)
        _add(stats, _counts(res))
        per = [_against(table, _grid(res, v_axis, i_axis, mc=k)[0], v_axis, i_axis) for k in range(mc_samples)]
        variation["monte_carlo"] = {
            "samples": mc_samples, "seed": seed,
            "mismatch_model": ("the PDK's per-device mismatch" if spec.technology.startswith("sky130") else
                               f"Pelgrom threshold shifts per transistor, A_VT = "
                               f"{GENERIC_MISMATCH['a_vt_mV_um']} mV·µm" if spec.technology == "generic"
                               else "none (a model file: no mismatch statistics known)"),
            **{k: [p[k] for p in per] for k in ("spike_cells_differing", "v_end_rms_diff_V",
                                                   "firing_current_top_row_A")}}
    fits = _fits(v_axis, i_axis, grid, boundaries, spec)
    summary = _summary(spec, table, model, stats, failed)
    artefact = {
        "family": "custom", "created": now_iso(),
        "provenance": {"technology": nominal.technology, "corner": corners[0], "temperature_C": temps[0],
                       "ngspice": nominal.ngspice, "netlist_hash": spec.netlist_sha256,
                       "neuron_source": spec.source, "grid": {"membrane_points": rows, "input_points": cols},
                       "boundary_tolerance_A": tol},
        "neuron": spec.to_dict(),
        "units": {"v_mem0_V": "V", "i_in_A": "A", "v_end_V": "V", "energy_J": "J", "spike_time_s": "s",
                  "boundary_A": "A", "step_s": "s"},
        "table": {k: grid[k] for k in ("v_mem0_V", "i_in_A", "v_end_V", "spike", "spike_time_s",
                                        "energy_J", "energy_input_J")},
        "model": model, "fits": fits, "state_check": check, "variation": variation,
        "failed_points": failed,
        "limits": ("The table holds one state, the membrane voltage at a step's start, and a constant "
                   "input current per step; everything else is assumed to settle within a step "
                   "(other nodes follow from the operating point with the membrane held). State that "
                   "outlives a step (a spike still under way at a step's end, charge on other nodes, "
                   "more than one spike per step) is not in the table: state_check measures its effect "
                   "on random sequences. Currents outside input_A are clamped to the range; start "
                   "voltages outside membrane_V to that range."),
        "summary": summary,
    }
    path = save_artefact(artefact, Path(out) / _safe(spec.name) / "custom.json")
    figure = _plot(artefact, path.with_name("custom.png"))
    return {"artefact": str(path), "figure": str(figure), **stats, "fit_rms": fits["table"]["rms_frac"],
            "spike_mismatch_heldout": fits["table"]["spike_mismatch_frac"],
            "state_check_spike_agreement": check["spike_agreement"],
            "firing_current_at_rest_A": summary["firing_current_at_rest_A"],
            "energy_per_spike_J": summary["energy_per_spike_J"], "technology": nominal.technology["labels"],
            "wall_s": time.perf_counter() - t0, **speed(stats["analysis_s"], stats["worker_s"])}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "neuron"


def _counts(res) -> dict:
    """A sweep's point counts and its time (summed by :func:`_add`, reported through
    :func:`~.sweep.speed`)."""
    return {"points": len(res.results), "cached": res.n_cached, "failed": len(res.failed),
            "analysis_s": res.analysis_s, "worker_s": res.worker_s}


def _add(stats: dict, s: dict) -> None:
    for k in ("points", "cached", "failed", "analysis_s", "worker_s"):
        stats[k] += s[k]


def _grid(res, v_axis, i_axis, mc=None) -> tuple[dict, list]:
    """Measured grid ``[rows][cols]`` of one sweep (one MC sample); failed cells filled from
    the nearest measured cell of their row, and listed."""
    rows, cols = len(v_axis), len(i_axis)
    cells = [[None] * cols for _ in range(rows)]
    failed = []
    for r in res.results:
        if r.point.get("mc") != mc:
            continue
        a = int(np.argmin(abs(v_axis - r.point["v_mem0_V"])))
        b = int(np.argmin(abs(i_axis - r.point["i_in_A"])))
        if r.status == "ok":
            cells[a][b] = r.result
        else:
            failed.append({"v_mem0_V": r.point["v_mem0_V"], "i_in_A": r.point["i_in_A"], "reason": r.reason})
    for a in range(rows):
        ok = [b for b in range(cols) if cells[a][b] is not None]
        if not ok:
            raise CharacterizationError(f"every point of the row v_mem0 = {v_axis[a]:g} V failed to "
                                        f"simulate, first: {failed[0]['reason'] if failed else '?'}")
        for b in range(cols):
            if cells[a][b] is None:
                cells[a][b] = cells[a][min(ok, key=lambda k: abs(k - b))]
    grid = {"v_mem0_V": v_axis.tolist(), "i_in_A": i_axis.tolist(), "cells": cells}
    for key in ("v_end_V", "spike", "spike_time_s", "energy_J", "energy_input_J"):
        grid[key] = [[c[key] for c in row] for row in cells]
    return grid, failed


def _against(table: TableModel, grid: dict, v_axis, i_axis) -> dict:
    """A variation grid against the nominal table model: spike cells that differ, end-voltage
    RMS difference (cells where both agree), and the firing current of the top row (the
    midpoint between its last quiet and first firing cell; ``None`` if it never or always fires)."""
    vv, ii = np.meshgrid(v_axis, i_axis, indexing="ij")
    z, v_next, _ = table.step(vv, ii)
    spk = np.asarray(grid["spike"], float)
    same = spk == z
    top = spk[-1] > 0.5
    first = int(np.argmax(top)) if top.any() else 0
    return {"spike_cells_differing": float(1 - same.mean()),
            "v_end_rms_diff_V": float(np.sqrt(np.mean((np.asarray(grid["v_end_V"])[same] - v_next[same]) ** 2))),
            "firing_current_top_row_A": float(0.5 * (i_axis[first - 1] + i_axis[first])) if first > 0 else None}


def _state_check(spec, table: TableModel, template, quick, seed, run) -> tuple[dict, dict]:
    """Random sequences (start voltage and currents uniform over the ranges) in ngspice
    against the table model rolled over them."""
    from dataclasses import replace
    n, steps = STATE_CHECK["quick" if quick else "full"], STATE_CHECK["steps"]
    rng = np.random.default_rng([seed, 7])
    v0 = rng.uniform(*spec.membrane_V, n)
    cur = rng.uniform(*spec.input_A, (n, steps))
    pts = [{"v_mem0_V": float(a), "i_seq_A": [float(x) for x in c]} for a, c in zip(v0, cur)]
    res = run_sweep(replace(template, point_list=pts), points_per_run=16, **{k: v for k, v in run.items()
                                                                            if k != "progress"},
                    progress=False)
    z, v_end, _ = table.run(v0, cur.T)
    ok = [k for k, r in enumerate(res.results) if r.status == "ok"]
    circ_z = np.array([res.results[k].result["spike"] for k in ok]).T          # [steps, n_ok]
    circ_v = np.array([res.results[k].result["v_end_V"] for k in ok]).T
    agree = circ_z == z[:, ok]
    err = np.abs(circ_v - v_end[:, ok])
    first_disagreement = [int(np.argmin(agree[:, j])) if not agree[:, j].all() else None for j in range(len(ok))]
    check = {"sequences": n, "steps": steps, "simulated": len(ok),
             "spike_agreement": float(agree.mean()) if len(ok) else None,
             "spike_agreement_first_step": float(agree[0].mean()) if len(ok) else None,
             "v_end_error_max_V": float(err.max()) if len(ok) else None,
             "v_end_error_rms_V": float(np.sqrt((err ** 2).mean())) if len(ok) else None,
             "v_end_error_rms_per_step_V": np.sqrt((err ** 2).mean(1)).tolist() if len(ok) else None,
             "sequences_with_disagreement": sum(x is not None for x in first_disagreement),
             "what": "start voltage and per-step currents uniform over the ranges; the whole sequence "
                     "in ngspice against the table model rolled over it (errors beyond the first step "
                     "include state the table does not hold)"}
    return check, _counts(res)


def _fits(v_axis, i_axis, grid, boundaries, spec) -> dict:
    """Held-out errors: the table model built from every other row and column predicts the
    cells left out (an upper bound on the full table's interpolation error), and a
    linearized LIF ``v' = β·v + g·i + c`` fitted to quiet cells of even rows, tested on odd."""
    keep_r = np.arange(0, len(v_axis), 2)
    keep_c = np.arange(0, len(i_axis), 2)
    sub = {k: np.asarray(grid[k])[np.ix_(keep_r, keep_c)].tolist() for k in ("v_end_V", "spike", "energy_J")}
    sub_b = [boundaries[r] for r in keep_r]
    half = TableModel(build_model(v_axis[keep_r], i_axis[keep_c], sub, sub_b))
    held = np.ones((len(v_axis), len(i_axis)), bool)
    held[np.ix_(keep_r, keep_c)] = False
    vv, ii = np.meshgrid(v_axis, i_axis, indexing="ij")
    z, v_next, _ = half.step(vv[held], ii[held])
    spk = np.asarray(grid["spike"], float)[held]
    v_true = np.asarray(grid["v_end_V"], float)[held]
    same = z == spk
    span_V = spec.membrane_V[1] - spec.membrane_V[0]
    table_fit = {"kind": "bilinear tables + bisected firing boundary, at half resolution",
                 "rms_frac": float(np.sqrt(np.mean((v_next[same] - v_true[same]) ** 2)) / span_V),
                 "spike_mismatch_frac": float(1 - same.mean()), "heldout_cells": int(held.sum())}
    quiet = ~(np.asarray(grid["spike"], float) > 0.5)
    even = np.zeros_like(quiet)
    even[::2] = True
    A = np.stack([vv, ii, np.ones_like(vv)], -1)
    end = np.asarray(grid["v_end_V"], float)
    coef, *_ = np.linalg.lstsq(A[quiet & even], end[quiet & even], rcond=None)
    test = quiet & ~even
    pred = A[test] @ coef
    beta, gain, offset = (float(x) for x in coef)
    fin = [(v, 0.5 * (b["quiet_A"] + b["fired_A"])) for v, b in zip(v_axis, boundaries) if b["kind"] == "boundary"]
    threshold = float(np.mean([beta * v + gain * i + offset for v, i in fin]))
    lif = {"kind": "linearized LIF v' = beta*v + gain*i + offset, fire at v' >= threshold, reset to rest_V",
           "beta": beta, "gain_V_per_A": gain, "offset_V": offset, "threshold_V": threshold,
           "rms_frac": float(np.sqrt(np.mean((pred - end[test]) ** 2)) / span_V) if test.any() else None}
    return {"table": table_fit, "lif": lif}


def _summary(spec, table: TableModel, model: dict, stats: dict, failed: list) -> dict:
    e_idle = float(table.step(np.array([spec.rest_V]), np.array([0.0]))[2][0])
    b_rest = float(table.firing_current(spec.rest_V))
    b_rest = b_rest if spec.input_A[0] <= b_rest <= spec.input_A[1] else None   # never/always from rest
    per_spike = [f - q for f, q, kind in zip(
        [bilinear(np.asarray(model["energy_fired_J"]), table.v_axis, table.i_axis, v, b) for v, b in
         zip(table.v_axis, table.boundary)],
        [bilinear(np.asarray(model["energy_quiet_J"]), table.v_axis, table.i_axis, v, b) for v, b in
         zip(table.v_axis, table.boundary)], model["row_kind"]) if kind == "boundary"]
    return {"step_s": spec.step_s, "rest_V": spec.rest_V, "spike_level_V": spec.spike_level_V,
            "input_A": list(spec.input_A), "membrane_V": list(spec.membrane_V),
            "firing_current_at_rest_A": b_rest, "energy_idle_step_J": e_idle,
            "energy_per_spike_J": float(np.mean(per_spike)) if per_spike else None,
            "rows_never_firing": model["row_kind"].count("never"),
            "rows_always_firing": model["row_kind"].count("always"),
            "failed_points": len(failed), **{k: stats[k] for k in ("points",)}}


def _plot(artefact: dict, path: Path) -> Path:
    """End-of-step voltage over (current, start voltage) with the firing boundary."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t, m = artefact["table"], artefact["model"]
    i_uA = np.asarray(t["i_in_A"]) * 1e6
    v = np.asarray(t["v_mem0_V"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    im = a.pcolormesh(i_uA, v, np.asarray(t["v_end_V"]), shading="nearest", cmap="viridis")
    fig.colorbar(im, ax=a, label="end-of-step membrane (V)")
    bnd = np.asarray(m["boundary_A"]) * 1e6
    inside = (bnd >= i_uA[0]) & (bnd <= i_uA[-1])
    a.plot(bnd[inside], v[inside], "w.-", label="firing boundary (bisection)")
    a.set(xlabel="input current (µA)", ylabel="membrane at step start (V)",
          title=f"{artefact['neuron']['name']}: one step of {artefact['summary']['step_s'] * 1e9:g} ns")
    a.legend(loc="lower right", fontsize=8)
    e = np.asarray(t["energy_J"]) * 1e15
    im2 = b.pcolormesh(i_uA, v, e, shading="nearest", cmap="magma")
    fig.colorbar(im2, ax=b, label="energy per step (fJ)")
    b.set(xlabel="input current (µA)", ylabel="membrane at step start (V)", title="energy (supplies + input)")
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=100)
    plt.close(fig)
    return path
