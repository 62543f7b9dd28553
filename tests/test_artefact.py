"""Curve artefacts: fits against analytic curves; damaged or foreign files give clear errors."""
import json

import numpy as np
import pytest

from neurospice.characterize.artefact import evaluate, fit_curve, load_artefact, save_artefact
from neurospice.circuits.errors import ArtefactError


def _saturating_data():
    c = np.linspace(0, 200, 21)
    return c, 0.9 * c / (c + 60.0)


def test_fits_recover_analytic_saturating_curve():
    c, y = _saturating_data()
    fit = fit_curve(c, y)
    m = fit["metrics"]
    assert m["spline"]["rms_frac"] < 2e-3
    assert m["parametric"]["rms_frac"] < 1e-6
    p = fit["fits"]["parametric"]["params"]
    assert p["a"] == pytest.approx(0.9, rel=1e-4) and p["b"] == pytest.approx(60, rel=1e-4)
    assert m["linear"]["rms_frac"] > 5 * m["spline"]["rms_frac"]


def test_linear_data_is_not_called_nonlinear():
    c = np.linspace(0, 100, 15)
    m = fit_curve(c, 0.003 * c + 0.1)["metrics"]
    assert m["linear"]["rms_frac"] < 1e-9


def _artefact(tmp_path):
    c, y = _saturating_data()
    data = {"family": "test", "curve": {"x": c.tolist(), "y": y.tolist(), **fit_curve(c, y)}}
    return save_artefact(data, tmp_path / "a.json")


def test_roundtrip_and_evaluate(tmp_path):
    a = load_artefact(_artefact(tmp_path))
    assert a["family"] == "test"
    assert evaluate(a, [60.0], "spline")[0] == pytest.approx(0.45, abs=2e-3)


def test_damaged_file(tmp_path):
    p = _artefact(tmp_path)
    p.write_text(p.read_text()[:200])
    with pytest.raises(ArtefactError, match="damaged"):
        load_artefact(p)


def test_modified_value_fails_checksum(tmp_path):
    p = _artefact(tmp_path)
    d = json.loads(p.read_text())
    d["curve"]["y"][3] += 0.01
    p.write_text(json.dumps(d))
    with pytest.raises(ArtefactError, match="checksum"):
        load_artefact(p)


def test_foreign_file(tmp_path):
    p = tmp_path / "other.json"
    p.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ArtefactError, match="not a neurospice curve artefact"):
        load_artefact(p)
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ArtefactError):
        load_artefact(p)
