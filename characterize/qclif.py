"""Characterize the qCLIF gate-level neuron in ngspice: bit-exactness, energy, speed, leakage, area.

Random cycles run in chunks, each a point of the sweep runner (recipe :class:`QCLIFChunkRecipe`,
decks from :mod:`~neurospice.characterize.qclif_sim`): the registers read back after each rising
edge are compared with the golden model (:func:`neurospice.circuits.qclif.run_cycles`). The same
runs give

* energy per cycle (supply current integrated over each clock period, ``E = ∫ VDD·I dt``),
  idle (all inputs zero, clock running) and active (random inputs), and per output spike
  (active energy / output spikes, at the run's spike rate, stated);
* the settle time of every register input after each edge (last crossing of VDD/2),
  whose maximum over the run plus a guard band gives ``fmax`` (:data:`FMAX_GUARD`); the
  bit-exact run is then repeated *at* that fmax, which is the real evidence.
"""
from __future__ import annotations

import functools
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from neurospice.circuits.engine import ngspice_version, run_netlist
from neurospice.circuits.errors import NeurospiceError
from neurospice.circuits.qclif import DEFAULT_SEED, QCLIFConfig, random_inputs
from neurospice.circuits.qclif_gates import build_circuit, cell_area_um2, transistor_count
from neurospice.circuits.technology import Technology, get_technology
from neurospice.files import atomic_savefig

from .qclif_sim import (BODY_RESISTANCE, IDLE_CYCLES, INPUT_LAUNCH_S, SIM_OPTIONS, _deck_head, netlist,
                        read_deck, with_idle_prefix)
from .recipes import DeckPiece, WholeDeckRecipe, register_recipe
from .sweep import Sweep, run_sweep, speed

#: fmax = 1 / (FMAX_GUARD · worst observed settle time): 15 % for the registers' setup time and
#: paths the random patterns did not excite. The bit-exact run at fmax checks the result.
FMAX_GUARD = 1.15
#: the technology the chunks run on (sky130, its body resistance as :data:`BODY_RESISTANCE` says)
TECHNOLOGY = "sky130" if BODY_RESISTANCE else "sky130-rb0"
#: one chunk's ngspice limit (50 transistor-level cycles take ~3 core-minutes)
CHUNK_TIMEOUT_S = 3600.0
#: what a chunk result's ``job`` repeats of its point
POINT_FIELDS = ("cfg", "corner", "cycles", "seed", "idle", "period_s", "vdd_V", "skip_op")
#: Random cycles per ngspice run; a characterization splits its cycles into such chunks, each
#: one sweep point (it starts from reset with its own seed).
CHUNK_CYCLES = 50
#: Random cycles checked bit-exact (each costs ~3.5 s of one core at transistor level).
FULL_CYCLES, QUICK_CYCLES = 200, 80
#: 45 nm scaling, first order (constant-field): linear dimensions × 45/130, so area × (45/130)²;
#: switching energy C·V² with C × 45/130 and VDD 1.8 V → 1.1 V (a typical 45 nm core supply).
NODE_NM, TARGET_NODE_NM, TARGET_VDD_V = 130.0, 45.0, 1.1
#: The seed's reported 45 nm numbers (200-neuron qCLIF RSNN layer at 100 MHz).
SEED_LAYER = {"neurons": 200, "area_mm2": 1.86, "energy_per_spike_pJ": 17.9, "clock_MHz": 100.0}


@functools.lru_cache(maxsize=8)
def _circuit(cfg: QCLIFConfig):
    return build_circuit(cfg)


