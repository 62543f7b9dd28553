"""Forward+backward time per time step of the circuit-fitted neuron, as ratios.

Runs one layer of neurons (``--batch`` × ``--neurons``) for ``--steps`` steps, sums the
spikes and final state, back-propagates, and reports the median time per step of

* ``DiffNeuron``   the differential memcapacitive neuron (the peak and end tables of both
                   membranes and the comparator offset): its step as it runs in training —
                   the compiled step (``training/native.py``, one C call forward and one
                   backward, blocks of points over ``torch``'s threads) where a C compiler
                   is available, else the fused PyTorch look-ups (key ``compiled`` says which);
* ``TableNeuron``  the single-ended table neuron, likewise;
* the same two neurons on the *unfused* path (the original: one autograd-traced
  ``interp2d_reference`` per table, ``searchsorted`` per lookup), so the fused lookup's
  speed-up is measured in the same process (keys ``*_unfused``);
* ``LIF``          the plain LIF baseline with the same interface;
* ``snnTorch Leaky``, when snnTorch is importable. Install it for the benchmark only, without
  letting pip replace torch: ``pip install --no-deps snntorch``.

The tables: by default *synthetic* ones shaped like the real ``memcap_diff`` artefact (start
voltage axis 11 points, active capacitance axis 15 points, the characterization's own axes;
a saturating charge-sharing surface; the offset table on 4 points), so the benchmark needs no
characterization run. ``--artefact PATH`` takes a ``memcap_diff`` artefact instead
(``neurospice characterize memcap-diff``; its fan-in-784 layer, the nearest), and a
``memcap_curve.json`` next to it for the single-ended neuron when there is one (otherwise the
single-ended neuron uses the differential artefact's half tables). The time per step does not
depend on the table values, only on their shapes.

Ratios are against LIF and snnTorch Leaky measured in the same process, so machine speed
cancels; the repeats go round-robin over the neurons, so a busy machine slows them alike.
On CPU always; on CUDA when a GPU is available (``--device cuda`` or ``auto``).
``--dtype bfloat16`` runs the drives and state in bfloat16 (table lookups stay in float32);
``--compile`` wraps every neuron in ``torch.compile`` first (compile time is excluded).

    python benchmarks/neuron_step.py [--artefact runs/memcap/memcap_diff.json] [--json]

With ``--json`` the last stdout line is one JSON object: ``diff_vs_lif``, ``table_vs_lif``,
``vs_snntorch`` (DiffNeuron / snnTorch Leaky, null without snnTorch), the same three on the
unfused path (``diff_vs_lif_unfused``, ``table_vs_lif_unfused``, ``vs_snntorch_unfused``) and
the fused speed-ups, all of the first device (CPU), ``compiled`` (which step ran), ``threads``,
and ``results``: every device's numbers.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from neurospice.training.memcap_net import DiffNeuron, nearest_layer
from neurospice.training.neurons import LIF, TableNeuron, interp2d_reference
from neurospice.training.surrogate import triangle_spike

#: drive scale (fF of active capacitance per step) that keeps the neurons firing now and then
DRIVE_FF = 120.0
#: fan-in whose tables the benchmark takes (an MNIST input layer)
FAN_IN = 784
#: firing threshold of the single-ended neuron on the synthetic (or differential) tables (V)
SINGLE_THRESHOLD_V = 0.9


# -- synthetic tables ---------------------------------------------------------------------
#: the memcap-diff characterization's half-table axes (characterize/memcap_diff.py HALF_AXES)
SYNTH_C_AXIS_FF = [0.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 130.0, 160.0, 200.0, 250.0,
                   300.0, 400.0, 500.0, 640.0]
SYNTH_V_AXIS_V = [float(v) for v in np.linspace(0, 1.0, 11)]


def synthetic_artefact(fan_in: int = FAN_IN) -> dict:
    """A ``memcap_diff``-shaped artefact (only what the neurons read) with made-up but
    realistic tables: charge sharing from the input's 1.45 V (1.8 V minus the pump diode) onto
    a 100 fF membrane loaded by the idle rows' parasitics, ``P = v + (1.45 − v)·c/(c + C)``,
    and a leak of up to 0.1 V per step, ``E = max(P − 0.1·tanh(P/0.2), 0)``; the comparator
    offset rising from 41 to 70 mV over the negative membrane's range."""
    v0, c = np.meshgrid(SYNTH_V_AXIS_V, SYNTH_C_AXIS_FF, indexing="ij")
    c_load = 100.0 + 0.04 * fan_in                         # membrane + idle rows' parasitics (fF)
    peak = v0 + (1.45 - v0) * c / (c + c_load)
    end = np.maximum(peak - 0.1 * np.tanh(peak / 0.2), 0.0)
    table = {"v_mem0_V": SYNTH_V_AXIS_V, "c_active_fF": SYNTH_C_AXIS_FF,
             "v_mem_peak_V": peak.tolist(), "v_mem_end_V": end.tolist()}
    return {"family": "memcap_diff", "layers": {str(fan_in): table},
            "threshold": {"v_neg_V": [0.0, 0.3, 0.6, 0.9], "offset_V": [0.041, 0.0475, 0.056, 0.07]},
            "summary": {"v_reset_pos_V": 0.0, "v_reset_neg_V": 0.3, "c_min_F": 2e-15, "c_max_F": 20e-15}}


