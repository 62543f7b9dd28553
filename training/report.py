"""The comparison report: one Markdown file with its PNG figures beside it (``report.md``).

Figures: every family's neuron transfer on one axis (steady output spikes per step against
the net input per step in units of that neuron's threshold), accuracy against device
variation, and energy per inference against accuracy.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurospice import registry
from neurospice.files import atomic_savefig, atomic_write_text



def transfer_curves(results: dict, drives=None) -> dict:
    """Per family ``(drive, spikes per step)``: the family's own neuron model (the one the
    circuit checks confirm), driven by a constant net input (:meth:`Family.transfer`)."""
    drives = np.linspace(0, 3, 61) if drives is None else np.asarray(drives)
    curves = {}
    for name, r in results.items():
        curve = registry.get(name).transfer(r, drives)
        if curve is not None:
            curves[name] = curve
    return curves


def _save(fig, ax, path: Path) -> Path:
    import matplotlib.pyplot as plt
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return path


def _plots(results: dict, out: Path) -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = {}
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for fam, (x, y) in transfer_curves(results).items():
        ax.plot(x, y, drawstyle="steps-post" if registry.get(fam).transfer_steps else "default",
                color=registry.get(fam).color, label=fam)
    ax.set(xlabel="net input per step / threshold", ylabel="output spikes per step",
           title=f"neuron transfer (steady state, {registry.TRANSFER_STEPS} steps)")
    paths["transfer"] = _save(fig, ax, out / "transfer.png")

    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for fam, r in results.items():
        for key, style, label in (("robustness", "o-", fam), ("robustness_variation_aware", "s--",
                                                                f"{fam}, variation-aware")):
            if not r.get(key):
                continue
            s = [p["spread"] for p in r[key]]
            ax.errorbar(s, [p["accuracy_mean"] for p in r[key]], yerr=[p["accuracy_std"] for p in r[key]],
                        fmt=style, color=registry.get(fam).color, label=label, capsize=2)
    ax.set(xlabel="relative spread σ (per family: see table)", ylabel="test accuracy",
           title="accuracy under device variation")
    paths["robustness"] = _save(fig, ax, out / "robustness.png")

    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for fam, r in results.items():
        if r.get("energy_per_inference_nJ"):
            ax.scatter(r["energy_per_inference_nJ"], r["accuracy_model"], color=registry.get(fam).color, label=fam, s=40)
            if r.get("energy_per_inference_with_cryo_nJ"):
                ax.scatter(r["energy_per_inference_with_cryo_nJ"], r["accuracy_model"], color=registry.get(fam).color,
                           marker="x", s=40, label=f"{fam} incl. cryocooling")
    ax.set_xscale("log")
    ax.set(xlabel="energy per inference (nJ, log)", ylabel="test accuracy (model)",
           title="energy vs accuracy")
    paths["energy"] = _save(fig, ax, out / "energy_accuracy.png")
    return paths


def _sop_table(results: dict) -> list[str]:
    """Energy per synaptic operation of every family beside published chips' figures."""
    from .compare import PUBLISHED_SOP_J
    L = ["", "## Energy per synaptic operation (SOP: an input spike reaching one synapse)", "",
         "| | synaptic ops / inference | energy / SOP | what it holds (per SOP) |", "|---|---|---|---|"]
    for fam, r in results.items():
        e = r.get("energy_per_sop_J")
        parts = ", ".join(f"{k.removesuffix('_J').replace('_', ' ')} {v * 1e12:.3g} pJ"
                          for k, v in (r.get("energy_per_sop_breakdown_J") or {}).items())
        cryo = (f"; {r['energy_per_sop_with_cryo_J'] * 1e12:.3g} pJ with cryocooling"
                if r.get("energy_per_sop_with_cryo_J") is not None else "")
        L.append(f"| {fam} | {_fmt(r.get('synaptic_ops_per_inference'), '.4g')} | "
                 f"{_fmt(e * 1e12 if e is not None else None, '.3g', ' pJ')} | {parts or '—'}{cryo} |")
    for chip, (joules, source) in PUBLISHED_SOP_J.items():
        L.append(f"| {chip} (published) | | {joules * 1e12:.3g} pJ | {source} |")
    return L


def _fmt(v, spec=".3g", unit=""):
    if v is None:
        return "—"
    return f"{v:{spec}}{unit}"


