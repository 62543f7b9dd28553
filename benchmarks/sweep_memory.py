"""Memory over a long sweep: does the sweep runner's resident memory stay flat as points go by?

Runs one sweep of the RC recipe (the cheapest real circuit: an RC low-pass, 16 points per
ngspice run) over ``--points`` points (default 5,000) with an empty cache in a temporary
folder, 2 worker threads, and samples the process every 20 ms from a thread: resident memory
(``VmRSS`` / peak ``VmHWM`` from ``/proc/self/status``) and the Python heap (``tracemalloc``:
live and peak bytes; one frame per allocation, its own bookkeeping counts in the RSS). It
prints a table at the start and after 10 %, 50 % and 100 % of the points (counted as their
cache entries are written), and after the sweep returned its results. With ``--json`` the last
stdout line is one JSON object::

    points, rss_start_MiB, rss_end_MiB, rss_peak_MiB, heap_end_MiB, heap_peak_MiB,
    rss_growth_MiB_per_1000_points, heap_growth_MiB_per_1000_points, wall_s, checkpoints

The growth figures are the slope between the 10 % and the 100 % checkpoint (past the start-up
allocations) per 1,000 points; what ``run_sweep`` must hand back (one result per point) is part
of them. Usage::

    python benchmarks/sweep_memory.py [--points 5000] [--workers 2] [--json]
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
import threading
import time
import tracemalloc


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024          # kB → MiB
    raise RuntimeError(f"no {field} in /proc/self/status")


def sample(done: int) -> dict:
    heap, heap_peak = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (0, 0)
    return {"points_done": done, "rss_MiB": round(_status_mib("VmRSS"), 2),
            "rss_peak_MiB": round(_status_mib("VmHWM"), 2), "heap_MiB": round(heap / 2**20, 2),
            "heap_peak_MiB": round(heap_peak / 2**20, 2)}


def rc_sweep(n_points: int):
    """An RC sweep of at least ``n_points`` points (50 capacitances × enough resistances), every
    time constant well inside the 8 ns transient."""
    from neurospice.characterize.sweep import Sweep
    n_c = 50
    n_r = math.ceil(n_points / n_c)
    r = [1e3 + 1e3 * i / n_r for i in range(n_r)]                 # 1 .. 2 kΩ
    c = [1e-13 + 0.9e-12 * j / n_c for j in range(n_c)]           # 0.1 .. 1 pF
    return Sweep(recipe="rc", axes={"r_ohm": r, "c_F": c},
                 options={"tstop_s": 8e-9, "tstep_s": 10e-12})


def measure(n_points: int, workers: int = 2, heap: bool = True) -> dict:
    from neurospice.characterize.sweep import PointCache, run_sweep
    sweep = rc_sweep(n_points)
    total = len(sweep.points())

    class CountingCache(PointCache):
        done = 0

        def put(self, key, entry):
            super().put(key, entry)
            CountingCache.done += 1

    marks = {"10 %": math.ceil(0.1 * total), "50 %": math.ceil(0.5 * total), "100 %": total}
    checkpoints = {}
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            done = CountingCache.done
            for name, at in marks.items():
                if name not in checkpoints and done >= at:
                    checkpoints[name] = sample(done)
            stop.wait(0.02)

    with tempfile.TemporaryDirectory(prefix="neurospice-memory-") as tmp:
        cache = CountingCache(tmp)
        if heap:
            tracemalloc.start(1)
        checkpoints["start"] = sample(0)
        thread = threading.Thread(target=sampler, daemon=True)
        t0 = time.perf_counter()
        thread.start()
        res = run_sweep(sweep, workers=workers, cache=cache, progress=False)
        wall = time.perf_counter() - t0
        stop.set()
        thread.join()
        for name, at in marks.items():          # a mark the sampler had no time to see
            checkpoints.setdefault(name, sample(CountingCache.done))
        checkpoints["returned"] = sample(total)
        tracemalloc.stop()
        assert len(res.results) == total
        failed = len(res.failed)
    a, b = checkpoints["10 %"], checkpoints["100 %"]
    per_k = 1000 / max(b["points_done"] - a["points_done"], 1)
    order = ["start", "10 %", "50 %", "100 %", "returned"]
    return {"points": total, "failed": failed, "workers": workers,
            "rss_start_MiB": checkpoints["start"]["rss_MiB"],
            "rss_end_MiB": checkpoints["returned"]["rss_MiB"],
            "rss_peak_MiB": checkpoints["returned"]["rss_peak_MiB"],
            "heap_end_MiB": checkpoints["returned"]["heap_MiB"],
            "heap_peak_MiB": checkpoints["returned"]["heap_peak_MiB"],
            "rss_growth_MiB_per_1000_points": round((b["rss_MiB"] - a["rss_MiB"]) * per_k, 3),
            "heap_growth_MiB_per_1000_points": round((b["heap_MiB"] - a["heap_MiB"]) * per_k, 3),
            "wall_s": round(wall, 2),
            "checkpoints": {k: checkpoints[k] for k in order}}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, default=5000, help="points to sweep (at least; default 5000)")
    p.add_argument("--workers", type=int, default=2, help="worker threads (default 2)")
    p.add_argument("--no-heap", action="store_true",
                   help="no tracemalloc (the RSS without its bookkeeping; heap figures 0)")
    p.add_argument("--json", action="store_true", help="one JSON object as the last stdout line")
    args = p.parse_args(argv)
    if args.points < 1 or args.workers < 1:
        p.error("--points and --workers must be at least 1")
    r = measure(args.points, args.workers, heap=not args.no_heap)
    print(f"RC sweep, {r['points']} points ({r['failed']} failed), {r['workers']} workers, "
          f"{r['wall_s']:.1f} s")
    print(f"{'checkpoint':>10} {'points':>7} {'RSS MiB':>9} {'peak RSS':>9} {'heap MiB':>9} {'peak heap':>10}")
    for name, c in r["checkpoints"].items():
        print(f"{name:>10} {c['points_done']:>7} {c['rss_MiB']:>9.1f} {c['rss_peak_MiB']:>9.1f} "
              f"{c['heap_MiB']:>9.2f} {c['heap_peak_MiB']:>10.2f}")
    print(f"growth from 10 % to 100 %: RSS {r['rss_growth_MiB_per_1000_points']:+.3f} MiB, "
          f"heap {r['heap_growth_MiB_per_1000_points']:+.3f} MiB per 1,000 points")
    if args.json:
        print(json.dumps(r))
    return r


if __name__ == "__main__":
    main()
