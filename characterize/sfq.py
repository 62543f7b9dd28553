"""Characterization of the SFQ cells and the counting neuron in ngspice, through the sweep runner.

Every transient is one sweep point of the recipe :class:`SFQBenchRecipe` (a bench of
:mod:`~neurospice.characterize.sfq_benches` at a global bias scale, and for the neuron its
threshold and input rate), so each is cached, resumable after a kill, and runs on ``workers``
local threads or a Dask cluster (``scheduler``). The searches are tasks for
:func:`~neurospice.characterize.sweep.run_searches` — every round of every bisection runs as
one sweep:

* cells: function at nominal bias, then the bias margins (both sides bisected in lockstep);
* neuron, per threshold: transfer and function, bias window, energy per spike;
* the neuron's maximum input rate (geometric bisection), which sets the static energy per spike.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..circuits import sfq
from ..circuits.errors import NeurospiceError
from ..files import atomic_savefig
from .recipes import DeckPiece, WholeDeckRecipe, register_recipe
from .sfq_benches import (BIAS_VOLTAGE_V, CELL_BENCHES, INHIBITION_EXPECTED, NEURON_INHIBITORY,
                          NEURON_INPUTS, NEURON_STAGES, STEP_S, Bench, BiasError, bench_inhibition,
                          bench_neuron, bench_netlist, check, dut_stats, expected_transfer, margin_pct,
                          exact_plot, neuron_transfer, read_bench, spikes_per_step)
from .sweep import Sweep, run_searches

#: the maximum-rate bisection sets the static energy per spike, so it keeps at least this many
#: steps even when the margins are bisected coarsely (geometric between 1 and 150 GHz: 4 steps
#: leave a factor 150^(1/16) ≈ 1.37 of uncertainty)
MIN_RATE_STEPS = 4
#: the neuron's nominal input rate for its transfer and margins (10 GHz, well below the maximum)
NOMINAL_RATE_HZ = 10e9
#: samples kept of the plotted neuron run's traces (the raw transient has ~10⁴)
PLOT_SAMPLES = 2000


def bench_for(point: dict) -> Bench:
    """The bench a sweep point names: a cell (``bench`` = its name) or the neuron
    (``bench = "neuron"``, ``stages``, ``rate_Hz``)."""
    if point["bench"] == "neuron":
        return bench_neuron(int(point["stages"]), rate_Hz=float(point.get("rate_Hz", NOMINAL_RATE_HZ)))
    if point["bench"] == "neuron_inhibition":
        stepped = bench_inhibition()
        stepped.bench.stepped = stepped
        return stepped.bench
    try:
        return CELL_BENCHES[point["bench"]]()
    except KeyError:
        raise NeurospiceError(f"unknown SFQ bench {point['bench']!r}; have {sorted(CELL_BENCHES)}, "
                              "'neuron' and 'neuron_inhibition'") from None


@register_recipe
@dataclass
class SFQBenchRecipe(WholeDeckRecipe):
    """One transient of an SFQ bench at a global bias scale (one point per ngspice run: each
    bench has its own length). ``measure`` gives pulses, slips, early switching, bias work,
    whether the bench's check passed, the cell-under-test's numbers and, for the neuron, its
    transfer (and, at nominal bias and rate, the traces its plot needs)."""

    name: str = "sfq_bench"
    version: int = 3           #: 2: the neuron has inhibit gates; 3: sub-gap decks

    def build(self, point, tag, tech, options):
        bench = bench_for(point)
        net, parts, jjs = bench_netlist(bench, float(point["bias_scale"]))
        return DeckPiece(tag, net, {"bench": bench, "parts": parts, "jjs": jjs})

    def measure(self, plot, piece, point, options) -> dict:
        b = piece.data["bench"]
        bias_scale = float(point["bias_scale"])
        plot, full = exact_plot(plot, b, bias_scale, piece.data["jjs"])
        run = read_bench(plot, b, piece.data["parts"], piece.data["jjs"], bias_scale, full)
        out = {"pulses": run.pulses, "slips": run.slips, "early": run.early,
               "bias_work_J": run.bias_work_J, "ok": check(b, run),
               "full_quasiparticle_model": full}
        if b.dut:
            out["dut"] = dut_stats(run, b.dut)
        if point["bench"] == "neuron_inhibition":
            out["steps"] = spikes_per_step(b.stepped, run) if run.pulses["O_J1"] else []
            out["ok"] = not run.early and out["steps"] == INHIBITION_EXPECTED
        if point["bench"] == "neuron":
            out["transfer"] = neuron_transfer(b, run, len(b.input_times))
            out["input_times_s"] = list(b.input_times)
            if point["bias_scale"] == 1.0 and point.get("rate_Hz", NOMINAL_RATE_HZ) == NOMINAL_RATE_HZ:
                out["traces"] = _traces(plot, int(point["stages"]))
        return out


def _traces(plot, stages: int) -> dict:
    keep = np.unique(np.linspace(0, len(plot["time"]) - 1, PLOT_SAMPLES).astype(int))
    tr = {"time_s": plot["time"][keep].tolist(), "out_V": plot["v(oo)"][keep].tolist()}
    for k in range(stages):
        ph = plot[f"v(ph_n_f{k}_b_j1)"]
        tr[f"stage{k}_flips"] = ((ph[keep] - ph[0]) / (2 * np.pi)).tolist()
    return tr


def _works(result) -> bool:
    return bool(result) and result["ok"]


def _at(base: dict, bias_scale: float) -> dict:
    return {**base, "bias_scale": float(bias_scale)}


def margin_task(base: dict, steps: int, lo_limit: float = 0.3, hi_limit: float = 2.0):
    """``(low, high)`` global bias scales bounding the working range that contains 1.0: each
    side tested at its limit, then bisected ``steps`` times, both sides in the same rounds."""
    (nominal,) = yield [_at(base, 1.0)]
    if not _works(nominal):
        raise NeurospiceError(f"SFQ bench {base}: does not work at nominal bias")
    sides = [[1.0, lim, None] for lim in (lo_limit, hi_limit)]          # good, bad, answer
    outs = yield [_at(base, lim) for lim in (lo_limit, hi_limit)]
    for side, out in zip(sides, outs):
        if _works(out):
            side[2] = side[1]
    for _ in range(steps):
        active = [s for s in sides if s[2] is None]
        if not active:
            break
        mids = [0.5 * (s[0] + s[1]) for s in active]
        outs = yield [_at(base, m) for m in mids]
        for s, m, out in zip(active, mids, outs):
            s[0 if _works(out) else 1] = m
    return tuple(s[2] if s[2] is not None else s[0] for s in sides)


def cell_task(name: str, steps: int):
    """A cell: function at nominal bias, bias margins, junctions, bias and energy."""
    base = {"bench": name}
    (nominal,) = yield [_at(base, 1.0)]
    if nominal is None:
        raise NeurospiceError(f"cell {name}: the nominal-bias run failed in ngspice")
    if nominal["early"]:
        raise BiasError(name, 1.0, nominal["early"])
    if not nominal["ok"]:
        raise NeurospiceError(f"cell {name} fails its function test at nominal bias: {nominal['pulses']}")
    low, high = yield from margin_task(base, steps)
    bench = CELL_BENCHES[name]()
    probe = next(iter(bench.expect))
    switches = sum(abs(v) for k, v in nominal["slips"].items() if k.startswith(bench.dut + "_"))
    return {"margin_pct": round(margin_pct(low, high), 1), "bias_low": round(low, 3),
            "bias_high": round(high, 3), **nominal["dut"], "switches": switches,
            "output_pulses": len(nominal["pulses"][probe]),
            "energy_per_switch_aJ": round(nominal["bias_work_J"] / max(1, sum(abs(v) for v in nominal["slips"].values())) * 1e18, 3)}


def neuron_task(stages: int, steps: int, margin: bool = True):
    """One threshold ``2**stages``: transfer, function, bias window, energy (static part later)."""
    base = {"bench": "neuron", "stages": stages, "rate_Hz": NOMINAL_RATE_HZ}
    (run,) = yield [_at(base, 1.0)]
    if run is None:
        raise NeurospiceError(f"SFQ neuron T={2 ** stages}: the nominal run failed in ngspice")
    thr = 2 ** stages
    n_in = len(run["input_times_s"])
    ok = run["transfer"] == expected_transfer(thr, n_in) and run["ok"]
    low = high = None
    if margin:
        low, high = (yield from margin_task(base, steps)) if run["ok"] else (1.0, 1.0)
    n_out = max(1, len(run["pulses"]["O_J1"]))
    return {"threshold": thr, "counts_correct": ok, "transfer_inputs": list(range(n_in + 1)),
            "transfer_spikes": run["transfer"],
            "margin_pct": round(margin_pct(low, high), 1) if margin else None,
            "bias_low": round(low, 3) if margin else None, "bias_high": round(high, 3) if margin else None,
            "jj_count": run["dut"]["jj_count"], "static_power_uW": round(run["dut"]["static_power_uW"], 3),
            "energy_per_spike_dynamic_aJ": round(run["bias_work_J"] / n_out * 1e18, 2),
            "traces": run.get("traces"), "input_times_s": run["input_times_s"]}


#: bias scales of the inhibition check in a full run (the cells' truth-table biases)
INHIBITION_BIASES = (0.8, 1.0, 1.2)


def inhibition_task(biases=INHIBITION_BIASES):
    """The neuron with inhibitory inputs against the hand-worked table of
    :data:`~neurospice.characterize.sfq_benches.INHIBITION_EXPECTED` at each bias scale."""
    runs = yield [_at({"bench": "neuron_inhibition"}, b) for b in biases]
    return {"expected": INHIBITION_EXPECTED,
            "by_bias": {str(b): {"steps": r["steps"] if r else None, "ok": bool(r and r["ok"])}
                        for b, r in zip(biases, runs)},
            "counts_correct": all(r and r["ok"] for r in runs),
            "jj_count": runs[0]["dut"]["jj_count"] if runs[0] else None}


#: the maximum-rate search's upper bound (well above what these junctions count at)
MAX_RATE_SEARCH_HZ = 150e9


def rate_task(stages: int, lo_Hz: float = NOMINAL_RATE_HZ, hi_Hz: float = MAX_RATE_SEARCH_HZ,
              steps: int = 6):
    """Highest input rate (Hz) at which the neuron still counts right (geometric bisection
    between ``lo_Hz``, which must work, and ``hi_Hz``). The default lower bound is the nominal
    rate the transfer is characterized at: a slower one only lengthens the bench (its pulses
    spread over ``fan-in / rate``) — at 1 GHz 8.8 ns of transient against 1.6 ns."""
    def at(rate):
        return {"bench": "neuron", "stages": stages, "rate_Hz": float(rate), "bias_scale": 1.0}
    (low,) = yield [at(lo_Hz)]
    if not _works(low):
        raise NeurospiceError(f"the SFQ neuron fails already at {lo_Hz / 1e9:g} GHz input rate")
    (high,) = yield [at(hi_Hz)]
    if _works(high):
        return hi_Hz
    good, bad = lo_Hz, hi_Hz
    for _ in range(steps):
        mid = math.sqrt(good * bad)
        (r,) = yield [at(mid)]
        good, bad = (mid, bad) if _works(r) else (good, mid)
    return good


def plot_neuron(neuron: dict, stages: int, path) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tr = neuron["traces"]
    t_ps = np.asarray(tr["time_s"]) * 1e12
    fig, axes = plt.subplots(stages + 2, 1, figsize=(9, 1.4 * (stages + 2)), sharex=True)
    axes[0].eventplot([np.array(neuron["input_times_s"]) * 1e12], colors="C0")
    axes[0].set_ylabel("inputs")
    axes[0].set_yticks([])
    for k in range(stages):
        axes[k + 1].plot(t_ps, tr[f"stage{k}_flips"], lw=1)
        axes[k + 1].set_ylabel(f"stage {k}\nB flips")
    axes[-1].plot(t_ps, np.asarray(tr["out_V"]) * 1e3, color="C3", lw=1)
    axes[-1].set_ylabel("output\nmV")
    axes[-1].set_xlabel("time (ps)")
    fig.suptitle(f"SFQ counting neuron, threshold {2 ** stages}: {len(neuron['input_times_s'])} inputs at "
                 f"{NOMINAL_RATE_HZ / 1e9:g} GHz over {NEURON_INPUTS} lines → {neuron['transfer_spikes'][-1]} spikes")
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return str(path)


def characterize_sfq(quick: bool = False, out="runs/sfq", progress: bool = False, cells=True,
                     bisection_steps: int | None = None, workers: int = 1, scheduler: str | None = None,
                     margins_for: tuple[int, ...] | None = None, cache=None,
                     thresholds: tuple[int, ...] | None = None, rate_steps: int | None = None,
                     rate_bounds_Hz: tuple[float, float] = (NOMINAL_RATE_HZ, MAX_RATE_SEARCH_HZ)) -> dict:
    """Cells (function, margins, bias, energy) and the signed counting neuron (transfer for
    every threshold, margins, maximum input rate, energy per spike); artefact + plot under
    ``out``. ``quick``: thresholds 1, 2 and 4 only, coarser bisections; ``cells=False`` skips
    the cell table (the neuron is what training needs); ``workers``/``scheduler``: the sweep
    runner's local threads or Dask cluster; ``margins_for``: thresholds whose bias window is
    bisected (default all; every threshold shares the same cells and bias network — the full run
    finds one window for all five — so one measured window stands for the others when time is
    short); ``cache``: the sweep runner's point cache (default the user cache); ``cells`` may
    also name the cells to characterize; ``thresholds`` (powers of two up to
    ``2**NEURON_STAGES``) replace the default set; ``rate_steps``/``rate_bounds_Hz``: the
    maximum-rate bisection (threshold 4). The headline numbers are threshold 4's where it was
    characterized, else the largest threshold's."""
    from neurospice import validate as v

    from .artefact import save_artefact
    t_start = time.perf_counter()
    out = Path(out)
    v.whole("bisection_steps", bisection_steps, lo=0, optional=True)
    v.whole("rate_steps", rate_steps, lo=0, optional=True)
    v.whole("workers", workers, lo=1)
    v.number("rate_bounds_Hz low", rate_bounds_Hz[0], lo=0, lo_open=True)
    v.number("rate_bounds_Hz high", rate_bounds_Hz[1], lo=rate_bounds_Hz[0], lo_open=True)
    steps = bisection_steps if bisection_steps is not None else (5 if quick else 7)
    if thresholds is not None:
        bad = [t for t in thresholds if t < 1 or t & (t - 1) or t > 2 ** NEURON_STAGES]
        if bad:
            raise NeurospiceError(f"SFQ thresholds must be powers of two from 1 to {2 ** NEURON_STAGES}, got {bad}")
        stage_list = sorted({int(math.log2(t)) for t in thresholds})
    else:
        stage_list = [0, 1, 2] if quick else list(range(NEURON_STAGES + 1))
    names = list(CELL_BENCHES) if cells is True else list(cells or [])
    unknown = [n for n in names if n not in CELL_BENCHES]
    if unknown:
        raise NeurospiceError(f"unknown SFQ cells {unknown}; have {sorted(CELL_BENCHES)}")
    rate_steps = rate_steps if rate_steps is not None else max(MIN_RATE_STEPS, steps - 1)
    with_neuron = bool(stage_list)            # thresholds=(): the cells alone, no neuron
    tasks = ([rate_task(2, *rate_bounds_Hz, steps=rate_steps)] * with_neuron
             + [inhibition_task((1.0,) if quick else INHIBITION_BIASES)] * with_neuron
             + [neuron_task(k, steps, margins_for is None or 2 ** k in margins_for) for k in stage_list]
             + [cell_task(name, steps) for name in names])
    template = Sweep(recipe="sfq_bench", axes={}, technology="generic")
    answers, stats = run_searches(tasks, template, workers=workers, scheduler=scheduler, cache=cache,
                                  progress=progress)
    rate_Hz, inhibition = answers[:2] if with_neuron else (None, None)
    first = 2 * with_neuron
    neurons = {2 ** k: a for k, a in zip(stage_list, answers[first:first + len(stage_list)])}
    cell_res = dict(zip(names, answers[first + len(stage_list):]))
    out.mkdir(parents=True, exist_ok=True)
    head_thr = (4 if 4 in neurons else max(neurons)) if neurons else None
    plot = (plot_neuron(neurons[head_thr], int(math.log2(head_thr)), out / f"sfq_neuron_T{head_thr}.png")
            if neurons else None)
    for thr, n in neurons.items():
        n.pop("traces", None)
        n.pop("input_times_s", None)
        n["energy_per_spike_static_aJ"] = round(n["static_power_uW"] * 1e-6 * thr / rate_Hz * 1e18, 2)
        n["energy_per_spike_aJ"] = round(n["energy_per_spike_dynamic_aJ"] + n["energy_per_spike_static_aJ"], 2)
    headline = neurons.get(head_thr, {})
    summary = {
        "bias_margin_pct": min((n["margin_pct"] for n in neurons.values() if n["margin_pct"] is not None),
                               default=None),
        "max_input_rate_GHz": round(rate_Hz / 1e9, 1) if rate_Hz else None,
        "counts_correct": (all(n["counts_correct"] for n in neurons.values()) and inhibition["counts_correct"]
                           if neurons else None),
        "inhibition": inhibition,
        "energy_per_spike_aJ": headline.get("energy_per_spike_aJ"), "headline_threshold": head_thr,
        "thresholds": sorted(neurons),
        "fan_in": NEURON_INPUTS,
        "fan_in_inhibitory": NEURON_INHIBITORY,
        "threshold_programmable": True,
        "cells": cell_res,
        "neurons": {str(k): v for k, v in neurons.items()},
        "bias_voltage_mV": BIAS_VOLTAGE_V * 1e3,
        "notes": ("energy_per_spike_aJ at the headline threshold: bias-source work per spike (Σ I_b·Φ0 per "
                  "2π slip) + static power of a resistive bias network at the bias voltage over "
                  "one spike period at the maximum input rate; cryocooling not included. "
                  "One netlist (4 counter stages) programmed on chip by fix/free control pulses to each "
                  "threshold; every run starts with the flush input. fan_in excitatory lines (merger "
                  "tree) and fan_in_inhibitory inhibitory lines (one inhibit gate each); the "
                  "inhibition check runs the hand-worked table INHIBITION_EXPECTED."),
    }
    art = save_artefact({"family": "sfq", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "provenance": {"junction_model": vars(sfq.JJModel()), "step_s": STEP_S,
                                        "step_rule": "maximum step; ngspice's error control chooses "
                                                     "shorter ones", "analysis_options": sfq.ANALYSIS_OPTIONS,
                                        "junction_decks": "sub-gap (quasiparticle branch as R0), "
                                                          "re-run with the full model where a junction "
                                                          f"reached {sfq.subgap_limit_V():g} V",
                                        "quick": quick, "cells": cells, "bisection_steps": steps,
                                        "recipe": f"{SFQBenchRecipe.name} v{SFQBenchRecipe.version}"},
                         "summary": summary}, out / "sfq.json")
    return {**summary, **stats, "artefact": str(art), "plot": plot,
            "wall_s": round(time.perf_counter() - t_start, 1)}
