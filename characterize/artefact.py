"""Curve artefacts: one self-describing JSON file per characterization.

Layout (``format: neurospice.curve``, ``version: 1``)::

    family, created, provenance {technology, corner(s), temperature_C, ngspice,
    netlist_hash (of every point's cache key), sweep, design},
    units {name: unit}, table {axes..., measured grids...},
    curve {x, y, x_name, y_name, fits {spline, pwl, parametric, linear},
           metrics {fit: {rms_frac, rms_frac_train}}}, summary {...},
    sha256 (of everything above, canonical JSON)

Loading checks format, version and checksum: a damaged or foreign file raises
:class:`ArtefactError` naming what is wrong.
"""
from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy import interpolate, optimize

from neurospice.circuits.errors import ArtefactError
from neurospice.files import atomic_write_text

FORMAT = "neurospice.curve"
VERSION = 1


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()


def save_artefact(data: dict, path: str | Path) -> Path:
    body = {"format": FORMAT, "version": VERSION, **data}
    body.pop("sha256", None)
    body["sha256"] = hashlib.sha256(_canonical(body)).hexdigest()
    return atomic_write_text(path, json.dumps(body, indent=1, allow_nan=True))


def load_artefact(path: str | Path, require: tuple[str, ...] = ()) -> dict:
    """Read and verify an artefact; raise ArtefactError on damage or foreign content.

    What it promises: the file is one JSON object of this format and version whose checksum
    matches (so it is exactly what :func:`save_artefact` wrote), and holds every top-level key
    in ``require``. The content of each family's keys is that family's to check (each
    family's artefact has its own layout)."""
    path = Path(path)
    try:
        raw = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtefactError(f"{path}: cannot read curve artefact ({exc})") from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ArtefactError(f"{path}: not a curve artefact (invalid JSON at line {exc.lineno}: "
                            f"{exc.msg}); the file is damaged or of another kind") from exc
    except (ValueError, RecursionError) as exc:   # a 5,000-digit number, nesting too deep
        raise ArtefactError(f"{path}: not a curve artefact ({type(exc).__name__}: "
                            f"{str(exc)[:120]}); the file is damaged or of another kind") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ArtefactError(f"{path}: not a neurospice curve artefact (format {str(found)[:80]!r})")
    if data.get("version") != VERSION:
        raise ArtefactError(f"{path}: artefact version {str(data.get('version'))[:40]} is not "
                            f"supported (this neurospice reads version {VERSION})")
    stored = data.pop("sha256", None)
    if stored != hashlib.sha256(_canonical(data)).hexdigest():
        raise ArtefactError(f"{path}: checksum mismatch: the artefact was modified or damaged")
    data["sha256"] = stored
    missing = [k for k in require if k not in data]
    if missing:
        raise ArtefactError(f"{path}: {data.get('family') or data.get('kind') or 'curve'} artefact "
                            f"lacks {', '.join(map(repr, missing))}")
    return data


# -- fits -------------------------------------------------------------------------------
def _saturating(c, a, b, d):
    """Charge-sharing form: V = a·c/(c + b) + d·c (a: asymptote V, b: effective C, d: V/fF)."""
    return a * c / (c + b) + d * c


def fit_curve(x, y) -> dict:
    """Spline, piecewise-linear, parametric and linear fits of y(x), with honest errors.

    ``rms_frac`` is the RMS error on held-out points (every other point, fitted on the
    rest; end points always in the fitting set) divided by the range of y;
    ``rms_frac_train`` is the in-sample RMS of the fit to all points.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    order = np.argsort(x)
    x, y = x[order], y[order]
    span = float(y.max() - y.min()) or 1.0
    held = np.zeros(len(x), bool)
    held[1:-1:2] = True
    fits, metrics = {}, {}

    def record(name, model_all, predict_heldout):
        pred_all = _eval_fit(model_all, x)
        metrics[name] = {"rms_frac": float(np.sqrt(np.mean((predict_heldout - y[held]) ** 2)) / span),
                         "rms_frac_train": float(np.sqrt(np.mean((pred_all - y) ** 2)) / span)}
        fits[name] = model_all

    # cubic spline through the points
    sp_all = interpolate.make_interp_spline(x, y, k=3)
    sp_tr = interpolate.make_interp_spline(x[~held], y[~held], k=3)
    record("spline", {"kind": "spline", "t": sp_all.t.tolist(), "c": sp_all.c.tolist(), "k": 3},
           sp_tr(x[held]))
    # piecewise linear
    record("pwl", {"kind": "pwl", "x": x.tolist(), "y": y.tolist()},
           np.interp(x[held], x[~held], y[~held]))
    # parametric (charge sharing)
    p0 = (float(y.max()), float(np.median(x)) or 1.0, 0.0)
    try:
        pa, _ = optimize.curve_fit(_saturating, x, y, p0=p0, maxfev=20000)
        pt, _ = optimize.curve_fit(_saturating, x[~held], y[~held], p0=p0, maxfev=20000)
        record("parametric", {"kind": "parametric", "form": "a*c/(c+b) + d*c",
                              "params": dict(zip("abd", map(float, pa)))},
               _saturating(x[held], *pt))
    except (RuntimeError, ValueError):
        pass
    # straight line (the reference a linear neuron model would assume)
    la = np.polyfit(x, y, 1)
    lt = np.polyfit(x[~held], y[~held], 1)
    record("linear", {"kind": "linear", "slope": float(la[0]), "intercept": float(la[1])},
           np.polyval(lt, x[held]))
    return {"fits": fits, "metrics": metrics}


def _eval_fit(fit: dict, x):
    x = np.asarray(x, float)
    kind = fit["kind"]
    if kind == "spline":
        return interpolate.BSpline(np.array(fit["t"]), np.array(fit["c"]), fit["k"])(x)
    if kind == "pwl":
        return np.interp(x, fit["x"], fit["y"])
    if kind == "parametric":
        p = fit["params"]
        return _saturating(x, p["a"], p["b"], p["d"])
    if kind == "linear":
        return fit["slope"] * x + fit["intercept"]
    raise ArtefactError(f"unknown fit kind {kind!r}")


def evaluate(artefact: dict, x, fit: str = "spline"):
    """Evaluate the artefact's main curve with one of its fits."""
    return _eval_fit(artefact["curve"]["fits"][fit], x)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def finite(v):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v