# -- the unfused path (the original forward of both neurons) ------------------------------
class UnfusedDiffNeuron(DiffNeuron):
    """DiffNeuron's original step: four autograd-traced lookups and a searchsorted offset."""

    def offset(self, v_neg):
        x = v_neg.to(self.th_v.dtype).clamp(self.th_v[0], self.th_v[-1])
        i = torch.searchsorted(self.th_v, x.detach().contiguous(), right=True).clamp(1, len(self.th_v) - 1)
        t = (x - self.th_v[i - 1]) / (self.th_v[i] - self.th_v[i - 1])
        return (self.th_off[i - 1] * (1 - t) + self.th_off[i] * t).to(v_neg.dtype)

    def forward(self, c_pos, c_neg, state, offset_error=None):
        vp, vn = state
        pp = interp2d_reference(self.peak, self.v_axis, self.c_axis, vp, c_pos)
        pn = interp2d_reference(self.peak, self.v_axis, self.c_axis, vn, c_neg)
        self.margin = pp - pn - self.offset(pn)
        if offset_error is not None:
            self.margin = self.margin - offset_error
        z = triangle_spike(self.margin, self.gamma, self.width)
        ep = interp2d_reference(self.end, self.v_axis, self.c_axis, vp, c_pos)
        en = interp2d_reference(self.end, self.v_axis, self.c_axis, vn, c_neg)
        return z, ((1 - z) * ep, z * self.v_ref + (1 - z) * en)


class UnfusedTableNeuron(TableNeuron):
    """TableNeuron's original step: two autograd-traced lookups."""

    def forward(self, c, v=None):
        if v is None:
            v = torch.zeros_like(c)
        peak = interp2d_reference(self.peak_grid, self.v_axis, self.c_axis, v, c)
        z = triangle_spike(peak - self.threshold, self.gamma, self.width)
        return z, (1 - z) * interp2d_reference(self.end_grid, self.v_axis, self.c_axis, v, c)


# -- timing ---------------------------------------------------------------------------------
def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _one_pass(step, init, drives, device) -> float:
    """Seconds per step of ``steps`` forward steps plus one backward pass."""
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
    return (time.perf_counter() - t0) / leaves[0].shape[0]


def time_per_step(step, init, drives, device, repeats: int) -> float:
    """Median seconds per step over ``repeats`` passes (after one warm-up pass)."""
    return time_all({"x": (step, init, drives)}, device, repeats)["x"]


