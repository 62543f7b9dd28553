"""``neurospice compare``: the registered neuron families side by side on one dataset and split.

For every family the chain is the same, each step from the family's own modules
(:meth:`~neurospice.registry.Family.compare_row`): characterize its circuit in ngspice
(artefact, reused when present) → train a network with ``hidden`` neurons in its hidden layer
on the dataset (resumed when present) → re-simulate a sample of the trained network's neurons
in ngspice (``verify``) → evaluate it under device variation at several spread levels (one
relative spread σ per family, what it means in :attr:`~neurospice.registry.Family.variation`;
one draw = one chip) → variation-aware fine-tuning at the largest spread, compared with the
plain network on the same chips (:func:`~neurospice.training.robustness.paired_gain`).

A family's row (energies in joules, times in seconds, frequencies in hertz inside the code)::

    accuracy_model, accuracy_circuit, neurons, layers, steps, spikes_per_inference,
    energy_per_spike_J, energy_per_inference_J, energy_per_inference_with_cryo_J,
    energy_counted, latency_per_inference_s, clock_Hz, circuit_check {kind, samples, unit,
    spike_agreement, ...}, optionally circuit_check_at_scale (the same keys and ``level``: a
    cheaper, wider check of the same circuit, e.g. qCLIF's gates as XSPICE), robustness [{spread, accuracy_mean, accuracy_std, draws,
    accuracies}], robustness_variation_aware, variation_aware_gain, artefact(_sha256),
    checkpoint(_sha256), ...

The JSON states them in the units of :data:`JSON_UNITS` (``energy_per_inference_nJ``, ...).
Each family's result is cached as ``out/families/NAME.json`` keyed by every setting that
decides its numbers and checked against the files' SHA-256, so an interrupted comparison
resumes; a family whose technology is missing (e.g. no sky130 PDK) is skipped and named.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from neurospice import registry
from neurospice.circuits.errors import NeurospiceError, TechnologyError
from neurospice.files import atomic_write_json, sha256_or_none

#: internal SI key → (JSON key, factor): the JSON keeps the units its readers know
JSON_UNITS = {"energy_per_spike_J": ("energy_per_spike_pJ", 1e12),
              "energy_per_inference_J": ("energy_per_inference_nJ", 1e9),
              "energy_per_inference_with_cryo_J": ("energy_per_inference_with_cryo_nJ", 1e9),
              "latency_per_inference_s": ("latency_per_inference_ns", 1e9),
              "clock_Hz": ("clock_MHz", 1e-6)}


def _default_families() -> tuple[str, ...]:
    return tuple(registry.names(comparable=True))


@dataclass
class CompareConfig:
    """``neurospice compare`` (defaults: the one place they are written)."""
    dataset: str = "digits"
    families: tuple[str, ...] = field(default_factory=_default_families)
    hidden: int = 64                 #: neurons in every family's hidden layer
    quick: bool = False              #: fewer epochs, cycles, verify samples and draws
    spreads: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3)
    draws: int = 10                  #: Monte Carlo draws (chips) per spread level
    seed: int = 1
    workers: int = 2
    #: test samples whose circuits an analog family re-simulates in ngspice (issue 19: ≥ 100)
    verify_samples: int = 100

    def __post_init__(self):
        from neurospice import validate as v
        v.dataset("dataset", self.dataset)
        if not self.families:
            raise v.ConfigError("families: name at least one family")
        for name in self.families:
            if not registry.get(name).comparable:
                raise v.ConfigError(f"families: {name!r} takes no part in compare; choose from "
                                    f"{', '.join(registry.names(comparable=True))}")
        v.whole("hidden", self.hidden, lo=1)
        if not self.spreads:
            raise v.ConfigError("spreads: give at least one spread level")
        for s in self.spreads:
            v.number("spreads", s, lo=0)
        v.whole("draws", self.draws, lo=1)
        v.whole("seed", self.seed, lo=0)
        v.whole("workers", self.workers, lo=1)
        v.whole("verify_samples", self.verify_samples, lo=1)


#: energy per synaptic operation of published chips (J/SOP), shown beside the families
PUBLISHED_SOP_J = {
    "Intel Loihi": (23.6e-12, "Davies et al., IEEE Micro 38(1), 2018 (energy per synaptic spike op)"),
    "IBM TrueNorth": (26e-12, "Merolla et al., Science 345(6197), 2014 (energy per synaptic event)"),
    "SpiNNaker 2": (10e-12, "the figure quoted in neurospice issue 18"),
}


def energy_per_sop(row: dict) -> dict:
    """``energy_per_sop_J`` = energy per inference / synaptic operations per inference (an input
    spike reaching one synapse), its breakdown (each part of ``energy_breakdown_J`` per SOP) and,
    where the family needs cooling, the same with it; ``None`` where the family has no energy."""
    sops, e = row.get("synaptic_ops_per_inference"), row.get("energy_per_inference_J")
    if not sops or e is None:
        return {"energy_per_sop_J": None, "energy_per_sop_breakdown_J": None}
    out = {"energy_per_sop_J": e / sops,
           "energy_per_sop_breakdown_J": {k: v / sops for k, v in (row.get("energy_breakdown_J") or {}).items()}}
    if row.get("energy_per_inference_with_cryo_J") is not None:
        out["energy_per_sop_with_cryo_J"] = row["energy_per_inference_with_cryo_J"] / sops
    return out


def to_json_units(row: dict) -> dict:
    """A family row with its SI quantities in :data:`JSON_UNITS` (absent ones as ``None``) and
    its energy per synaptic operation (:func:`energy_per_sop`, in joules as its key says)."""
    out = {k: v for k, v in row.items() if k not in JSON_UNITS}
    out.update(energy_per_sop(row))
    for si, (key, factor) in JSON_UNITS.items():
        out[key] = row[si] * factor if row.get(si) is not None else None
    out.setdefault("accuracy_circuit", None)
    out.setdefault("circuit_check", None)
    return out


def compare(c: CompareConfig | None = None, out="runs/compare", progress: bool = False) -> dict:
    """Run every family in ``c.families`` (each result cached as ``out/families/NAME.json``,
    so an interrupted comparison resumes), then write the report. Returns the JSON summary
    (``families``: one object per family; ``report``: the Markdown path)."""
    c = c or CompareConfig()
    t0 = time.time()
    out = Path(out)
    families = [registry.get(name) for name in c.families]
    results, skipped = {}, {}
    for fam in families:
        cached = out / "families" / f"{re.sub(r'[^A-Za-z0-9_.-]', '-', fam.name)}.json"
        key = _config_key(c, fam)
        if cached.exists():
            prev = json.loads(cached.read_text())
            if prev.get("config_key") == key and _unchanged(prev):
                results[fam.name] = prev
                continue
        if progress:
            print(f"[compare] {fam.name}", flush=True)
        t = time.time()
        try:
            row = fam.compare_row(c, out, progress)
        except TechnologyError as exc:      # e.g. no sky130 PDK here: the other families go on
            skipped[fam.name] = str(exc)
            if progress:
                print(f"[compare] {fam.name} skipped: {exc}", flush=True)
            continue
        row = to_json_units({"family": fam.name, "variation": fam.variation, **row})
        row.update({"config_key": key, "wall_s": round(time.time() - t, 1)})
        atomic_write_json(cached, row, indent=1, default=_json_default)
        results[fam.name] = json.loads(cached.read_text())
    if not results:
        raise NeurospiceError(f"no family could run: {skipped}")
    from .report import write_report
    report = write_report(results, c, out, skipped)
    summary = {"families": results, "skipped": skipped, "report": str(report), "dataset": c.dataset,
               "hidden": c.hidden, "spreads": list(c.spreads), "config": asdict(c),
               "wall_s": round(time.time() - t0, 1)}
    atomic_write_json(out / "compare.json", summary, indent=1, default=_json_default)
    return summary


def _config_key(c: CompareConfig, family) -> str:
    """Everything that decides a family's numbers (not which families run, nor how many workers)."""
    d = asdict(c)
    d.pop("families")
    d.pop("workers")
    from .robustness import FINE_TUNE_LR
    d.update(family=family.name, settings=family.compare_settings(c), fine_tune_lr=FINE_TUNE_LR)
    return json.dumps(d, sort_keys=True, default=list)


def _unchanged(prev: dict) -> bool:
    """A cached family result still describes the files it names."""
    return all(sha256_or_none(prev.get(k)) == prev.get(f"{k}_sha256") for k in ("artefact", "checkpoint"))


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON: {type(o)}")