@register_recipe
@dataclass
class QCLIFChunkRecipe(WholeDeckRecipe):
    """A chunk of clock cycles of the neuron at transistor level from reset (one point per
    ngspice run). Point: ``cfg`` (QCLIFConfig fields), ``corner``, ``cycles`` random cycles of
    ``seed`` after ``idle`` idle ones, ``period_s``, ``vdd_V``, ``skip_op`` (start from 0 V,
    for corners whose DC operating point does not converge). ``measure``: registers, golden
    registers, mismatching cycles, energy and settle time per cycle, clock-to-Q."""

    name: str = "qclif_chunk"
    version: int = 1

    def build(self, point, tag, tech, options):
        cfg = QCLIFConfig(**point["cfg"])
        inp = random_inputs(cfg, point["cycles"], seed=point["seed"])
        if point["idle"]:
            inp = with_idle_prefix(inp, point["idle"])
        circuit = _circuit(cfg)
        deck = netlist(circuit, tech, inp, point["period_s"], point["vdd_V"], skip_op=point["skip_op"])
        return DeckPiece(tag, deck, {"circuit": circuit, "inputs": inp})

    def measure(self, plot, piece, point, options) -> dict:
        inp = piece.data["inputs"]
        r = read_deck(plot, piece.data["circuit"], inp, point["period_s"], point["vdd_V"])
        return {"mismatches": r.mismatches, "cycles": inp.cycles, "energy_J": r.energy_J.tolist(),
                "settle_s": r.settle_s.tolist(), "clk_to_q_s": r.clk_to_q_s,
                "registers": {k: v.tolist() for k, v in r.registers.items()},
                "golden": {k: v.tolist() for k, v in r.golden.items()}}


def run_chunks(points: list[dict], workers: int, progress: bool, scheduler: str | None = None,
               cache=None, keep_errors: bool = False, timing: dict | None = None) -> list[dict]:
    """Every chunk through the sweep runner (cached, on ``workers`` threads or Dask). A chunk
    whose DC operating point does not converge (e.g. sky130 ff) is run again from 0 V with the
    reset held (``skip_op``) and says so; ``keep_errors``: a chunk that still fails yields
    ``{"error": reason}`` instead of stopping the characterization. ``timing`` (a dict with
    ``analysis_s`` and ``worker_s``) is added the sweeps' time (see :func:`~.sweep.speed`)."""
    def sweep(pts):
        res = run_sweep(Sweep(recipe=QCLIFChunkRecipe.name, axes={}, technology=TECHNOLOGY,
                              point_list=pts), workers=workers, scheduler=scheduler, cache=cache,
                        progress=progress, timeout_s=CHUNK_TIMEOUT_S)
        if timing is not None:
            timing["analysis_s"] = timing.get("analysis_s", 0.0) + res.analysis_s
            timing["worker_s"] = timing.get("worker_s", 0.0) + res.worker_s
        return res.results
    results = sweep(points)
    retry = [i for i, r in enumerate(results) if r.status != "ok" and r.reason.startswith("ConvergenceError")]
    if retry:
        again = sweep([{**points[i], "skip_op": True} for i in retry])
        for i, r in zip(retry, again):
            results[i] = r
    out = []
    for p, r in zip(points, results):
        if r.status != "ok":
            if not keep_errors:
                raise NeurospiceError(f"qCLIF chunk {p['corner']}/{p['vdd_V']} V failed: {r.reason}")
            out.append({"error": r.reason})
            continue
        op = "skipped (uic): DC operating point did not converge" if r.point["skip_op"] else "dc"
        out.append({**r.result, "job": {k: r.point[k] for k in POINT_FIELDS}, "operating_point": op})
    return out


