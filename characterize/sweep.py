"""Sweeps as data, run in batches of points per ngspice start, cached content-addressed.

A :class:`Sweep` is plain data: named axes, corners, temperatures, Monte-Carlo
samples and a seed. A *recipe* (see :mod:`neurospice.characterize.recipes`) turns one
point into a netlist piece and a simulated plot into measurements.

Execution (:func:`run_sweep`):

* points sharing (technology, corner, temperature) are packed ``points_per_run`` to
  a netlist, so one ngspice start (one model-library parse) serves many points;
* batches run in parallel: ``workers`` local threads each driving its own ngspice
  process (processes exit after each batch: no memory growth), or a Dask cluster
  when ``scheduler`` names one (``tcp://host:port``);
* every finished point is written at once to the cache, keyed by the SHA-256 of its
  netlist text, the technology's model-file contents, the ngspice version and the
  analysis — so an identical re-run is near-instant and an interrupted run resumes
  with nothing lost;
* a batch that fails is retried point by point; a point that still fails (no
  convergence, timeout) is recorded with its reason and does not abort the sweep. Failures
  of the circuit (no convergence, a rejected netlist) are cached like results; failures of
  the run (ngspice crashed, hung past ``timeout_s``, wrote a damaged raw file, is missing:
  :data:`TRANSIENT_FAILURES`) are not, so the next run tries those points again.
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import itertools
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from neurospice.circuits.engine import ngspice_version, run_netlist
from neurospice.circuits.errors import NeurospiceError
from neurospice.circuits.technology import cache_root, get_technology

CACHE_FORMAT = 1
#: failure reasons (the error's name) that say nothing about the circuit, only about one run of
#: ngspice: recorded in the sweep's result, never cached (a re-run tries the point again)
TRANSIENT_FAILURES = ("SimulationTimeout", "SimulationError", "RawFileError", "MissingVector",
                      "NgspiceNotFound")


def transient(reason: str | None) -> bool:
    """Whether a failed point's ``reason`` is a failure of the run, not of the circuit."""
    return (reason or "").split(":", 1)[0] in TRANSIENT_FAILURES


@dataclass
class Sweep:
    """What to simulate: the cartesian product of ``axes`` × corners × temperatures × MC samples."""

    recipe: str
    axes: dict[str, list]
    technology: str = "generic"
    corners: list[str] = field(default_factory=lambda: ["tt"])
    temperatures_C: list[float] = field(default_factory=lambda: [27.0])
    mc_samples: int = 0          #: 0: nominal only; n: n mismatch samples per point
    seed: int = 1
    options: dict = field(default_factory=dict)  #: recipe options (design overrides)
    #: explicit points instead of the axes' product (adaptive searches, :func:`run_searches`);
    #: a point's own ``corner``/``temperature_C``/``seed`` override the sweep's
    point_list: list[dict] | None = None

    def __post_init__(self):
        """Every field checked before anything runs; the recipe checks its own axes."""
        from neurospice import validate as v
        from neurospice.circuits.technology import CORNERS, TECHNOLOGY_NAMES, is_model_file

        from .recipes import get_recipe
        if not is_model_file(self.technology):
            v.choice("technology", self.technology, TECHNOLOGY_NAMES + ("(the path of a model file)",))
        if not self.corners:
            raise v.ConfigError("corners: give at least one corner")
        for c in self.corners:
            v.choice("corner", c, CORNERS)
        if not self.temperatures_C:
            raise v.ConfigError("temperatures_C: give at least one temperature")
        for t in self.temperatures_C:
            v.temperature_C("temperature_C", t)
        v.whole("mc_samples", self.mc_samples, lo=0)
        v.whole("seed", self.seed, lo=0)
        if self.point_list is None:
            for name, values in self.axes.items():
                if not len(values):
                    raise v.ConfigError(f"axis {name}: no values to sweep")
        recipe = get_recipe(self.recipe)
        if hasattr(recipe, "check_axes"):
            recipe.check_axes(self.axes)

    def points(self) -> list[dict]:
        if self.point_list is not None:
            base = {"corner": self.corners[0], "temperature_C": float(self.temperatures_C[0]),
                    "mc": None, "seed": self.seed}
            return [{**base, **p} for p in self.point_list]
        names = list(self.axes)
        mcs = [None] if self.mc_samples == 0 else list(range(self.mc_samples))
        out = []
        for corner, temp, mc in itertools.product(self.corners, self.temperatures_C, mcs):
            for values in itertools.product(*(self.axes[n] for n in names)):
                p = dict(zip(names, values))
                p.update(corner=corner, temperature_C=float(temp), mc=mc, seed=self.seed)
                out.append(p)
        return out

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PointResult:
    point: dict
    key: str
    status: str                  #: 'ok' or 'failed'
    result: dict | None = None
    reason: str | None = None
    cached: bool = False


@dataclass
class SweepResult:
    sweep: Sweep
    results: list[PointResult]
    wall_s: float
    ngspice: str
    technology: dict

    @property
    def ok(self) -> list[PointResult]:
        return [r for r in self.results if r.status == "ok"]

    @property
    def failed(self) -> list[PointResult]:
        return [r for r in self.results if r.status != "ok"]

    @property
    def n_cached(self) -> int:
        return sum(r.cached for r in self.results)


