"""A full disk (issue 21), simulated without root: every file opened for writing under the test's
folder goes through a disk with room for ``N`` files (the next one is cut short — half its
bytes — and fails with ``ENOSPC``, as does every later one, until space is freed). For
``characterize custom --quick`` and ``train custom``, the disk fills at several moments (cache
entries, the artefact, the plot, a checkpoint, the metrics); each time the command ends within
its run with exit code 2 and a ``WriteError`` naming the file it could not write; the file's
previous version (a planted one where there was none) is untouched; no temporary file is left,
every JSON parses, every artefact and checkpoint loads. Once space is freed the same command
completes, and its results equal those of a run that never met a full disk. The writers under
test: ``neurospice.files.atomic_write*`` (metrics, artefacts through ``save_artefact``, plots,
checkpoints through ``save_checkpoint``) and ``PointCache.put``."""
import builtins
import errno
import io
import json
import os
import re
from pathlib import Path

import pytest

from kill_harness import _normal, check_file_whole
from neurospice.characterize.artefact import load_artefact
from neurospice.cli import main
from neurospice.files import WriteError, atomic_write_text
from neurospice.training.checkpoint import read_checkpoint, save_checkpoint

AXON = Path(__file__).resolve().parents[1] / "netlists" / "axon_hillock.toml"
_open = builtins.open
PLANTED = b"previous version"


def destination(path: Path) -> Path:
    """The file a temporary (``.NAME.tmp…``) is written for; ``path`` itself otherwise."""
    return path.with_name(path.name[1:].split(".tmp")[0]) if ".tmp" in path.name else path


class Disk:
    """A disk under ``root`` that fills once ``room`` more files are written, or at the
    ``nth`` write of a file named ``at`` (``None``: never); each file opened for writing (``w``,
    ``a``, ``x``, ``+``) counts one. ``written`` and ``refused`` list the files, in order;
    ``before`` holds, for each refused temporary, what its destination held at that moment."""

    def __init__(self, root: Path, room=None, at=None, nth=1, code=errno.ENOSPC):
        self.root, self.room, self.at, self.nth, self.code = str(root), room, at, nth, code
        self.written, self.refused, self.before = [], [], {}

    def open(self, file, mode="r", *args, **kw):
        f = _open(file, mode, *args, **kw)
        if isinstance(file, int) or not any(c in mode for c in "wax+") \
                or not os.path.abspath(os.fspath(file)).startswith(self.root):
            return f
        path = Path(os.fspath(file))
        if destination(path).name == self.at:
            self.nth -= 1
        full = bool(self.refused) or (self.room is not None and len(self.written) >= self.room) \
            or (self.at is not None and self.nth <= 0)
        (self.refused if full else self.written).append(path)
        dest = destination(path)
        if full and dest != path and dest not in self.before:
            self.before[dest] = dest.read_bytes() if dest.exists() else None
        return _Full(f, self.code) if full else f


class _Full:
    """A file on a full disk: the first write stores half its data, then fails."""

    def __init__(self, f, code):
        self._f, self._code = f, code

    def write(self, data):
        self._f.write(data[:len(data) // 2])
        self._f.flush()
        raise OSError(self._code, os.strerror(self._code))

    def fileno(self):                    # no file descriptor: writers go through write()
        raise io.UnsupportedOperation("fileno")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


@pytest.fixture
def disk(monkeypatch, tmp_path):
    """``disk(room=None, at=None, nth=1)``: from now on the disk under ``tmp_path`` is a
    :class:`Disk`."""
    def fill(room=None, at=None, nth=1, code=errno.ENOSPC):
        d = Disk(tmp_path, room, at, nth, code)
        monkeypatch.setattr(builtins, "open", d.open)
        monkeypatch.setattr(io, "open", d.open)
        return d
    return fill


def _run(args, capsys) -> tuple[int, dict]:
    code = main([*args, "--json"])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def check_consistent(root: Path) -> None:
    """No temporary file; every JSON parses, every artefact and checkpoint loads, every PNG is
    whole (but a planted previous version)."""
    files = [p for p in root.rglob("*") if p.is_file()]
    assert not [p for p in files if ".tmp" in p.name], [p for p in files if ".tmp" in p.name]
    for p in files:
        if p.read_bytes() != PLANTED:
            check_file_whole(p)


def check_refused(code, err, disk, what: str) -> Path:
    """The run ended with the named error, naming a file the full disk refused (``what`` in its
    path), and every refused file's previous version is untouched (no file where there was
    none). Returns the file named."""
    assert code == 2 and err["error"] == "WriteError", err
    assert disk.refused, "the disk never filled"
    m = re.match(r"cannot write (.+?): (No space left on device|Permission denied) \(", err["message"])
    assert m, err["message"]
    named = Path(m.group(1))
    assert named in {destination(p) for p in disk.refused} and what in str(named), (what, named)
    assert named in disk.before, f"{named} was written directly, not through a temporary"
    for dest, old in disk.before.items():
        if old is None:
            assert not dest.exists(), f"{dest}: half a file where there was none"
        else:
            assert dest.read_bytes() == old, f"{dest}: the previous version changed"
    return named


# ------------------------------------------------------------------------ the low level

def test_atomic_write_on_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, disk):
    target = tmp_path / "a" / "metrics.json"
    atomic_write_text(target, '{"old": 1}')
    disk(room=0)
    with pytest.raises(WriteError, match=r"cannot write .*/a/metrics\.json: No space left on device "
                                         r"\(the disk is full: free some space"):
        atomic_write_text(target, '{"new": 2}' * 1000)
    assert target.read_text() == '{"old": 1}'
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]
    disk(room=None)
    atomic_write_text(target, '{"new": 2}')
    assert json.loads(target.read_text()) == {"new": 2}


