"""Kill at random moments (issue 21): every long verb — ``characterize memcap --quick``,
``characterize custom --quick``, ``characterize sfq`` (cells), ``characterize qclif`` (4 bits),
``train memcap``, ``train custom``, ``verify`` and ``compare``
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
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from neurospice.characterize.artefact import load_artefact
from neurospice.training.checkpoint import read_checkpoint

KILLS = int(os.environ.get("NEUROSPICE_KILLS", "5"))
SEED = 21
AXON = Path(__file__).resolve().parents[1] / "netlists" / "axon_hillock.toml"
#: summary / artefact keys that differ between two uninterrupted runs too: times, how much came
#: from the cache, and hashes of files that record a time
VOLATILE = {"wall_s", "train_wall_s", "created", "sha256", "cached", "ngspice_points_cached",
            "analysis_s", "worker_s", "efficiency", "timing", "checkpoint_sha256",
            "artefact_sha256"}


# ------------------------------------------------------------------------ helpers

def _env(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NEUROSPICE_NGSPICE"}
    env["NEUROSPICE_CACHE"] = str(root / "cache")
    return env


def _start(args, root: Path) -> subprocess.Popen:
    """``python -m neurospice ARGS --json`` (its output into files: a full pipe never stalls it)."""
    logs = (tempfile.TemporaryFile(), tempfile.TemporaryFile())
    proc = subprocess.Popen([sys.executable, "-m", "neurospice", *args, "--json"], env=_env(root),
                            stdout=logs[0], stderr=logs[1], start_new_session=True)
    proc.logs = logs
    return proc


def _output(proc) -> tuple[str, str]:
    proc.wait()
    texts = []
    for stream in proc.logs:
        stream.seek(0)
        texts.append(stream.read().decode(errors="replace"))
        stream.close()
    return texts[0], texts[1]


def _summary(proc) -> dict:
    out, err = _output(proc)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _complete(args, root: Path) -> tuple[dict, float]:
    """Run to completion; its JSON summary and wall time."""
    t0 = time.monotonic()
    summary = _summary(_start(args, root))
    return summary, time.monotonic() - t0


def _normal(obj, roots=()):
    """``obj`` without :data:`VOLATILE` keys, every root folder's path written ``ROOT``."""
    text = json.dumps(obj, sort_keys=True, default=str)
    for r in roots:
        text = text.replace(str(r), "ROOT")
    obj = json.loads(text)

    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if k not in VOLATILE}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o
    return strip(obj)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _temporaries(root: Path) -> list[Path]:
    return [p for p in _files(root) if ".tmp" in p.name]


def check_no_damage(root: Path) -> None:
    """Every file under ``root`` but temporaries is whole: JSON parses (and an artefact loads
    with its checksum), a checkpoint loads, a PNG ends with its IEND chunk."""
    for p in _files(root):
        if ".tmp" in p.name:
            continue
        if p.suffix == ".json":
            data = json.loads(p.read_text())
            if isinstance(data, dict) and data.get("format") == "neurospice.curve":
                load_artefact(p)
        elif p.suffix == ".pt":
            read_checkpoint(p)
        elif p.suffix == ".png":
            assert p.read_bytes()[-8:-4] == b"IEND", f"{p} is cut short"


class Progress:
    """What a run under ``root`` has finished, as one growing count: cached points, finished
    epochs (every ``last.pt``) and finished files under ``out``."""

    def __init__(self, root: Path):
        self.root, self._epochs = root, {}

    def _epoch(self, last: Path) -> int:
        try:
            stamp = last.stat().st_mtime_ns
        except FileNotFoundError:
            return 0
        if self._epochs.get(last, (None,))[0] != stamp:
            try:
                self._epochs[last] = (stamp, read_checkpoint(last)["epoch"])
            except Exception:   # replaced while read: next time
                return self._epochs.get(last, (0, 0))[1]
        return self._epochs[last][1]

    def state(self) -> dict:
        cache, out = self.root / "cache" / "points", self.root / "out"
        files = [p for p in _files(out) if ".tmp" not in p.name] if out.exists() else []
        return {"points": sum(1 for _ in cache.rglob("*.json")) if cache.exists() else 0,
                "epochs": sum(self._epoch(p) for p in files if p.name == "last.pt"),
                "files": len(files)}

    def units(self) -> int:
        return sum(self.state().values())


def _poll(proc, progress: Progress, until=None, timeout=600):
    """Follow ``proc``'s progress until it exits or ``until(elapsed, units)`` holds; returns
    the timeline ``[(elapsed_s, units), ...]`` (one entry per change) and whether it exited."""
    t0, line, last = time.monotonic(), [], None
    while time.monotonic() - t0 < timeout:
        u = progress.units()
        t = time.monotonic() - t0
        if u != last:
            line.append((t, u))
            last = u
        if proc.poll() is not None:
            return line, True
        if until and until(t, u):
            return line, False
        time.sleep(0.03)
    raise AssertionError(f"no end after {timeout} s")