def time_all(cases: dict, device, repeats: int) -> dict:
    """:func:`time_per_step` of every case, the passes taken round-robin (one warm-up pass
    each first: allocator, kernels, compile), so load changes on the machine hit all alike."""
    times = {name: [] for name in cases}
    for r in range(repeats + 1):
        for name, (step, init, drives) in cases.items():
            dt = _one_pass(step, init, drives, device)
            if r:
                times[name].append(dt)
    return {name: statistics.median(ts) for name, ts in times.items()}


# -- the run --------------------------------------------------------------------------------
def _neurons(artefact_path: str | None):
    """(differential artefact, a factory ``make(cls)`` of the single-ended neuron for
    ``TableNeuron`` or a subclass, a label of where the tables come from)."""
    if artefact_path is None:
        art = synthetic_artefact()
        source = "synthetic 11 × 15 tables (memcap_diff axes, saturating charge sharing)"
    else:
        from neurospice.characterize.artefact import load_artefact
        art = load_artefact(artefact_path)
        source = str(artefact_path)
    single = Path(artefact_path).with_name("memcap_curve.json") if artefact_path else None
    if single is not None and single.exists():
        from neurospice.characterize.artefact import load_artefact
        a = load_artefact(single)
        return art, lambda cls: cls.from_artefact(a), source + f" (+ {single.name})"
    t = nearest_layer(art, FAN_IN)
    return art, lambda cls: cls(t["v_mem0_V"], t["c_active_fF"], t["v_mem_peak_V"], t["v_mem_end_V"],
                                SINGLE_THRESHOLD_V), source


