"""End to end through the CLI: real ngspice, artefact + plot, kill midway and resume, cache."""
import json
import os
import subprocess
import sys
from pathlib import Path

from neurospice.characterize.artefact import load_artefact


def test_characterize_memcap_quick_curve_and_cache(memcap_quick_kills):
    """The run itself is the session fixture ``memcap_quick_kills`` (conftest; its kills are
    checked in ``test_kill_resume``)."""
    full, again = memcap_quick_kills["full"], memcap_quick_kills["again"]
    assert full["points"] == 165 and full["failed"] == 0
    art = load_artefact(full["artefact"])
    assert Path(full["plot"]).stat().st_size > 10_000
    assert art["provenance"]["ngspice"].startswith("ngspice-")
    assert art["provenance"]["technology"]["name"] == "generic-180nm"
    # the curve: accurate fit, clearly nonlinear
    assert full["fit_rms"] < 0.01
    assert full["linear_rms"] >= 5 * full["fit_rms"]
    # identical re-run: everything from the cache
    assert again["cached"] == 165 and again["fit_rms"] == full["fit_rms"]


def test_bad_input_gives_named_error(tmp_path):
    env = dict(os.environ, NEUROSPICE_CACHE=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-m", "neurospice", "train", "memcap", "--curve",
                          str(tmp_path / "no-such-curve.json"), "--json"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 2
    assert json.loads(out.stdout.strip().splitlines()[-1])["error"] == "NeurospiceError"
