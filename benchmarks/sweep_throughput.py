"""Sweep throughput on a sky130 standard cell (``sky130_fd_sc_hd__inv_1``), in one run.

Prints points/s for
  1. a naive loop: a new PySpice circuit + simulation per point (ngspice shared library),
  2. the sweep runner with 1 worker, and
  3. the sweep runner with 2 workers
(2 and 3 pack many points per ngspice start and run with an empty cache), and the
ratios to the naive loop. Usage::

    python benchmarks/sweep_throughput.py [--points 24] [--technology sky130|generic]

The naive loop uses the same slim sky130 library as the runner (the full
``.lib`` costs ~27 s per start here, which would make the naive loop absurd).
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time

import numpy as np


def naive_loop(tech, loads_fF):
    """One PySpice Circuit and one ngspice (shared-library) transient per point."""
    from PySpice.Spice.Netlist import Circuit
    from PySpice.Unit import u_F, u_ns, u_ps, u_V
    logging.getLogger("PySpice").setLevel(logging.ERROR)
    results = []
    for load in loads_fF:
        c = Circuit("inv point")
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=24)
    ap.add_argument("--technology", default="sky130", choices=["sky130", "generic"])
    args = ap.parse_args(argv)

    from neurospice.characterize.sweep import PointCache, Sweep, run_sweep
    from neurospice.circuits.technology import get_technology
    from neurospice.circuits.errors import TechnologyError
    try:
        tech = get_technology(args.technology)
    except TechnologyError as exc:
        print(f"# {exc}\n# falling back to the generic technology")
        tech = get_technology("generic")
    loads = list(np.linspace(2, 50, args.points))
    rows = []
    t0 = time.perf_counter()
    naive_loop(tech, loads)
    rows.append(("naive loop (new PySpice simulation per point)", time.perf_counter() - t0))
    for workers in (1, 2):
        sw = Sweep("inverter", {"load_fF": loads}, technology=tech.name)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            res = run_sweep(sw, workers=workers, cache=PointCache(tmp), progress=False,
                            points_per_run=max(1, args.points // 4))
            assert not res.failed, res.failed[0].reason
            rows.append((f"sweep runner, {workers} worker{'s' if workers > 1 else ''}",
                         time.perf_counter() - t0))
    base = args.points / rows[0][1]
    print(f"# {args.points} points of {tech.label} sky130_fd_sc_hd__inv_1 transient (9 ns)"
          if tech.cells_dir else f"# {args.points} points, {tech.label} inverter")
    print(f"{'method':<48} {'points/s':>10} {'vs naive':>9}")
    for name, wall in rows:
        pps = args.points / wall
        print(f"{name:<48} {pps:10.2f} {pps / base:8.2f}x")


if __name__ == "__main__":
    main()