def test_checkpoint_on_a_full_disk(tmp_path, disk):
    """``torch.save`` goes through the same write (torch's own file writer would report a full
    disk as a ``RuntimeError`` without the file's name)."""
    import torch
    path = tmp_path / "last.pt"
    save_checkpoint(path, "custom", config={}, state={"w": torch.ones(3)}, epoch=1)
    disk(room=0, code=errno.EACCES)
    with pytest.raises(WriteError, match=r"last\.pt: Permission denied \(no permission"):
        save_checkpoint(path, "custom", config={}, state={"w": torch.zeros(3)}, epoch=2)
    assert read_checkpoint(path)["epoch"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


# ------------------------------------------------------------------------ characterize

@pytest.fixture(scope="module")
def custom_reference(tmp_path_factory):
    """``characterize custom --quick`` on an unlimited disk: its summary, artefact and how many
    files it writes."""
    root = tmp_path_factory.mktemp("disk_ref")
    old = os.environ.get("NEUROSPICE_CACHE")
    os.environ["NEUROSPICE_CACHE"] = str(root / "cache")
    d = Disk(root)
    try:
        builtins.open = io.open = d.open
        assert main(_characterize(root) + ["--json"]) == 0
    finally:
        builtins.open = io.open = _open
        if old is None:
            os.environ.pop("NEUROSPICE_CACHE")
        else:
            os.environ["NEUROSPICE_CACHE"] = old
    art = root / "out" / "custom" / "axon_hillock" / "custom.json"
    return {"root": root, "writes": len(d.written), "artefact": load_artefact(art)}


def _characterize(root):
    return ["characterize", "custom", "--neuron", str(AXON), "--quick", "--workers", "2",
            "--out", str(root / "out")]


def test_characterize_on_a_full_disk(custom_reference, tmp_path, disk, monkeypatch, capsys):
    monkeypatch.setenv("NEUROSPICE_CACHE", str(tmp_path / "cache"))
    points = custom_reference["writes"] - 2                    # cache entries, then artefact, plot
    assert points > 300

    def cached():
        return len(list((tmp_path / "cache").rglob("*.json")))
    # the disk fills while cache entries are written: at the first, then (space freed and
    # filled again) a third of the way; the cache keeps exactly the entries written
    for room in (0, points // 3):
        d = disk(room)
        code, err = _run(_characterize(tmp_path), capsys)
        check_refused(code, err, d, "/cache/points/")
        check_consistent(tmp_path)
        assert cached() == room
    # the artefact, then the plot, meet the full disk; a previous version (planted) of each
    # stays as it was
    art = tmp_path / "out" / "custom" / "axon_hillock" / "custom.json"
    png = art.with_suffix(".png")
    disk(None)
    art.parent.mkdir(parents=True)
    art.write_bytes(PLANTED)
    png.write_bytes(PLANTED)
    for what in ("custom.json", "custom.png"):
        d = disk(at=what)
        code, err = _run(_characterize(tmp_path), capsys)
        assert check_refused(code, err, d, what) == (art if what == "custom.json" else png)
        assert d.before[art if what == "custom.json" else png] == PLANTED
        check_consistent(tmp_path)
        assert cached() == points
    assert art.read_bytes() != PLANTED and png.read_bytes() == PLANTED   # the artefact went in
    # space freed: the same command completes, with the numbers of a run on an empty disk
    disk(None)
    code, summary = _run(_characterize(tmp_path), capsys)
    assert code == 0, summary
    check_consistent(tmp_path)
    assert png.read_bytes()[-8:-4] == b"IEND"
    assert _normal(load_artefact(art), [tmp_path]) == _normal(custom_reference["artefact"],
                                                              [custom_reference["root"]])


# ------------------------------------------------------------------------ train

def _train(artefact, out):
    return ["train", "custom", "--artefact", str(artefact), "--epochs", "3", "--hidden", "8",
            "--limit", "200", "--current-sigma", "0.1", "--out", str(out)]


def test_train_on_a_full_disk(custom_reference, tmp_path, disk, capsys):
    """Training meets a full disk at its first checkpoint, at the second epoch's ``last.pt``, at
    the metrics and at the plot; each re-run resumes, and the end equals an uninterrupted run's."""
    import torch
    artefact = custom_reference["root"] / "out" / "custom" / "axon_hillock" / "custom.json"
    ref = tmp_path / "ref"
    disk(None)
    code, ref_summary = _run(_train(artefact, ref), capsys)
    assert code == 0, ref_summary
    out = tmp_path / "run"
    # (the file, its how-many-th write in the run, the epoch last.pt holds after)
    for what, nth, epoch in (("checkpoint.pt", 1, None), ("last.pt", 2, 1), ("metrics.json", 1, 3),
                             ("training.png", 1, 3)):
        d = disk(at=what, nth=nth)
        code, err = _run(_train(artefact, out), capsys)
        assert check_refused(code, err, d, what) == out / what
        check_consistent(tmp_path)
        if epoch is None:
            assert not out.exists() or not list(out.iterdir())
        else:
            assert read_checkpoint(out / "last.pt")["epoch"] == epoch
    disk(None)
    code, summary = _run(_train(artefact, out), capsys)
    assert code == 0, summary
    check_consistent(tmp_path)
    assert _normal(summary, [out]) == _normal(ref_summary, [ref])
    assert _normal(json.loads((out / "metrics.json").read_text()), [out]) == \
        _normal(json.loads((ref / "metrics.json").read_text()), [ref])
    for name in ("checkpoint.pt", "last.pt"):
        a, b = read_checkpoint(ref / name), read_checkpoint(out / name)
        assert a["epoch"] == b["epoch"]
        assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])