def run(artefact: str | None, device: str, batch: int, neurons: int, steps: int, repeats: int,
        dtype: str, compile_: bool) -> dict:
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    dt = getattr(torch, dtype)
    art, make_single, source = _neurons(artefact)
    diff = DiffNeuron.from_artefact(art, FAN_IN).to(dev)
    diff_old = UnfusedDiffNeuron.from_artefact(art, FAN_IN).to(dev)
    table, table_old = make_single(TableNeuron).to(dev), make_single(UnfusedTableNeuron).to(dev)
    lif = LIF(beta=0.95, threshold=1.0).to(dev)
    g = torch.Generator(device="cpu").manual_seed(0)
    shape = (steps, batch, neurons)
    c_pos = (torch.rand(shape, generator=g) * DRIVE_FF).to(dev, dt)
    c_neg = (torch.rand(shape, generator=g) * DRIVE_FF).to(dev, dt)
    current = (torch.rand(shape, generator=g) * 0.5).to(dev, dt)
    wrap = (lambda m: torch.compile(m)) if compile_ else (lambda m: m)

    zero = lambda: torch.zeros((batch, neurons), device=dev, dtype=dt)
    diff_init = lambda: diff.initial_state((batch, neurons), dev, dt)
    cases = {"diff": (wrap(diff), diff_init, [c_pos, c_neg]),
             "diff_unfused": (wrap(diff_old), diff_init, [c_pos, c_neg]),
             "table": (wrap(table), zero, [c_pos]),
             "table_unfused": (wrap(table_old), zero, [c_pos]),
             "lif": (wrap(lif), zero, [current])}
    from neurospice.training import native
    res = {"device": str(dev), "dtype": dtype, "compile": compile_, "batch": batch,
           "compiled": native.status() if dev.type == "cpu" and dt == torch.float32 else "not for this device/dtype",
           "neurons": neurons, "steps": steps, "repeats": repeats, "threads": torch.get_num_threads(),
           "curve": artefact, "tables": source}
    try:
        import snntorch
        cases["snntorch_leaky"] = (wrap(snntorch.Leaky(beta=0.95, threshold=1.0).to(dev)), zero, [current])
    except ImportError:
        res["snntorch_note"] = "snntorch not installed: pip install --no-deps snntorch"
    with torch.no_grad():       # the spike rate of the timed drive (a neuron that never fires is no test)
        state = diff.initial_state((batch, neurons), dev, dt)
        rate = 0.0
        for t in range(steps):
            z, state = diff(c_pos[t], c_neg[t], state)
            rate += float(z.float().mean()) / steps
    res["diff_spike_rate"] = rate
    t = time_all(cases, dev, repeats)
    for name in ("diff", "diff_unfused", "table", "table_unfused", "lif"):
        res[f"{name}_s_per_step"] = t[name]
    res["snntorch_leaky_s_per_step"] = t.get("snntorch_leaky")
    lif_s, leaky_s = t["lif"], t.get("snntorch_leaky")
    for name in ("diff", "table"):
        res[f"{name}_vs_lif"] = t[name] / lif_s
        res[f"{name}_vs_lif_unfused"] = t[f"{name}_unfused"] / lif_s
        res[f"{name}_fused_speedup"] = t[f"{name}_unfused"] / t[name]
    res["diff_vs_snntorch_leaky"] = t["diff"] / leaky_s if leaky_s else None
    res["diff_vs_snntorch_leaky_unfused"] = t["diff_unfused"] / leaky_s if leaky_s else None
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--artefact", default=None,
                    help="a memcap_diff artefact (default: synthetic tables of the same shapes)")
    ap.add_argument("--curve", dest="artefact", help=argparse.SUPPRESS)   # the former name
    ap.add_argument("--device", default="all", help="cpu, cuda, auto, or all (cpu and, if present, cuda)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--neurons", type=int, default=256)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    devices = (["cpu"] + (["cuda"] if torch.cuda.is_available() else [])) if a.device == "all" else [a.device]
    from neurospice.circuits.errors import ArtefactError
    try:
        results = [run(a.artefact, d, a.batch, a.neurons, a.steps, a.repeats, a.dtype, a.compile)
                   for d in devices]
    except ArtefactError as exc:
        print(f"neuron_step: {exc}", file=sys.stderr)
        return 2
    for r in results:
        line = (f"[{r['device']} {r['dtype']}{' torch.compile' if r['compile'] else ''}, "
                f"{r['threads']} thread(s), step: {r['compiled']}] "
                f"{r['batch']}×{r['neurons']} neurons: DiffNeuron {r['diff_s_per_step'] * 1e6:.0f} µs/step, "
                f"{r['diff_vs_lif']:.2f}× LIF (unfused {r['diff_vs_lif_unfused']:.2f}×, "
                f"fused lookup {r['diff_fused_speedup']:.2f}× faster)")
        if r.get("diff_vs_snntorch_leaky"):
            line += (f", {r['diff_vs_snntorch_leaky']:.2f}× snnTorch Leaky "
                     f"(unfused {r['diff_vs_snntorch_leaky_unfused']:.2f}×)")
        else:
            line += f" ({r.get('snntorch_note', '')})"
        line += (f"; single-ended TableNeuron {r['table_vs_lif']:.2f}× LIF "
                 f"(unfused {r['table_vs_lif_unfused']:.2f}×)")
        print(line)
    if a.json:
        first = results[0]
        print(json.dumps({"diff_vs_lif": first["diff_vs_lif"], "table_vs_lif": first["table_vs_lif"],
                          "vs_snntorch": first["diff_vs_snntorch_leaky"],
                          "diff_vs_lif_unfused": first["diff_vs_lif_unfused"],
                          "table_vs_lif_unfused": first["table_vs_lif_unfused"],
                          "vs_snntorch_unfused": first["diff_vs_snntorch_leaky_unfused"],
                          "diff_fused_speedup": first["diff_fused_speedup"],
                          "table_fused_speedup": first["table_fused_speedup"],
                          "device": first["device"], "tables": first["tables"],
                          "compiled": first["compiled"], "threads": first["threads"],
                          "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