def kill_and_resume(args, root: Path, timeline, total_s: float, seed: int) -> tuple[dict, list]:
    """Start ``args`` ``KILLS`` times, each killed at the next of the seeded random moments of
    the uninterrupted run (see the module docstring), checking the files after each kill; then
    once more to the end. Returns the last run's summary and one record per start."""
    rng = random.Random(seed)
    initial = timeline[0][1]                               # files given before the start
    first = next(te for te, u in timeline if u > initial)  # the first and last finished unit
    last = timeline[-1][0]
    moments = sorted([rng.uniform(0, first)] + [rng.uniform(first, last) for _ in range(KILLS - 1)])
    progress = Progress(root)
    records = []
    for t in moments:
        # the moment on the uninterrupted run's timeline: units finished by then, and how long
        # after the last of them
        reached = [(te, u) for te, u in timeline if te <= t]
        goal, since = ((reached[-1][1], t - reached[-1][0]) if reached and reached[-1][1] > initial
                       else (0, t))
        before = progress.units()
        proc = _start(args, root)
        # a moment of the start-up: ``since`` seconds in, or at the first new unit if sooner;
        # else: once the units finished by that moment are, ``since`` seconds more, or at the
        # next new unit if sooner (the machine's speed varies)
        # (a goal the earlier starts already reached: the next unit or ``since``, whichever first)
        need = max(goal, before + 1) if goal else before + 1
        exited = False
        if goal > before:
            _, exited = _poll(proc, progress, until=lambda _, u: u >= need)
            need = progress.units() + 1
        if not exited:
            t_from = time.monotonic()
            _, exited = _poll(proc, progress,
                              until=lambda _, u: u >= need or time.monotonic() - t_from >= since)
        if not exited:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        killed = proc.returncode == -signal.SIGKILL
        _output(proc)
        check_no_damage(root)
        records.append({"moment_s": round(t, 2), "units_goal": goal, "killed": killed,
                        "units": progress.units(), "done": progress.state()})
    final, wall = _complete(args, root)
    records.append({"final_run_s": round(wall, 2)})
    print(f"\n{' '.join(args[:2])}: uninterrupted {total_s:.1f} s, {timeline[-1][1]} units")
    for r in records:
        print("   ", r)
    return final, records


def assert_finished_clean(root: Path) -> None:
    check_no_damage(root)
    assert not _temporaries(root), _temporaries(root)


def assert_killed_mid_run(v) -> None:
    """At least one start was killed with some, not all, of the work finished."""
    initial, total = v.timeline[0][1], v.timeline[-1][1]
    assert any(r.get("killed") and initial < r["units"] < total for r in v.records), v.records


def _same_checkpoint(a: Path, b: Path, roots) -> None:
    """Two checkpoints hold the same training state: weights, epoch, history (times aside) and,
    where present, optimizer and generator state."""
    ca, cb = read_checkpoint(a), read_checkpoint(b)
    assert ca["epoch"] == cb["epoch"], (a, ca["epoch"], cb["epoch"])
    assert ca["state"].keys() == cb["state"].keys()
    for k in ca["state"]:
        assert torch.equal(ca["state"][k], cb["state"][k]), f"{b}: {k} differs from {a}"
    assert _normal(ca["history"]) == _normal(cb["history"])
    assert _normal(ca["config"], roots[:1]) == _normal(cb["config"], roots[1:])
    if "optimizer" in ca:
        sa, sb = ca["optimizer"]["state"], cb["optimizer"]["state"]
        assert sa.keys() == sb.keys()
        for k in sa:
            for name in sa[k]:
                assert torch.equal(torch.as_tensor(sa[k][name]), torch.as_tensor(sb[k][name])), (b, k, name)
        assert torch.equal(ca["generator"], cb["generator"])


class Verb:
    """One command run uninterrupted (``ref``) and killed-and-resumed (``chain``), each in its own
    folder with its own cache; ``args(root)`` gives the command for a folder."""

    def __init__(self, tmp: Path, args, seed: int, prepare=None):
        self.args, self.ref, self.chain = args, tmp / "ref", tmp / "chain"
        for root in (self.ref, self.chain):
            root.mkdir(parents=True)
            if prepare:
                prepare(root)
        t0 = time.monotonic()
        proc = _start(args(self.ref), self.ref)
        self.timeline, _ = _poll(proc, Progress(self.ref))
        self.total_s = time.monotonic() - t0
        self.ref_summary = _summary(proc)
        self.summary, self.records = kill_and_resume(args(self.chain), self.chain, self.timeline,
                                                     self.total_s, seed)

    def same_summary(self):
        assert (_normal(self.summary, [self.chain]) == _normal(self.ref_summary, [self.ref]))


# ------------------------------------------------------------------------ characterize

def _characterize_custom(root):
    return ["characterize", "custom", "--neuron", str(AXON), "--quick", "--workers", "2",
            "--out", str(root / "out")]


