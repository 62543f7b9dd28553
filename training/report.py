"""The comparison report: one Markdown file with its PNG figures beside it (``report.md``).

Figures: every family's neuron transfer on one axis (steady output spikes per step against
the net input per step in units of that neuron's threshold), accuracy against device
variation, and energy per inference against accuracy.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

STEPS_TRANSFER = 64        #: time steps per point of the transfer figure
COLORS = {"memcap": "tab:blue", "lif": "tab:gray", "sfq": "tab:purple", "qclif": "tab:green"}


def transfer_curves(results: dict, drives=None) -> dict:
    """Per family ``(drive, spikes per step)``: the family's own neuron model (the one the
    circuit checks confirm), driven by a constant net input for :data:`STEPS_TRANSFER` steps."""
    drives = np.linspace(0, 3, 61) if drives is None else np.asarray(drives)
    curves = {}
    for fam, r in results.items():
        if fam in ("memcap", "lif"):
            curves[fam] = _memcap_transfer(r["checkpoint"], drives)
        elif fam == "sfq":
            curves[fam] = _sfq_transfer(r["checkpoint"], drives)
        elif fam == "qclif":
            curves[fam] = _qclif_transfer(r["checkpoint"], drives)
    return curves


def _memcap_transfer(ck_path, drives):
    from .memcap_net import IdealNeuron, nearest_layer
    from .train import load_checkpoint, model_from_checkpoint
    model, _, artefact = model_from_checkpoint(load_checkpoint(ck_path))
    nrn = model.neurons[0]
    lin = IdealNeuron.from_table(nearest_layer(artefact, model.sizes[0]), artefact["threshold"],
                                 artefact["summary"]["v_reset_neg_V"])
    dc = torch.as_tensor(drives, dtype=torch.float32) * lin.threshold / lin.gain   # fF per step
    state = nrn.initial_state((len(drives),))
    spikes = torch.zeros(len(drives))
    with torch.no_grad():
        for _ in range(STEPS_TRANSFER):
            z, state = nrn(dc, torch.zeros_like(dc), state)
            spikes += z
    return drives, (spikes / STEPS_TRANSFER).numpy()


def _sfq_transfer(ck_path, drives, threshold: int = 4):
    from .sfq_net import SFQNeuron
    nrn = SFQNeuron(len(drives), [threshold], init_threshold=threshold)
    pulses = torch.as_tensor(np.round(drives * threshold), dtype=torch.float32)   # integer pulses
    with torch.no_grad():
        out = nrn(pulses.expand(STEPS_TRANSFER, len(drives)).clone())
    return pulses.numpy() / threshold, (out.sum(0) / STEPS_TRANSFER).numpy()


def _qclif_transfer(ck_path, drives):
    from neurospice.circuits.qclif import step
    from .qclif_train import load_qclif_checkpoint, model_from_qclif_checkpoint
    q = model_from_qclif_checkpoint(load_qclif_checkpoint(ck_path))[0].cfg    # the network's QCLIFConfig
    s_s = np.round(drives * q.threshold).astype(np.int64).clip(*q.bus_range)
    va = np.full(len(drives), q.va_max, np.int64)        # context on: apical saturated (×1)
    v = z = np.zeros(len(drives), np.int64)
    spikes = np.zeros(len(drives))
    for _ in range(STEPS_TRANSFER):
        va, v, z = step(q, va, v, z, np.full(len(drives), q.apical_decay, np.int64), s_s)
        spikes += z
    return s_s / q.threshold, spikes / STEPS_TRANSFER


def _save(fig, ax, path: Path) -> Path:
    import matplotlib.pyplot as plt
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plots(results: dict, out: Path) -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    paths = {}
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for fam, (x, y) in transfer_curves(results).items():
        ax.plot(x, y, drawstyle="steps-post" if fam in ("sfq", "qclif") else "default",
                color=COLORS[fam], label=fam)
    ax.set(xlabel="net input per step / threshold", ylabel="output spikes per step",
           title=f"neuron transfer (steady state, {STEPS_TRANSFER} steps)")
    paths["transfer"] = _save(fig, ax, out / "transfer.png")

    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for fam, r in results.items():
        for key, style, label in (("robustness", "o-", fam), ("robustness_variation_aware", "s--",
                                                                f"{fam}, variation-aware")):
            if not r.get(key):
                continue
            s = [p["spread"] for p in r[key]]
            ax.errorbar(s, [p["accuracy_mean"] for p in r[key]], yerr=[p["accuracy_std"] for p in r[key]],
                        fmt=style, color=COLORS[fam], label=label, capsize=2)
    ax.set(xlabel="relative spread σ (per family: see table)", ylabel="test accuracy",
           title="accuracy under device variation")
    paths["robustness"] = _save(fig, ax, out / "robustness.png")

    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for fam, r in results.items():
        if r.get("energy_per_inference_nJ"):
            ax.scatter(r["energy_per_inference_nJ"], r["accuracy_model"], color=COLORS[fam], label=fam, s=40)
            if r.get("energy_per_inference_with_cryo_nJ"):
                ax.scatter(r["energy_per_inference_with_cryo_nJ"], r["accuracy_model"], color=COLORS[fam],
                           marker="x", s=40, label=f"{fam} incl. cryocooling")
    ax.set_xscale("log")
    ax.set(xlabel="energy per inference (nJ, log)", ylabel="test accuracy (model)",
           title="energy vs accuracy")
    paths["energy"] = _save(fig, ax, out / "energy_accuracy.png")
    return paths


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
            check = f"{chk['spike_agreement'] * 100:.1f} % spike agreement, {chk['samples']} " + (
                "samples" if fam == "memcap" else "neuron-samples")
            if r.get("accuracy_circuit") is not None:
                check += (f"; accuracy {r['accuracy_circuit']:.3f} in ngspice vs "
                          f"{r['accuracy_model_on_verified']:.3f} model on those samples")
            if chk.get("bit_exact_agreement") is not None:
                check += f"; {chk['bit_exact_agreement'] * 100:.1f} % of steps bit-exact (all registers)"
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
    sig = results.get("memcap", {}).get("comparator_offset_sigma_mV")
    L += ["", "Failure models (see `neurospice.training.compare`): memcap/lif — every capacitance "
          "×(1 + σ·N(0,1))" + (f"; memcap also, at every σ > 0, each neuron's comparator offset off by "
                               f"N(0, {sig:.1f} mV) (its Monte Carlo σ)" if sig else "") + "; sfq — a neuron whose critical currents are off by ε sees its bias at "
          "1/(1+ε), outside its characterized bias window it is silent (too low) or free-running "
          "(too high)" + (f", window {results['sfq']['bias_window']}" if "sfq" in results else "") +
          "; qclif — a neuron whose critical path is slower by 1+ε than the guard at fmax allows "
          "latches wrong bits (random spikes). Variation-aware: the plain network fine-tuned with "
          f"σ = {max(config.spreads):g} drawn anew at every training step.", ""]
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
    path.write_text("\n".join(L) + "\n")
    return path
