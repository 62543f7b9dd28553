import json
import os
import signal
import subprocess
import sys
import time

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Every test session gets its own cache folder (no results leak between runs)."""
    os.environ["NEUROSPICE_CACHE"] = str(tmp_path_factory.mktemp("nscache"))
    yield


def pytest_collection_modifyitems(config, items):
    from neurospice.circuits.technology import sky130_available
    if sky130_available():
        return
    skip = pytest.mark.skip(reason="sky130 PDK not found (run 'neurospice fetch-pdk')")
    for item in items:
        if "sky130" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def memcap_diff_curve(tmp_path_factory):
    """The differential neuron's tables at fan-ins 64 and 16 with the comparator's Monte Carlo
    (what ``compare`` needs), made once per session for the training and compare tests."""
    from neurospice.characterize.memcap_diff import characterize_memcap_diff
    from neurospice.training.memcap_family import MC_OFFSET_SAMPLES
    out = tmp_path_factory.mktemp("memcap_diff")
    return characterize_memcap_diff(fan_ins=(64, 16), workers=2, out=out, progress=False,
                                    mc_samples=MC_OFFSET_SAMPLES, seed=1)["artefact"]


def run_cli(*args, env, timeout=900) -> dict:
    """``python -m neurospice ARGS`` in a subprocess; its last stdout line as JSON."""
    out = subprocess.run([sys.executable, "-m", "neurospice", *args], capture_output=True,
                         text=True, env=env, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def memcap_quick_cli(tmp_path_factory):
    """``neurospice characterize memcap --quick`` through the CLI, the hard way: started with
    an empty cache, killed once some points are done, re-run (resume), then run again (all
    from the cache). ``test_cli`` checks the run; ``test_neurons`` uses its artefact."""
    root = tmp_path_factory.mktemp("memcap_quick")
    env = dict(os.environ, NEUROSPICE_CACHE=str(root / "cache"))
    args = ["characterize", "memcap", "--quick", "--json", "--out", str(root / "runs")]
    proc = subprocess.Popen([sys.executable, "-m", "neurospice", *args, "--workers", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    points_dir = root / "cache" / "points"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(points_dir.rglob("*.json"))) < 16:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(points_dir.rglob("*.json")))
    full = run_cli(*args, "--workers", "2", env=env)
    again = run_cli(*args, env=env)
    return {"finished_before_kill": finished, "full": full, "again": again}

