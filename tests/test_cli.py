"""End to end through the CLI: real ngspice, artefact + plot, kill midway and resume, cache."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from neurospice.characterize.artefact import load_artefact


def _cli(*args, env, timeout=900):
    out = subprocess.run([sys.executable, "-m", "neurospice", *args], capture_output=True,
                         text=True, env=env, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_characterize_memcap_quick_kill_resume_and_cache(tmp_path):
    env = dict(os.environ, NEUROSPICE_CACHE=str(tmp_path / "cache"))
    args = ["characterize", "memcap", "--quick", "--json", "--out", str(tmp_path / "runs")]
    # 1. start, wait until some points are finished, kill it
    proc = subprocess.Popen([sys.executable, "-m", "neurospice", *args, "--workers", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    points_dir = tmp_path / "cache" / "points"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(points_dir.rglob("*.json"))) < 16:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(points_dir.rglob("*.json")))
    assert 16 <= finished < 165, "the kill must land midway"
    # 2. re-run: nothing finished is lost
    full = _cli(*args, "--workers", "2", env=env)
    assert full["points"] == 165 and full["failed"] == 0
    assert full["cached"] >= finished
    art = load_artefact(full["artefact"])
    assert Path(full["plot"]).stat().st_size > 10_000
    assert art["provenance"]["ngspice"].startswith("ngspice-")
    assert art["provenance"]["technology"]["name"] == "generic-180nm"
    # 3. the curve: accurate fit, clearly nonlinear
    assert full["fit_rms"] < 0.01
    assert full["linear_rms"] >= 5 * full["fit_rms"]
    # 4. identical re-run: everything from the cache
    again = _cli(*args, env=env)
    assert again["cached"] == 165 and again["fit_rms"] == full["fit_rms"]


def test_bad_input_gives_named_error(tmp_path):
    env = dict(os.environ, NEUROSPICE_CACHE=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-m", "neurospice", "train", "memcap", "--curve",
                          str(tmp_path / "no-such-curve.json"), "--json"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 2
    assert json.loads(out.stdout.strip().splitlines()[-1])["error"] == "NeurospiceError"