# -- cache ------------------------------------------------------------------------------
class PointCache:
    """One JSON file per finished point, written atomically (tmp + rename)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else cache_root() / "points"
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The entry of ``key``, or ``None`` when there is none or it is damaged or foreign
        (such an entry is recomputed, never trusted)."""
        p = self._path(key)
        if not p.exists():
            return None
        try:
            data = json.loads(p.read_text())
        except (ValueError, OSError, RecursionError):  # bad JSON, bad UTF-8, unreadable
            return None
        if (not isinstance(data, dict) or data.get("format") != CACHE_FORMAT
                or data.get("key") != key or data.get("status") not in ("ok", "failed")
                or (data["status"] == "ok" and not isinstance(data.get("result"), dict))):
            return None
        return data

    def put(self, key: str, entry: dict) -> None:
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
        try:
            tmp.write_text(json.dumps({"format": CACHE_FORMAT, "key": key, **entry}))
            tmp.replace(p)
        finally:
            if tmp.exists():   # the write failed (full disk): leave no partial file
                tmp.unlink()


def point_key(recipe, tech, piece_text: str, analysis: str, point: dict) -> str:
    h = hashlib.sha256()
    for part in (recipe.name, str(recipe.version), piece_text, analysis, tech.fingerprint,
                 ngspice_version(), f"T={point['temperature_C']}"):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def point_tag(point: dict) -> str:
    """A short netlist-safe name for a point, independent of its position in the sweep."""
    return "p" + hashlib.sha1(json.dumps(point, sort_keys=True, default=str).encode()).hexdigest()[:10]


def hash_seed(points: list[dict]) -> int:
    """A reproducible ngspice RNG seed for a batch (from its points, seeds and MC indices)."""
    digest = hashlib.sha256(json.dumps(points, sort_keys=True, default=str).encode()).digest()
    return 1 + int.from_bytes(digest[:3], "big")


# -- batches ----------------------------------------------------------------------------
def run_batch(recipe_name: str, technology: str, corner: str, temperature_C: float,
              points: list[dict], options: dict, timeout_s: float,
              recipe_module: str | None = None) -> list[tuple[int, str, dict | str]]:
    """Simulate ``points`` (same technology/corner/temperature) in one ngspice run.

    Returns ``(index, 'ok', measurements)`` or ``(index, 'failed', reason)`` per point.
    Top-level and picklable: this is what Dask workers execute.
    """
    from .recipes import get_recipe
    recipe = get_recipe(recipe_name, recipe_module)
    mismatch = any(p.get("mc") is not None for p in points) and technology == "sky130"
    tech = get_technology(technology, corner, mismatch=mismatch)
    pieces = [recipe.build(p, point_tag(p), tech, options) for p in points]
    try:
        net = recipe.assemble(tech, pieces, temperature_C, options)
        spiceinit = tech.spiceinit
        if mismatch:  # the PDK draws per-device mismatch from ngspice's RNG: seed it per batch
            seed = hash_seed(points)
            spiceinit += f"\nset rndseed={seed}"
        sim = run_netlist(net, circuit=f"{recipe_name}[{len(points)} points]",
                          spiceinit=spiceinit, timeout_s=timeout_s)
        return [(i, "ok", recipe.measure(sim.plot, piece, p, options))
                for i, (piece, p) in enumerate(zip(pieces, points))]
    except NeurospiceError as exc:
        if len(points) == 1:
            return [(0, "failed", f"{type(exc).__name__}: {exc}")]
    out = []  # isolate the failing point(s): one run per point
    for i, p in enumerate(points):
        res = run_batch(recipe_name, technology, corner, temperature_C, [p], options, timeout_s,
                        recipe_module)
        out.append((i, res[0][1], res[0][2]))
    return out