@pytest.fixture(scope="module")
def custom_characterized(tmp_path_factory):
    return Verb(tmp_path_factory.mktemp("kill_custom"), _characterize_custom, SEED)


def _same_artefacts(ref: Path, chain: Path) -> int:
    arts = [p.relative_to(ref) for p in _files(ref) if p.suffix == ".json"
            and json.loads(p.read_text()).get("format") == "neurospice.curve"]
    assert arts
    for rel in arts:
        a, b = load_artefact(ref / rel), load_artefact(chain / rel)
        assert _normal(b, [chain]) == _normal(a, [ref]), f"{rel} differs after kills"
    return len(arts)


def test_characterize_custom_survives_kills(custom_characterized):
    v = custom_characterized
    assert_killed_mid_run(v)
    assert_finished_clean(v.chain)
    v.same_summary()
    _same_artefacts(v.ref / "out", v.chain / "out")


@pytest.mark.slow
def test_characterize_memcap_survives_kills(tmp_path):
    v = Verb(tmp_path, lambda root: ["characterize", "memcap", "--quick", "--workers", "2",
                                     "--out", str(root / "out")], SEED + 1)
    assert_killed_mid_run(v)
    assert_finished_clean(v.chain)
    v.same_summary()
    assert v.summary["points"] == 165 and v.summary["failed"] == 0
    _same_artefacts(v.ref / "out", v.chain / "out")


def _on_dask(fn, workers=2, **kw):
    """``fn`` on a 2-process Dask ``LocalCluster``; ``workers``: what ``fn`` is told (the qCLIF
    chunk count follows it)."""
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        return fn(scheduler=cluster.scheduler_address, workers=workers, **kw)


def test_characterize_sfq_survives_kills(tmp_path):
    """``characterize sfq`` on every cell (truth tables at three biases, margins bisected three
    times); the counting neuron's benches are the same kind of sweep point, only ~20 s each,
    which CI cannot afford at ≥ 5 kills. Then a Dask ``LocalCluster`` gives the same artefact."""
    from neurospice.characterize.sfq import characterize_sfq
    from neurospice.characterize.sweep import PointCache
    v = Verb(tmp_path, lambda root: ["characterize", "sfq", "--thresholds", "none",
                                     "--bisection-steps", "3", "--workers", "2",
                                     "--out", str(root / "out")], SEED + 6)
    assert_killed_mid_run(v)
    assert_finished_clean(v.chain)
    v.same_summary()
    assert v.summary["failed"] == 0
    _same_artefacts(v.ref / "out", v.chain / "out")
    ref = load_artefact(v.ref / "out" / "sfq" / "sfq.json")
    cells = ref["summary"]["cells"]
    assert cells["jtl"]["output_pulses"] == 3 and cells["splitter"]["output_pulses"] == 3
    assert cells["jtl"]["bias_low"] < 1 < cells["jtl"]["bias_high"]        # margins were bisected
    dask = _on_dask(characterize_sfq, thresholds=(), bisection_steps=3, out=tmp_path / "dask",
                    cache=PointCache(tmp_path / "dask-cache"), progress=False)
    assert dask["points"] == v.summary["points"]
    b = load_artefact(dask["artefact"])
    assert _normal(b["summary"]) == _normal(ref["summary"])


@pytest.mark.sky130
def test_characterize_qclif_survives_kills(tmp_path):
    """``characterize qclif`` at 4 bits, four chunks of 2 random cycles at transistor level
    (sky130), the first after 8 idle cycles; then a Dask ``LocalCluster`` gives the same artefact.
    The reference for "right" stays the golden model: the registers every cycle."""
    from neurospice.characterize.qclif import characterize_qclif
    from neurospice.characterize.sweep import PointCache
    from neurospice.circuits.qclif import QCLIFConfig
    v = Verb(tmp_path, lambda root: ["characterize", "qclif", "--quick", "--bits", "4", "--cycles", "8",
                                     "--workers", "4", "--out", str(root / "out")], SEED + 7)
    assert_killed_mid_run(v)
    assert_finished_clean(v.chain)
    v.same_summary()
    assert v.summary["bit_exact"] and v.summary["cycles"] == 8
    _same_artefacts(v.ref / "out", v.chain / "out")
    dask = _on_dask(characterize_qclif, quick=True, cycles=8, cfg=QCLIFConfig.for_bits(4), workers=4,
                    out=tmp_path / "dask", cache=PointCache(tmp_path / "dask-cache"), progress=False)
    a = _normal(load_artefact(v.ref / "out" / "qclif" / "qclif.json"))
    b = _normal(load_artefact(dask["artefact"]))
    for x in (a, b):        # one run of its own (not a sweep point): equal to rounding
        x["leakage"] = x.pop("leakage_nW")
    assert a["leakage"] == pytest.approx(b["leakage"], rel=1e-9)
    a.pop("leakage"), b.pop("leakage")
    assert {k: v for k, v in b.items() if k not in ("plot", "artefact")} == \
        {k: v for k, v in a.items() if k not in ("plot", "artefact")}


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