def write_report(results: dict, config, out, skipped: dict | None = None) -> Path:
    """Write ``report.md`` + figures under ``out``; returns the Markdown path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figs = _plots(results, out)
    L = [f"# neurospice comparison — {config.dataset}, {config.hidden} hidden neurons per family", "",
         "Every number below comes from the artefacts and checkpoints listed at the end "
         "(paths and SHA-256); circuits simulated with ngspice.", "",
         "| family | neurons | test accuracy (model) | circuit check in ngspice | energy / spike | "
         "energy / inference | latency / inference | clock |",
         "|---|---|---|---|---|---|---|---|"]
    for fam, r in results.items():
        chk = r.get("circuit_check")
        if chk:
            check = (f"{chk['spike_agreement'] * 100:.1f} % spike agreement, {chk['samples']} "
                     f"{chk.get('unit', 'samples')}")
            if r.get("accuracy_circuit") is not None and r.get("accuracy_model_on_verified") is not None:
                check += (f"; accuracy {r['accuracy_circuit']:.3f} in ngspice vs "
                          f"{r['accuracy_model_on_verified']:.3f} model on those samples")
            if chk.get("bit_exact_agreement") is not None:
                check += f"; {chk['bit_exact_agreement'] * 100:.1f} % of steps bit-exact (all registers)"
            wide = r.get("circuit_check_at_scale")
            if wide:
                check += (f"; at {wide['level']} level: {wide['samples']} "
                          f"{wide.get('unit', 'samples')}, {wide['spike_agreement'] * 100:.1f} % spike agreement"
                          + (f", {wide['bit_exact_agreement'] * 100:.1f} % bit-exact"
                             if wide.get("bit_exact_agreement") is not None else ""))
        else:
            check = "— (no circuit)"
        L.append(f"| {fam} | {r['neurons']} ({'-'.join(map(str, r['layers']))}) | "
                 f"{r['accuracy_model']:.4f} | {check} | {_fmt(r.get('energy_per_spike_pJ'), '.4g', ' pJ')} | "
                 f"{_fmt(r.get('energy_per_inference_nJ'), '.4g', ' nJ')}"
                 f"{' (' + _fmt(r['energy_per_inference_with_cryo_nJ'], '.4g', ' nJ with cryocooling') + ')' if r.get('energy_per_inference_with_cryo_nJ') else ''} | "
                 f"{_fmt(r.get('latency_per_inference_ns'), '.4g', ' ns')} | {_fmt(r.get('clock_MHz'), '.4g', ' MHz')} |")
    L += [f"| {fam} | not run: {why} | | | | | | |" for fam, why in (skipped or {}).items()]
    L += ["", "What each energy counts:", ""]
    L += [f"- **{fam}**: {r.get('energy_counted') or '—'}" for fam, r in results.items()]
    L += _sop_table(results)
    L += ["", f"![transfer]({figs['transfer'].name})", "",
          "## Robustness: accuracy under device variation", "",
          f"{config.draws} Monte Carlo draws (chips) per spread level; mean ± std of test accuracy.", "",
          "| family | what varies | " + " | ".join(f"σ = {s:g}" for s in config.spreads) + " |",
          "|---|---|" + "---|" * len(config.spreads)]
    for fam, r in results.items():
        for key, name in (("robustness", fam), ("robustness_variation_aware", f"{fam}, variation-aware")):
            if r.get(key):
                L.append(f"| {name} | {r['variation']} | " + " | ".join(
                    f"{p['accuracy_mean']:.3f} ± {p['accuracy_std']:.3f}" for p in r[key]) + " |")
    L += ["", "Failure models (see each family's module):", ""]
    L += [f"- **{fam}**: {registry.get(fam).describe_failures(r)}" for fam, r in results.items()]
    L += ["", f"Variation-aware: the plain network fine-tuned with σ = {max(config.spreads):g} drawn "
          "anew at every training step.", ""]
    gains = [(fam, r["variation_aware_gain"]) for fam, r in results.items() if r.get("variation_aware_gain")]
    if gains:
        L += ["Variation-aware minus plain at the largest spread, chip by chip on the same chips "
              "(mean ± standard error; chips where it was better / worse):", ""]
        L += [f"- **{fam}** (σ = {g['spread']:g}): {g['gain_mean']:+.3f} ± {g['gain_se']:.3f}; "
              f"better on {g['chips_better']}, worse on {g['chips_worse']} of {g['draws']} chips"
              for fam, g in gains]
        L += [""]
    L += [f"![robustness]({figs['robustness'].name})", "",
          f"![energy vs accuracy]({figs['energy'].name})", "",
          "## Provenance", "", "| family | artefact | SHA-256 | checkpoint | SHA-256 |", "|---|---|---|---|---|"]
    for fam, r in results.items():
        L.append(f"| {fam} | `{r['artefact']}` | `{(r.get('artefact_sha256') or '')[:16]}…` | "
                 f"`{r['checkpoint']}` | `{(r.get('checkpoint_sha256') or '')[:16]}…` |")
    path = out / "report.md"
    atomic_write_text(path, "\n".join(L) + "\n")
    return path