def run_sweep(sweep: Sweep, *, workers: int = 1, scheduler: str | None = None,
              cache: PointCache | None = None, points_per_run: int = 16,
              timeout_s: float = 600.0, progress: bool = True, executor=None,
              client=None) -> SweepResult:
    """Run (or fetch from the cache) every point of ``sweep``. The batches run on ``workers``
    local threads, on a Dask cluster (``scheduler`` address, or an open ``client``), or on a
    shared ``executor`` (a :class:`concurrent.futures.Executor` several sweeps submit to)."""
    from neurospice import validate
    from .recipes import get_recipe
    t0 = time.perf_counter()
    validate.whole("workers", workers, lo=1)
    recipe = get_recipe(sweep.recipe)
    cache = cache or PointCache()
    points = sweep.points()
    results: list[PointResult | None] = [None] * len(points)
    todo: dict[tuple, list[int]] = {}
    techs = {}
    for idx, p in enumerate(points):
        ck = (p["corner"], p["temperature_C"])
        if ck not in techs:
            techs[ck] = get_technology(sweep.technology, p["corner"],
                                       mismatch=sweep.mc_samples > 0 and sweep.technology == "sky130")
        tech = techs[ck]
        piece = recipe.build(p, point_tag(p), tech, sweep.options)
        key = point_key(recipe, tech, piece.netlist_text(), recipe.analysis(piece, sweep.options), p)
        hit = cache.get(key)
        if hit is not None and hit.get("status") != "ok" and transient(hit.get("reason")):
            hit = None   # written by an older neurospice: try the point again
        if hit is not None:
            results[idx] = PointResult(p, key, hit["status"], hit.get("result"), hit.get("reason"),
                                       cached=True)
        else:
            results[idx] = PointResult(p, key, "pending")
            todo.setdefault(ck, []).append(idx)
    batches = []
    points_per_run = min(points_per_run, getattr(recipe, "points_per_run", points_per_run))
    for (corner, temp), idxs in todo.items():
        for k in range(0, len(idxs), points_per_run):
            batches.append((corner, temp, idxs[k:k + points_per_run]))
    bar = tqdm(total=len(points), initial=len(points) - sum(len(b[2]) for b in batches),
               desc=f"characterize {sweep.recipe}", unit="pt", disable=not progress)

    def finish(batch, outcome):
        _, _, idxs = batch
        for i, status, payload in outcome:
            r = results[idxs[i]]
            r.status = status
            if status == "ok":
                r.result = payload
            else:
                r.reason = payload
                if transient(payload):
                    continue
            cache.put(r.key, {"status": status, "point": r.point, "result": r.result,
                              "reason": r.reason, "technology": techs[(batch[0], batch[1])].label,
                              "ngspice": ngspice_version()})
        bar.update(len(idxs))

    args = [(sweep.recipe, sweep.technology, c, t, [points[i] for i in idxs], sweep.options,
             timeout_s, type(recipe).__module__) for c, t, idxs in batches]
    if scheduler or client:
        from distributed import Client, as_completed
        own = client is None
        client = client or Client(scheduler)
        try:
            futures = {client.submit(run_batch, *a, pure=False): b for a, b in zip(args, batches)}
            for fut in as_completed(futures):
                finish(futures[fut], fut.result())
        finally:
            if own:
                client.close()
    elif executor is not None:
        futures = {executor.submit(run_batch, *a): b for a, b in zip(args, batches)}
        for fut in cf.as_completed(futures):
            finish(futures[fut], fut.result())
    elif workers <= 1 or len(batches) <= 1:
        for a, b in zip(args, batches):
            finish(b, run_batch(*a))
    else:
        with cf.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(run_batch, *a): b for a, b in zip(args, batches)}
            for fut in cf.as_completed(futures):
                finish(futures[fut], fut.result())
    bar.close()
    tech0 = next(iter(techs.values()))
    return SweepResult(sweep=sweep, results=results, wall_s=time.perf_counter() - t0,
                       ngspice=ngspice_version(),
                       technology={"name": tech0.name, "corners": sweep.corners,
                                   "source": tech0.source, "fingerprint": tech0.fingerprint,
                                   "labels": sorted({t.label for t in techs.values()})})


def run_searches(tasks: list, template: Sweep, *, workers: int = 1, scheduler: str | None = None,
                 cache: PointCache | None = None, progress: bool = True, **run_kw) -> list:
    """Adaptive characterization through the sweep runner.

    Each task is a generator that yields a list of points and receives their results (the
    measurement dict, or ``None`` for a point that failed), until it returns its answer — a
    bisection reads like a loop. Every task advances as soon as its own points are done (no
    task waits for another), each step one sweep (``template`` with ``point_list``) whose
    batches go to one shared pool of ``workers`` threads or to the Dask cluster at
    ``scheduler``; every point is cached, so a re-run after a kill replays the finished steps
    from the cache. Returns the tasks' answers in order; a task's exception propagates.
    """
    from dataclasses import replace

    from neurospice import validate
    validate.whole("workers", workers, lo=1)
    cache = cache or PointCache()
    bar = tqdm(total=len(tasks), desc=f"characterize {template.recipe}", unit="task", disable=not progress)
    stats = {"points": 0, "cached": 0, "failed": 0}
    lock = threading.Lock()

    def drive(task, **where):
        try:
            points = list(next(task))
            while True:
                res = run_sweep(replace(template, point_list=points), cache=cache, progress=False,
                                **where, **run_kw).results
                with lock:
                    stats["points"] += len(res)
                    stats["cached"] += sum(r.cached for r in res)
                    stats["failed"] += sum(r.status != "ok" for r in res)
                points = list(task.send([r.result if r.status == "ok" else None for r in res]))
        except StopIteration as stop:
            bar.update()
            return stop.value

    try:
        if scheduler:
            from distributed import Client
            with Client(scheduler) as client, cf.ThreadPoolExecutor(max(1, len(tasks))) as drivers:
                return list(drivers.map(lambda t: drive(t, client=client), tasks)), stats
        with cf.ThreadPoolExecutor(max(1, workers)) as pool, \
                cf.ThreadPoolExecutor(max(1, len(tasks))) as drivers:
            return list(drivers.map(lambda t: drive(t, executor=pool), tasks)), stats
    finally:
        bar.close()
