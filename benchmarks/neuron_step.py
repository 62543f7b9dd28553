"""Forward+backward time per time step of the circuit-fitted neuron, as ratios.

Runs one layer of neurons (``--batch`` × ``--neurons``) for ``--steps`` steps, sums the
spikes and final state, back-propagates, and reports the median time per step of

* ``DiffNeuron``   the differential memcapacitive neuron from a ``memcap_diff`` artefact
                   (two table lookups for the peaks, two for the ends, an offset lookup);
* ``TableNeuron``  the single-ended table neuron (when a ``memcap_curve`` artefact exists);
* ``LIF``          the plain LIF baseline with the same interface;
* ``snnTorch Leaky``, when snnTorch is importable. Install it for the benchmark only, without
  letting pip replace torch: ``pip install --no-deps snntorch``.

Ratios are against LIF and snnTorch Leaky measured in the same process, so machine speed
cancels. On CPU always; on CUDA when a GPU is available (``--device cuda`` or ``auto``).
``--dtype bfloat16`` runs the drives and state in bfloat16 (table lookups stay in float32);
``--compile`` wraps every neuron in ``torch.compile`` first (compile time is excluded).

    python benchmarks/neuron_step.py [--curve runs/memcap/memcap_diff.json] [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from neurospice.characterize.artefact import load_artefact
from neurospice.training.memcap_net import DiffNeuron
from neurospice.training.neurons import LIF, TableNeuron

#: drive scale (fF of active capacitance per step) that keeps the neurons firing now and then
DRIVE_FF = 120.0


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_per_step(step, init, drives, device, repeats: int) -> float:
    """Median seconds per step of ``steps`` forward steps plus one backward pass."""
    times = []
    for r in range(repeats + 1):  # the first run warms up (allocator, kernels, compile)
        leaves = [d.detach().clone().requires_grad_(True) for d in drives]
        _sync(device)
        t0 = time.perf_counter()
        state, total = init(), 0
        for t in range(leaves[0].shape[0]):
            z, state = step(*[x[t] for x in leaves], state)
            total = total + z.sum()
        flat = state if isinstance(state, (tuple, list)) else (state,)
        (total + sum(s.float().sum() for s in flat)).backward()
        _sync(device)
        if r:
            times.append((time.perf_counter() - t0) / leaves[0].shape[0])
    return statistics.median(times)


def run(curve: str, device: str, batch: int, neurons: int, steps: int, repeats: int,
        dtype: str, compile_: bool) -> dict:
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    dt = getattr(torch, dtype)
    art = load_artefact(curve)
    diff = DiffNeuron.from_artefact(art, 784).to(dev)
    lif = LIF(beta=0.95, threshold=1.0).to(dev)
    g = torch.Generator(device="cpu").manual_seed(0)
    shape = (steps, batch, neurons)
    c_pos = (torch.rand(shape, generator=g) * DRIVE_FF).to(dev, dt)
    c_neg = (torch.rand(shape, generator=g) * DRIVE_FF).to(dev, dt)
    current = (torch.rand(shape, generator=g) * 0.5).to(dev, dt)
    wrap = (lambda m: torch.compile(m)) if compile_ else (lambda m: m)

    zero = lambda: torch.zeros((batch, neurons), device=dev, dtype=dt)
    res = {"device": str(dev), "dtype": dtype, "compile": compile_, "batch": batch,
           "neurons": neurons, "steps": steps, "curve": curve}
    res["diff_s_per_step"] = time_per_step(wrap(diff), lambda: diff.initial_state((batch, neurons), dev, dt),
                                           [c_pos, c_neg], dev, repeats)
    res["lif_s_per_step"] = time_per_step(wrap(lif), zero, [current], dev, repeats)
    single = Path(curve).with_name("memcap_curve.json")
    if single.exists():
        table = TableNeuron.from_artefact(load_artefact(single)).to(dev)
        res["table_s_per_step"] = time_per_step(wrap(table), zero, [c_pos], dev, repeats)
    try:
        import snntorch
        leaky = snntorch.Leaky(beta=0.95, threshold=1.0).to(dev)
        res["snntorch_leaky_s_per_step"] = time_per_step(wrap(leaky), zero, [current], dev, repeats)
    except ImportError:
        res["snntorch_leaky_s_per_step"] = None
        res["snntorch_note"] = "snntorch not installed: pip install --no-deps snntorch"
    res["diff_vs_lif"] = res["diff_s_per_step"] / res["lif_s_per_step"]
    if res["snntorch_leaky_s_per_step"]:
        res["diff_vs_snntorch_leaky"] = res["diff_s_per_step"] / res["snntorch_leaky_s_per_step"]
    if "table_s_per_step" in res:
        res["table_vs_lif"] = res["table_s_per_step"] / res["lif_s_per_step"]
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--curve", default="runs/memcap/memcap_diff.json")
    ap.add_argument("--device", default="all", help="cpu, cuda, auto, or all (cpu and, if present, cuda)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--neurons", type=int, default=256)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    devices = (["cpu"] + (["cuda"] if torch.cuda.is_available() else [])) if a.device == "all" else [a.device]
    results = [run(a.curve, d, a.batch, a.neurons, a.steps, a.repeats, a.dtype, a.compile) for d in devices]
    for r in results:
        line = (f"[{r['device']} {r['dtype']}{' compiled' if r['compile'] else ''}] "
                f"{r['batch']}×{r['neurons']} neurons: DiffNeuron {r['diff_s_per_step'] * 1e6:.0f} µs/step, "
                f"{r['diff_vs_lif']:.2f}× LIF")
        if r.get("diff_vs_snntorch_leaky"):
            line += f", {r['diff_vs_snntorch_leaky']:.2f}× snnTorch Leaky"
        else:
            line += f" ({r.get('snntorch_note', '')})"
        if "table_vs_lif" in r:
            line += f"; single-ended TableNeuron {r['table_vs_lif']:.2f}× LIF"
        print(line)
    if a.json:
        print(json.dumps({"results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
