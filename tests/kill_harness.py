"""Kill-at-random-moments harness (issue 21), shared by ``test_kill_resume`` and the session
fixture of ``characterize memcap --quick`` in ``conftest``: a command run uninterrupted and, in
a second folder with its own cache, SIGKILLed at ``KILLS`` seeded moments of the uninterrupted
run's progress, then run to the end (see ``test_kill_resume``'s docstring for the moments)."""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from neurospice.characterize.artefact import load_artefact
from neurospice.training.checkpoint import read_checkpoint

KILLS = int(os.environ.get("NEUROSPICE_KILLS", "5"))
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
        if ".tmp" not in p.name:
            check_file_whole(p)


def check_file_whole(p: Path) -> None:
    """A JSON parses (an artefact loads with its checksum), a checkpoint loads, a PNG ends with
    its IEND chunk."""
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


def _same_artefacts(ref: Path, chain: Path) -> int:
    arts = [p.relative_to(ref) for p in _files(ref) if p.suffix == ".json"
            and json.loads(p.read_text()).get("format") == "neurospice.curve"]
    assert arts
    for rel in arts:
        a, b = load_artefact(ref / rel), load_artefact(chain / rel)
        assert _normal(b, [chain]) == _normal(a, [ref]), f"{rel} differs after kills"
    return len(arts)
