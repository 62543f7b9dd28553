"""Kill at random moments (issue 21): every long verb — ``characterize memcap --quick``,
``characterize custom --quick``, ``characterize sfq`` (cells) and ``characterize qclif`` (4 bits)
(those two in ``test_kill_resume_sfq_qclif.py``, so test workers share the load), ``train memcap``, ``train custom``, ``verify`` and ``compare``
— is started as ``python -m neurospice ...`` with an empty cache, SIGKILLed at ``KILLS`` seeded
random moments (one kill per start, each re-run resuming where the killed one stopped), then run
once more to completion. The end must equal an uninterrupted run of the same command field by
field (artefact tables; training: the same weights, history and epoch in ``checkpoint.pt`` and
``last.pt``, the same optimizer and generator state in ``last.pt``; ``verify`` and ``compare``:
the same numbers), and no damaged file may be left: after every kill each JSON parses, each
artefact and checkpoint loads, each PNG is whole; after the last run no temporary file is left.
At least one kill of each verb must land with some but not all of its work done.

The moments: the uninterrupted run is followed as it goes (its *units*: cache entries, finished
epochs, finished files) and ``KILLS`` moments of it are drawn — one in its start-up (before its
first unit), the others between its first and its last unit. Start ``i`` is killed when it has
finished the units the uninterrupted run had by moment ``t_i`` and then as long again as that run
took from its last unit to ``t_i`` (or at its next unit, if that comes first: the machine's
speed varies, so the moments follow the work, not the clock). Each kill and what the run had
finished by then is printed (``pytest -s``). ``NEUROSPICE_KILLS`` sets ``KILLS`` (default 5).
The memcap training and compare tests use the session's memcap-diff tables (``conftest``);
``characterize memcap`` (~2 min on 2 cores) is marked slow."""
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kill_harness import (Verb, _normal, _same_artefacts, _same_checkpoint, assert_finished_clean,
                          assert_killed_mid_run)

SEED = 21
AXON = Path(__file__).resolve().parents[1] / "netlists" / "axon_hillock.toml"


# ------------------------------------------------------------------------ characterize

def _characterize_custom(root):
    return ["characterize", "custom", "--neuron", str(AXON), "--quick", "--workers", "2",
            "--out", str(root / "out")]


@pytest.fixture(scope="module")
def custom_characterized(tmp_path_factory):
    return Verb(tmp_path_factory.mktemp("kill_custom"), _characterize_custom, SEED)


def test_characterize_custom_survives_kills(custom_characterized):
    v = custom_characterized
    assert_killed_mid_run(v)
    assert_finished_clean(v.chain)
    v.same_summary()
    _same_artefacts(v.ref / "out", v.chain / "out")


@pytest.mark.slow
def test_characterize_memcap_survives_kills(memcap_quick_kills):
    """The run is the session fixture ``memcap_quick_kills`` (``conftest``; ``test_cli`` checks
    its curve, ``test_neurons`` uses its artefact)."""
    v = memcap_quick_kills["verb"]
    assert_killed_mid_run(v)
    assert_finished_clean(v.chain)
    v.same_summary()
    assert v.summary["points"] == 165 and v.summary["failed"] == 0
    _same_artefacts(v.ref / "out", v.chain / "out")


# ------------------------------------------------------------------------ train, verify

def _check_training(v: Verb, run="out"):
    assert_killed_mid_run(v)
    assert_finished_clean(v.chain)
    v.same_summary()
    for name in ("checkpoint.pt", "last.pt"):
        _same_checkpoint(v.ref / run / name, v.chain / run / name, (v.ref, v.chain))
    m_ref = json.loads((v.ref / run / "metrics.json").read_text())
    m_chain = json.loads((v.chain / run / "metrics.json").read_text())
    assert _normal(m_chain, [v.chain]) == _normal(m_ref, [v.ref])


@pytest.fixture(scope="module")
def custom_trained(custom_characterized, tmp_path_factory):
    """``train custom`` (aware, a current spread drawn at every step) on the characterized
    Axon-Hillock tables, 6 epochs of 16 hidden neurons on 600 digits."""
    artefact = custom_characterized.ref_summary["artefact"]
    return Verb(tmp_path_factory.mktemp("kill_train_custom"), lambda root: [
        "train", "custom", "--artefact", artefact, "--epochs", "6", "--hidden", "16",
        "--limit", "600", "--current-sigma", "0.1", "--out", str(root / "out")], SEED + 2)