def random_cycle_points(cfg: QCLIFConfig, cycles: int, period_s: float, vdd_V: float, corner: str,
                        seed: int, idle: int = 0, chunk_cycles: int = CHUNK_CYCLES) -> list[dict]:
    n_chunks = -(-cycles // max(1, min(chunk_cycles, CHUNK_CYCLES)))
    sizes = [cycles // n_chunks + (k < cycles % n_chunks) for k in range(n_chunks)]
    return [{"cfg": asdict(cfg), "corner": corner, "cycles": sizes[k], "seed": seed + k,
             "idle": idle if k == 0 else 0, "period_s": period_s, "vdd_V": vdd_V, "skip_op": False}
            for k in range(n_chunks)]


def _summary(chunks: list[dict]) -> dict:
    """Bit-exactness, energies and settle times over the chunks of one operating point."""
    mism = sum(len(c["mismatches"]) for c in chunks)
    active_E, idle_E, spikes, settle = [], [], 0, 0.0
    for c in chunks:
        e = np.array(c["energy_J"])
        skip = c["job"]["idle"]
        if skip:
            idle_E.extend(e[2:skip])             # after reset release and the first edge
        active_E.extend(e[skip:])
        spikes += int(np.sum(c["registers"]["z"][skip:]))
        settle = max(settle, float(np.max(c["settle_s"])))
    random_cycles = sum(c["cycles"] - c["job"]["idle"] for c in chunks)
    return {"bit_exact": mism == 0, "mismatched_cycles": mism, "cycles": random_cycles,
            "energy_per_cycle_active_pJ": float(np.mean(active_E)) * 1e12,
            "energy_per_cycle_idle_pJ": float(np.mean(idle_E)) * 1e12 if idle_E else None,
            "spikes": spikes, "spikes_per_cycle": spikes / random_cycles,
            "energy_per_spike_pJ": float(np.sum(active_E)) * 1e12 / max(spikes, 1),
            "settle_max_ns": settle * 1e9,
            "clk_to_q_ns": max(c["clk_to_q_s"] for c in chunks) * 1e9}


def fmax_from_settle(settle_max_ns: float) -> float:
    return 1e3 / (FMAX_GUARD * settle_max_ns)


def leakage_W(cfg: QCLIFConfig, tech: Technology, vdd_V: float = 1.8, temp_C: float = 27.0,
              settle_s: float = 40e-9) -> float:
    """Static supply power with the clock stopped (low) and all inputs 0, after a reset.

    A transient, not a DC operating point: ``.op`` may park the flip-flops' latches at their
    metastable mid-rail point, which draws crowbar current no real latch holds. The reset pulse
    puts every register in a defined state; the mean current over the last quarter is taken.
    """
    circuit = build_circuit(cfg)
    lines = _deck_head(circuit, tech, temp_C, vdd_V, f"qCLIF leakage {tech.label}")
    lines += ["Vclk clk_in 0 0", f"Vrst rst_n 0 PWL(0 0 2n 0 2.1n {vdd_V:g})"]
    lines += [f"V{net} {net} 0 0" for nets in circuit.inputs.values() for net in nets]
    lines += circuit.gates.lines()
    # ngspice's default abstol (1 pA): leakage currents per device are below SIM_OPTIONS' 100 pA
    lines += [".save i(vdd)", ".options reltol=1e-3", f".tran {settle_s / 100:g} {settle_s:g}", ".end"]
    res = run_netlist("\n".join(lines), circuit="qclif-leakage", spiceinit=tech.spiceinit)
    t, i = res.plot["time"], -res.plot["i(vdd)"]
    late = t >= 0.75 * settle_s
    return float(np.trapezoid(i[late], t[late]) / (t[late][-1] - t[late][0]) * vdd_V)


def area_and_transistors(cfg: QCLIFConfig, tech: Technology) -> dict:
    circuit = build_circuit(cfg)
    counts = circuit.cell_counts()
    per_cell = transistor_count(tech, counts)
    area = {k: cell_area_um2(tech, k) for k in counts}
    return {"cells": counts, "cell_count": sum(counts.values()),
            "transistors": sum(per_cell[k] * n for k, n in counts.items()),
            "area_um2": sum(area[k] * n for k, n in counts.items()),
            "area_note": "sum of the standard cells' placement areas (LEF SIZE), no routing overhead; "
                         "the input buffers stand for the upstream drivers and are included"}


def scaled_to_45nm(area_um2: float, energy_pJ: float, vdd_V: float) -> dict:
    s = TARGET_NODE_NM / NODE_NM
    return {"area_um2": area_um2 * s * s, "energy_per_spike_pJ": energy_pJ * s * (TARGET_VDD_V / vdd_V) ** 2,
            "method": f"first-order constant-field scaling from sky130 ({NODE_NM:g} nm) to "
                      f"{TARGET_NODE_NM:g} nm: area × ({TARGET_NODE_NM:g}/{NODE_NM:g})², energy × "
                      f"({TARGET_NODE_NM:g}/{NODE_NM:g}) × ({TARGET_VDD_V:g} V/{vdd_V:g} V)²",
            "seed_layer": SEED_LAYER,
            "seed_area_per_neuron_um2": SEED_LAYER["area_mm2"] * 1e6 / SEED_LAYER["neurons"],
            "seed_note": "the seed's area is for a 200-neuron layer with its synapse weight storage and "
                         "routing; ours is one neuron's logic with one synapse port per compartment"}


def characterize_qclif(quick: bool = False, out="runs/qclif", cfg: QCLIFConfig = QCLIFConfig(),
                       cycles: int | None = None, workers: int | None = None, seed: int = DEFAULT_SEED,
                       progress: bool = False, scheduler: str | None = None, cache=None) -> dict:
    """Bit-exactness vs the golden model over ``cycles`` random cycles at tt/1.8 V/100 MHz
    (default :data:`FULL_CYCLES`, :data:`QUICK_CYCLES` with ``quick``),
    energy (idle, active, per spike), settle-time fmax, leakage, transistors and area; full mode
    adds the bit-exact run at the characterized fmax and fmax per corner (tt/ss/ff) and VDD.
    Artefact ``qclif.json`` + plots under ``out``; every chunk is a point of the sweep runner
    (cached in ``cache``, default the user cache; on ``workers`` threads or the Dask cluster
    at ``scheduler``). The returned dict also holds the nominal ``chunks`` (not in the artefact)."""
    from neurospice import validate

    from .artefact import now_iso, save_artefact
    t0 = time.perf_counter()
    validate.whole("cycles", cycles, lo=1, optional=True)
    validate.whole("workers", workers, lo=1, optional=True)
    validate.whole("seed", seed, lo=0)
    cycles = cycles or (QUICK_CYCLES if quick else FULL_CYCLES)
    out = Path(out)
    workers = workers or os.cpu_count() or 1
    timing = {"analysis_s": 0.0, "worker_s": 0.0}
    run = functools.partial(run_chunks, workers=workers, progress=progress, scheduler=scheduler, cache=cache,
                            timing=timing)
    tech = get_technology(TECHNOLOGY, "tt")
    nominal_period_s, vdd = 10e-9, 1.8
    points = random_cycle_points(cfg, cycles, nominal_period_s, vdd, "tt", seed, idle=IDLE_CYCLES,
                                 chunk_cycles=-(-cycles // workers))   # every worker busy on short runs
    nominal_chunks = run(points)
    nominal = _summary(nominal_chunks)
    fmax = fmax_from_settle(nominal["settle_max_ns"])
    result = {"bit_exact": nominal["bit_exact"], "cycles": nominal["cycles"],
              "energy_per_spike_pJ": nominal["energy_per_spike_pJ"], "fmax_MHz": fmax,
              "nominal": {"corner": "tt", "vdd_V": vdd, "clock_MHz": 1e3 / (nominal_period_s * 1e9), **nominal}}
    result["leakage_nW"] = leakage_W(cfg, tech, vdd) * 1e9
    result.update(area_and_transistors(cfg, tech))
    if not quick:
        period = 1e-6 / fmax
        at = _summary(run(random_cycle_points(cfg, cycles, period, vdd, "tt", seed + 1000)))
        result["at_fmax"] = {"clock_MHz": fmax, **at}
        result["bit_exact_at_fmax"] = at["bit_exact"]
        corners = []
        points = [(c, vdd) for c in ("tt", "ss", "ff")] + [("tt", v) for v in (1.6, 1.95)]
        slow_period = 20e-9          # every corner settles well inside it
        chunk_points = [random_cycle_points(cfg, CHUNK_CYCLES, slow_period, v, c, seed + 2000)[0]
                        for c, v in points]
        for (c, v), chunk in zip(points, run(chunk_points, keep_errors=True)):
            if "error" in chunk:
                corners.append({"corner": c, "vdd_V": v, "fmax_MHz": None, "error": chunk["error"]})
                continue
            s = _summary([chunk])
            corners.append({"corner": c, "vdd_V": v,            # fmax only where the logic was right
                            "fmax_MHz": fmax_from_settle(s["settle_max_ns"]) if s["bit_exact"] else None,
                            "bit_exact_at_50MHz": s["bit_exact"], "settle_max_ns": s["settle_max_ns"],
                            "energy_per_cycle_active_pJ": s["energy_per_cycle_active_pJ"],
                            "operating_point": chunk.get("operating_point", "dc")})
        result["fmax_by_corner"] = corners
    result["scaled_45nm"] = scaled_to_45nm(result["area_um2"], result["energy_per_spike_pJ"], vdd)
    result.update({"config": cfg.as_dict(), "technology": tech.label, "ngspice": ngspice_version(),
                   "fmax_guard": FMAX_GUARD, "input_launch_s": INPUT_LAUNCH_S, "sim_options": SIM_OPTIONS,
                   "energy_note": "supply energy of the neuron (cells incl. input buffers and clock buffer), "
                                  "integrated per clock period; per spike = active energy / output spikes "
                                  f"at {nominal['spikes_per_cycle']:.2f} spikes per cycle (random inputs)",
                   "created": now_iso(), "quick": quick})
    out.mkdir(parents=True, exist_ok=True)
    result["plot"] = str(plot_qclif(nominal_chunks[0], cfg, out / "qclif.png"))
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    result.update(speed(timing["analysis_s"], timing["worker_s"]))
    result["artefact"] = str(save_artefact({"kind": "qclif", **result}, out / "qclif.json"))
    return {**result, "chunks": nominal_chunks}


def plot_qclif(chunk: dict, cfg: QCLIFConfig, path) -> Path:
    """Left: SPICE registers read back vs golden model per cycle. Right: float CLIF vs qCLIF
    on one stimulus (the justification of the integer form)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurospice.circuits.qclif import compare_float_integer
    fig, ax = plt.subplots(1, 2, figsize=(12, 4))
    k = np.arange(len(chunk["golden"]["v"]))
    ax[0].step(k, chunk["golden"]["v"], where="post", lw=3, alpha=0.4, label="golden V")
    ax[0].plot(k, chunk["registers"]["v"], "k.", ms=4, label="ngspice V register")
    ax[0].step(k, chunk["golden"]["va"], where="post", lw=3, alpha=0.4, label="golden Va")
    ax[0].plot(k, chunk["registers"]["va"], "r.", ms=4, label="ngspice Va register")
    zc = np.flatnonzero(np.array(chunk["registers"]["z"]))
    ax[0].plot(zc, np.full(len(zc), cfg.threshold), "g^", label="spike (z)")
    ax[0].set_xlabel("clock cycle")
    ax[0].set_ylabel("register value (integer)")
    ax[0].set_title(f"sky130 transistor level vs golden model ({cfg.bits}-bit, tt, 100 MHz)")
    ax[0].legend(fontsize=7)
    cmp_ = compare_float_integer(cfg)
    t = np.arange(len(cmp_["q_v"]))
    ax[1].plot(t, cmp_["f_v"], label="float CLIF V (scaled to θ_int)")
    ax[1].step(t, cmp_["q_v"], where="post", label="qCLIF V (integer)")
    ax[1].plot(t, cmp_["f_va"], "--", label="float CLIF V_a")
    ax[1].step(t, cmp_["q_va"], "--", where="post", label="qCLIF Va")
    ax[1].axhline(cfg.threshold, color="gray", lw=0.5)
    ax[1].set_xlabel("time step")
    ax[1].set_title("same stimulus: float CLIF vs integer qCLIF")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return Path(path)
