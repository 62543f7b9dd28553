"""Sweep throughput on a sky130 standard cell (``sky130_fd_sc_hd__inv_1``), in one run.

Prints points/s for
  1. the naive loop a PySpice user writes: a new PySpice circuit + simulation per point
     (ngspice shared library) that includes the sky130 PDK's full ``.lib`` — every load parses
     the whole PDK (~20–30 s here), so only ``--full-pdk-points`` points (default 2) are timed
     and the per-point time is extrapolated to the sweep (the output says so);
  2. the same naive loop on the slim sky130 library the runner uses (a second, fairer
     reference: it isolates what packing points per ngspice start buys);
  3. the sweep runner with 1 worker, and
  4. the sweep runner with 2 workers
(3 and 4 pack many points per ngspice start and run with an empty cache), the ratios to the
naive loops, and the runner's efficiency: ngspice's own "Total analysis time" summed over its
runs / (wall × workers), with where the rest of the wall went (ngspice start-up and model
parsing, process start/exit, raw-file reading, Python). Usage::

    python benchmarks/sweep_throughput.py [--points 24] [--technology sky130|generic] [--json]

Without sky130 (or with ``--technology generic``) the loops run on the generic technology and
``runner_vs_naive_full_pdk`` is null. ``--json`` prints one JSON object as the last line:
``efficiency`` (runner, 1 worker), ``runner_vs_naive_full_pdk``, ``runner_vs_naive_slim``, and more.
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time

import numpy as np


def naive_loop(tech, loads_fF, full_library: bool = False):
    """One PySpice Circuit and one ngspice (shared-library) transient per point.
    ``full_library``: include the PDK the way its documentation says (``.lib <file> <corner>``)."""
    from PySpice.Spice.Netlist import Circuit
    from PySpice.Unit import u_F, u_ns, u_ps, u_V
    logging.getLogger("PySpice").setLevel(logging.ERROR)
    results = []
    for load in loads_fF:
        c = Circuit("inv point")
        if full_library:
            c.lib(tech.model_files[0], tech.corner)
        else:
            for line in tech.header().splitlines():
                c.raw_spice += line + "\n"
        if tech.cells_dir:
            c.include(str(tech.cell_file("inv_1")))
        c.V("dd", "vdd", c.gnd, 1.8 @ u_V)
        c.PulseVoltageSource("in", "a", c.gnd, initial_value=0 @ u_V, pulsed_value=1.8 @ u_V,
                             delay_time=1 @ u_ns, rise_time=50 @ u_ps, fall_time=50 @ u_ps,
                             pulse_width=2 @ u_ns, period=4 @ u_ns)
        c.C("load", "y", c.gnd, load * 1e-15 @ u_F)
        if tech.cells_dir:
            c.X("inv", "sky130_fd_sc_hd__inv_1", "a", c.gnd, c.gnd, "vdd", "vdd", "y")
        else:
            for dev in (tech.mosfet("n1", "y", "a", "0", "0", "n", 0.65, 0.18, scope="b"),
                        tech.mosfet("p1", "y", "a", "vdd", "vdd", "p", 1.0, 0.18, scope="b")):
                line, cards = dev
                c.raw_spice += "\n".join([*cards, line]) + "\n"
        sim = c.simulator(simulator="ngspice-shared")
        for line in tech.spiceinit.splitlines():
            sim._ngspice_shared.exec_command(line)
        analysis = sim.transient(step_time=1 @ u_ps, end_time=9 @ u_ns)
        results.append(float(np.asarray(analysis["y"])[-1]))
    return results


def _breakdown(res) -> dict:
    """Where a sweep's wall went (seconds), from ngspice's own statistics and the runner's timers."""
    t = res.timing
    batches = t["run_s"] + t["read_s"] + t["python_s"]
    return {"analysis_s": round(t["analysis_s"], 3),
            "ngspice_startup_and_parse_s": round(t["ngspice_s"] - t["analysis_s"], 3),
            "process_start_exit_s": round(t["run_s"] - t["ngspice_s"], 3),
            "raw_read_s": round(t["read_s"], 3), "batch_python_s": round(t["python_s"], 3),
            # outside the batches: cache keys and lookups, cache writes, waiting on the last batch
            "runner_outside_batches_s": round(res.wall_s * res.workers - batches, 3),
            "ngspice_runs": t["runs"],
            # ngspice's own elapsed time (start-up + parse + analysis) / (wall × workers): the
            # runner's part is 1 - this; analysis / ngspice elapsed is ngspice's own ceiling
            "ngspice_share": round(t["ngspice_s"] / (res.wall_s * res.workers), 3),
            "analysis_share_of_ngspice": round(t["analysis_s"] / t["ngspice_s"], 3) if t["ngspice_s"] else None}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=24)
    ap.add_argument("--technology", default="sky130", choices=["sky130", "generic"])
    ap.add_argument("--full-pdk-points", type=int, default=2,
                    help="points the full-PDK naive loop times (each loads the whole PDK); 0 skips it")
    ap.add_argument("--points-per-run", type=int, default=None,
                    help="points per ngspice start in the runner (default: points / 4)")
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = ap.parse_args(argv)

    from neurospice.characterize.sweep import PointCache, Sweep, run_sweep
    from neurospice.circuits.errors import TechnologyError
    from neurospice.circuits.technology import get_technology, sky130, sky130_available
    notes = []
    try:
        tech = get_technology(args.technology)
    except TechnologyError as exc:
        print(f"# {exc}\n# falling back to the generic technology")
        tech = get_technology("generic")
    full = sky130(tech.corner, full_library=True) if tech.name == "sky130" and sky130_available() else None
    if full is None:
        notes.append("no sky130 run: the full-PDK naive loop is skipped (runner_vs_naive_full_pdk null)")
    loads = list(np.linspace(2, 50, args.points))
    ppr = args.points_per_run or max(1, args.points // 4)
    rows = []   # (name, seconds per point, note)

    t0 = time.perf_counter()
    naive_loop(tech, loads)
    naive_slim_s = (time.perf_counter() - t0) / args.points
    rows.append((f"naive loop, {'slim library' if tech.name == 'sky130' else tech.name} (PySpice)",
                 naive_slim_s, ""))
    naive_full_s = None
    if full is not None and args.full_pdk_points > 0:
        n_full = min(args.full_pdk_points, args.points)
        t0 = time.perf_counter()
        naive_loop(full, loads[:n_full], full_library=True)
        naive_full_s = (time.perf_counter() - t0) / n_full
        note = (f"{n_full} of {args.points} points timed, per-point time extrapolated "
                f"(each point loads the full PDK .lib)")
        notes.append(f"naive loop, full PDK: {note}")
        rows.append(("naive loop, full PDK .lib (PySpice)", naive_full_s, note))
    runs = {}
    for workers in (1, 2):
        sw = Sweep("inverter", {"load_fF": loads}, technology=tech.name)
        with tempfile.TemporaryDirectory() as tmp:
            res = run_sweep(sw, workers=workers, cache=PointCache(tmp), progress=False,
                            points_per_run=ppr)
            assert not res.failed, res.failed[0].reason
        runs[workers] = res
        rows.append((f"sweep runner, {workers} worker{'s' if workers > 1 else ''}",
                     res.wall_s / args.points,
                     f"efficiency {res.efficiency:.2f}" if res.efficiency is not None else ""))

    print(f"# {args.points} points of {tech.label} sky130_fd_sc_hd__inv_1 transient (9 ns), "
          f"runner: {ppr} points per ngspice start"
          if tech.cells_dir else f"# {args.points} points, {tech.label} inverter, "
                                 f"runner: {ppr} points per ngspice start")
    print(f"{'method':<44} {'points/s':>10} {'vs slim':>8} {'vs full':>8}  note")
    for name, per_point, note in rows:
        vs_full = f"{naive_full_s / per_point:7.1f}x" if naive_full_s else f"{'-':>8}"
        print(f"{name:<44} {1 / per_point:10.2f} {naive_slim_s / per_point:7.2f}x {vs_full}  {note}")
    for workers, res in runs.items():
        print(f"# runner, {workers} worker(s), where the time went (s): "
              + ", ".join(f"{k} {v}" for k, v in _breakdown(res).items()))
    for n in notes:
        print(f"# {n}")
    one = runs[1]
    summary = {
        "efficiency": None if one.efficiency is None else round(one.efficiency, 3),
        "efficiency_2_workers": None if runs[2].efficiency is None else round(runs[2].efficiency, 3),
        "runner_vs_naive_full_pdk": round(naive_full_s / (one.wall_s / args.points), 2) if naive_full_s else None,
        "runner_vs_naive_slim": round(naive_slim_s / (one.wall_s / args.points), 2),
        "runner_2_workers_vs_naive_slim": round(naive_slim_s / (runs[2].wall_s / args.points), 2),
        "runner_2_workers_vs_naive_full_pdk": (round(naive_full_s / (runs[2].wall_s / args.points), 2)
                                               if naive_full_s else None),
        "points": args.points, "points_per_run": ppr, "technology": tech.label,
        "naive_full_pdk_s_per_point": round(naive_full_s, 3) if naive_full_s else None,
        "naive_full_pdk_points_timed": min(args.full_pdk_points, args.points) if naive_full_s else 0,
        "naive_full_pdk_extrapolated": bool(naive_full_s) and args.full_pdk_points < args.points,
        "naive_slim_s_per_point": round(naive_slim_s, 4),
        "runner_1_worker_s_per_point": round(one.wall_s / args.points, 4),
        "runner_2_workers_s_per_point": round(runs[2].wall_s / args.points, 4),
        "breakdown_1_worker": _breakdown(one), "breakdown_2_workers": _breakdown(runs[2]),
        "notes": notes,
    }
    if args.json:
        print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