def test_train_custom_survives_kills(custom_trained):
    _check_training(custom_trained)


def test_train_memcap_survives_kills(memcap_diff_curve, tmp_path):
    """``train memcap`` (aware, a programming spread drawn at every step)."""
    v = Verb(tmp_path, lambda root: [
        "train", "memcap", "--curve", memcap_diff_curve, "--epochs", "6", "--hidden", "16",
        "--limit", "600", "--program-sigma", "0.1", "--out", str(root / "out")], SEED + 3)
    _check_training(v)


def test_verify_survives_kills(custom_trained, tmp_path):
    ck = custom_trained.ref_summary["checkpoint"]
    v = Verb(tmp_path, lambda root: ["verify", ck, "--samples", "4", "--hidden-neurons", "4",
                                     "--workers", "2"], SEED + 4)
    assert_killed_mid_run(v)
    assert_finished_clean(v.chain)
    v.same_summary()
    assert v.summary["samples"] == 4


# ------------------------------------------------------------------------ compare

def test_compare_survives_kills(memcap_diff_curve, tmp_path):
    """``compare --families lif --quick`` (the memcap tables given: train, spread, variation-aware
    fine-tuning, report)."""
    def prepare(root):
        (root / "out" / "artefacts" / "memcap").mkdir(parents=True)
        shutil.copy(memcap_diff_curve, root / "out" / "artefacts" / "memcap" / "memcap_diff.json")
    v = Verb(tmp_path, lambda root: ["compare", "--families", "lif", "--quick", "--hidden", "16",
                                     "--draws", "2", "--spreads", "0,0.3", "--workers", "2",
                                     "--out", str(root / "out")], SEED + 5, prepare)
    assert_killed_mid_run(v)
    assert_finished_clean(v.chain)
    v.same_summary()
    for name in ("compare.json", "families/lif.json"):
        a = json.loads((v.ref / "out" / name).read_text())
        b = json.loads((v.chain / "out" / name).read_text())
        assert _normal(b, [v.chain]) == _normal(a, [v.ref]), name
    for run in ("train/lif", "train/lif-variation-aware"):
        for name in ("checkpoint.pt", "last.pt"):
            _same_checkpoint(v.ref / "out" / run / name, v.chain / "out" / run / name, (v.ref, v.chain))


# ------------------------------------------------------------------------ a write cut by a kill

KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from neurospice.files import _temporary
tmp = _temporary(Path(sys.argv[1]))
tmp.write_text('{"half": ')            # killed between writing the temporary and renaming it
print(tmp, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_temporary_left_by_a_kill_is_removed_by_the_next_write(tmp_path):
    """A writer killed mid-write leaves ``.NAME.tmp<pid>-…``; the next process's first write into
    that folder removes it (the cache's entries are written the same way). A live writer's
    temporary and another machine's are left alone."""
    from neurospice.characterize.sweep import PointCache
    from neurospice.files import _temporary, atomic_write_text
    cache = PointCache(tmp_path / "cache")
    key = "ab" + "0" * 62
    targets = [tmp_path / "out" / "metrics.json", cache._path(key)]
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        out = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], capture_output=True,
                             text=True)
        assert out.returncode == -signal.SIGKILL
        assert Path(out.stdout.strip()).exists()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = targets[0].with_name(f".metrics.json.tmp{alive.pid}-1-{_temporary(targets[0]).name[-8:]}")
        foreign = targets[0].with_name(".metrics.json.tmp1-1-00000000")   # another machine's
        live.write_text("writing")
        foreign.write_text("writing")
        atomic_write_text(targets[0], "{}")
        cache.put(key, {"status": "ok", "result": {}})
        assert sorted(p.name for p in targets[0].parent.iterdir()) == sorted(
            ["metrics.json", live.name, foreign.name])
        assert [p.name for p in targets[1].parent.iterdir()] == [targets[1].name]
        assert cache.get(key)["result"] == {}
    finally:
        alive.kill()
        alive.wait()
