import json
import os
import pickle
import subprocess
import sys

import pytest
from filelock import FileLock


def shared(tmp_path_factory, name: str, make):
    """``make()`` once per test run, also under pytest-xdist (``-n``): the first worker to ask
    makes it under a file lock and pickles it beside the workers' temp folders; the others
    wait for the lock and read it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    done = root / f"shared-{name}.pkl"
    with FileLock(str(root / f"shared-{name}.lock")):
        if done.exists():
            return pickle.loads(done.read_bytes())
        value = make()
        done.write_bytes(pickle.dumps(value))
        return value


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Every test session gets its own cache folder (no results leak between runs)."""
    os.environ["NEUROSPICE_CACHE"] = str(tmp_path_factory.mktemp("nscache"))
    yield


#: test files in the order the two test processes should start them: the longest first (CI
#: durations, README *Status*), so that no long file is left for the end while the other process
#: idles, and the two that build the session's memcap tables (test_compare) and hold the longest
#: fixture (test_qclif) start on different processes. Every other file follows in collection
#: order. Used with ``--dist loadfile --no-loadscope-reorder`` (scripts/test.sh).
LONGEST_FILES_FIRST = ("test_qclif.py", "test_compare.py", "test_sfq_inhibition.py", "test_kill_resume.py",
                       "test_kill_resume_sfq_qclif.py", "test_qclif_training.py", "test_sfq_training.py",
                       "test_technology.py", "test_sfq_cells.py", "test_custom_neuron.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: k for k, name in enumerate(LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))     # stable: the rest as collected
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

    def make():
        out = tmp_path_factory.mktemp("memcap_diff")
        return characterize_memcap_diff(fan_ins=(64, 16), workers=2, out=out, progress=False,
                                        mc_samples=MC_OFFSET_SAMPLES, seed=1)["artefact"]
    return shared(tmp_path_factory, "memcap_diff_curve", make)


def run_cli(*args, env, timeout=900) -> dict:
    """``python -m neurospice ARGS`` in a subprocess; its last stdout line as JSON."""
    out = subprocess.run([sys.executable, "-m", "neurospice", *args], capture_output=True,
                         text=True, env=env, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def memcap_quick_kills(tmp_path_factory):
    """``neurospice characterize memcap --quick`` through the CLI, the hard way: run uninterrupted
    with an empty cache (``verb.ref``); in a second folder killed at random moments and resumed
    (``verb.chain``, :class:`kill_harness.Verb`); then the uninterrupted command once more, all
    from its cache (``again``). ``test_kill_resume`` checks the kills, ``test_cli`` the curve and
    the cache, ``test_neurons`` uses the artefact."""
    from kill_harness import Verb, _complete
    args = lambda root: ["characterize", "memcap", "--quick", "--workers", "2",  # noqa: E731
                         "--out", str(root / "out")]

    def make():
        verb = Verb(tmp_path_factory.mktemp("memcap_quick"), args, seed=22)
        again, _ = _complete(args(verb.ref), verb.ref)
        verb.args = None                     # a lambda does not pickle; the runs are done
        return {"verb": verb, "full": verb.ref_summary, "again": again}
    return shared(tmp_path_factory, "memcap_quick_kills", make)
