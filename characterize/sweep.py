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
  with nothing lost. Batches are cut from all of a sweep's points, cached or not, and a batch
  with any point missing from the cache runs whole (its cached points keep their cached
  numbers): the points of one ngspice run share its time steps, so a point's last digits
  depend on its batch, and a resumed sweep simulates each missing point in the batch an
  uninterrupted run would have, ending with the same numbers;
* a batch that fails is retried point by point; a point that still fails (no
  convergence, timeout) is recorded with its reason and does not abort the sweep. Failures
  of the circuit (no convergence, a rejected netlist) are cached like results; failures of
  the run (ngspice crashed, hung past ``timeout_s``, wrote a damaged raw file, is missing:
  :data:`TRANSIENT_FAILURES`) are not, so the next run tries those points again.

Where the time goes: every ngspice run reports its own analysis time (see
:mod:`neurospice.circuits.engine`); :func:`run_batch` returns their sum with its points, and
:attr:`SweepResult.efficiency` is ``Σ analysis time / (wall × workers)`` — how close the runner
came to ngspice's own speed (start-up, model parsing, raw-file reading and Python are the rest).
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import itertools
import json
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


#: the time keys :func:`run_batch` returns (seconds, summed over its ngspice runs) and ``runs``
TIMING_KEYS = ("analysis_s", "ngspice_s", "run_s", "read_s", "python_s")


def _timing() -> dict:
    return {**{k: 0.0 for k in TIMING_KEYS}, "runs": 0, "timed_runs": 0}


def _add_timing(into: dict, more: dict) -> dict:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v
    return into


@dataclass
class SweepResult:
    sweep: Sweep
    results: list[PointResult]
    wall_s: float
    ngspice: str
    technology: dict
    #: ngspice's own "Total analysis time", summed over every run this sweep made (0 if none ran)
    analysis_s: float = 0.0
    #: parallel slots the batches ran on (workers, Dask threads or a shared pool's size), at most
    #: one per batch; 0 when every point came from the cache
    workers: int = 0
    #: where the non-cached work's time went, summed over the runs: ``analysis_s`` (ngspice's
    #: analyses), ``ngspice_s`` (ngspice start to statistics: + start-up and parsing), ``run_s``
    #: (the ngspice processes seen from Python: + process start/exit), ``read_s`` (raw files
    #: into numpy), ``python_s`` (the batches' Python: build, assemble, measure); ``runs``,
    #: ``timed_runs`` (runs whose log carried the analysis time)
    timing: dict = field(default_factory=_timing)

    @property
    def worker_s(self) -> float:
        """``wall × workers``, the worker time the sweep held; 0 when nothing ran (every point
        cached) or no run reported its analysis time."""
        if not self.workers or not self.timing.get("timed_runs"):
            return 0.0
        return self.wall_s * self.workers

    @property
    def efficiency(self) -> float | None:
        """``Σ analysis time / (wall × workers)``: the share of the sweep's worker time that
        ngspice spent in its analyses; None when nothing ran (every point cached) or no run
        reported its analysis time."""
        return self.analysis_s / self.worker_s if self.worker_s > 0 else None

    def speed(self) -> dict:
        """The summary keys of a sweep-running command: ``analysis_s``, ``worker_s``,
        ``efficiency`` (see :func:`speed`)."""
        return speed(self.analysis_s, self.worker_s)

    @property
    def ok(self) -> list[PointResult]:
        return [r for r in self.results if r.status == "ok"]

    @property
    def failed(self) -> list[PointResult]:
        return [r for r in self.results if r.status != "ok"]

    @property
    def n_cached(self) -> int:
        return sum(r.cached for r in self.results)


def speed(analysis_s: float, worker_s: float) -> dict:
    """Summary keys for sweeps: ``analysis_s`` (ngspice's own analysis time, summed),
    ``worker_s`` (wall × workers of the sweeps that ran) and ``efficiency`` (their ratio; None
    when nothing ran). Sum both over several sweeps before calling it."""
    return {"analysis_s": round(analysis_s, 3), "worker_s": round(worker_s, 3),
            "efficiency": round(analysis_s / worker_s, 3) if worker_s > 0 else None}


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
        """Write ``key``'s entry atomically; a failed write (full disk) raises
        :class:`~neurospice.files.WriteError` naming the entry and leaves no partial file; the
        temporaries a killed run left in the entry's folder are removed."""
        from neurospice.files import atomic_write_text
        atomic_write_text(self._path(key), json.dumps({"format": CACHE_FORMAT, "key": key, **entry}))


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
              recipe_module: str | None = None
              ) -> tuple[list[tuple[int, str, dict | str]], dict]:
    """Simulate ``points`` (same technology/corner/temperature) in one ngspice run.

    Returns ``(outcomes, timing)``: ``(index, 'ok', measurements)`` or ``(index, 'failed',
    reason)`` per point, and where the time went (:data:`TIMING_KEYS`, summed over every ngspice
    run the batch made — a failed batch's runs and its point-by-point retries included; a run
    that failed counts in ``run_s``, never in ``analysis_s``).
    Top-level and picklable: this is what Dask workers execute.
    """
    from .recipes import get_recipe
    t_start = time.perf_counter()
    timing = _timing()
    recipe = get_recipe(recipe_name, recipe_module)
    mismatch = any(p.get("mc") is not None for p in points) and technology == "sky130"
    tech = get_technology(technology, corner, mismatch=mismatch)
    pieces = [recipe.build(p, point_tag(p), tech, options) for p in points]
    t_run = None
    try:
        net = recipe.assemble(tech, pieces, temperature_C, options)
        spiceinit = tech.spiceinit
        if mismatch:  # the PDK draws per-device mismatch from ngspice's RNG: seed it per batch
            seed = hash_seed(points)
            spiceinit += f"\nset rndseed={seed}"
        t_run = time.perf_counter()
        timing["runs"] += 1
        sim = run_netlist(net, circuit=f"{recipe_name}[{len(points)} points]",
                          spiceinit=spiceinit, timeout_s=timeout_s)
        timing["run_s"] += time.perf_counter() - t_run - sim.read_s
        t_run = None
        timing["read_s"] += sim.read_s
        if sim.analysis_s is not None:
            timing["analysis_s"] += sim.analysis_s
            timing["ngspice_s"] += sim.ngspice_s if sim.ngspice_s is not None else sim.wall_s
            timing["timed_runs"] += 1
        out = [(i, "ok", recipe.measure(sim.plot, piece, p, options))
               for i, (piece, p) in enumerate(zip(pieces, points))]
        timing["python_s"] += time.perf_counter() - t_start - timing["run_s"] - timing["read_s"]
        return out, timing
    except NeurospiceError as exc:
        if t_run is not None:   # the run itself failed
            timing["run_s"] += time.perf_counter() - t_run
        if len(points) == 1:
            timing["python_s"] += max(0.0, time.perf_counter() - t_start - timing["run_s"]
                                      - timing["read_s"])
            return [(0, "failed", f"{type(exc).__name__}: {exc}")], timing
    timing["python_s"] += max(0.0, time.perf_counter() - t_start - timing["run_s"] - timing["read_s"])
    out = []  # isolate the failing point(s): one run per point
    for i, p in enumerate(points):
        res, more = run_batch(recipe_name, technology, corner, temperature_C, [p], options,
                              timeout_s, recipe_module)
        _add_timing(timing, more)
        out.append((i, res[0][1], res[0][2]))
    return out, timing


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
    # The batches are cut from every point, cached or not, and one with any point not cached
    # runs whole (its cached points keep their cached numbers): a point's numbers depend on the
    # points sharing its ngspice run (one time step for all), so a resumed sweep simulates each
    # missing point beside the points an uninterrupted run simulates it with, and ends with
    # the same numbers.
    batches = []
    points_per_run = min(points_per_run, getattr(recipe, "points_per_run", points_per_run))
    for (corner, temp), idxs in todo.items():
        for k in range(0, len(idxs), points_per_run):
            if not all(results[i].cached for i in idxs[k:k + points_per_run]):
                batches.append((corner, temp, idxs[k:k + points_per_run]))
    bar = tqdm(total=len(points), initial=sum(r.cached for r in results),
               desc=f"characterize {sweep.recipe}", unit="pt", disable=not progress)

    timing = _timing()

    def finish(batch, returned):
        outcome, batch_timing = returned
        _add_timing(timing, batch_timing)
        _, _, idxs = batch
        for i, status, payload in outcome:
            r = results[idxs[i]]
            if r.cached:          # simulated beside the others only
                continue
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
        bar.update(sum(not results[i].cached for i in idxs))

    args = [(sweep.recipe, sweep.technology, c, t, [points[i] for i in idxs], sweep.options,
             timeout_s, type(recipe).__module__) for c, t, idxs in batches]
    # each finished future is dropped once its batch is in ``results`` (``futures.pop``): a long
    # sweep does not keep every batch's outcome twice
    slots = workers
    if scheduler or client:
        from distributed import Client, as_completed
        own = client is None
        client = client or Client(scheduler)
        try:
            slots = sum(client.nthreads().values()) or 1
            futures = {client.submit(run_batch, *a, pure=False): b for a, b in zip(args, batches)}
            for fut in as_completed(futures):
                finish(futures.pop(fut), fut.result())
        finally:
            if own:
                client.close()
    elif executor is not None:
        slots = getattr(executor, "_max_workers", workers)
        futures = {executor.submit(run_batch, *a): b for a, b in zip(args, batches)}
        for fut in cf.as_completed(futures):
            finish(futures.pop(fut), fut.result())
    elif workers <= 1 or len(batches) <= 1:
        for a, b in zip(args, batches):
            finish(b, run_batch(*a))
    else:
        with cf.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(run_batch, *a): b for a, b in zip(args, batches)}
            for fut in cf.as_completed(futures):
                finish(futures.pop(fut), fut.result())
    bar.close()
    tech0 = next(iter(techs.values()))
    return SweepResult(sweep=sweep, results=results, wall_s=time.perf_counter() - t0,
                       ngspice=ngspice_version(),
                       technology={"name": tech0.name, "corners": sweep.corners,
                                   "source": tech0.source, "fingerprint": tech0.fingerprint,
                                   "labels": sorted({t.label for t in techs.values()})},
                       analysis_s=timing["analysis_s"], workers=min(slots, len(batches)),
                       timing=timing)


def run_searches(tasks: list, template: Sweep, *, workers: int = 1, scheduler: str | None = None,
                 cache: PointCache | None = None, progress: bool = True, **run_kw) -> list:
    """Adaptive characterization through the sweep runner.

    Each task is a generator that yields a list of points and receives their results (the
    measurement dict, or ``None`` for a point that failed), until it returns its answer — a
    bisection reads like a loop. Every task advances as soon as its own points are done (no
    task waits for another), each step one sweep (``template`` with ``point_list``) whose
    batches go to one shared pool of ``workers`` threads or to the Dask cluster at
    ``scheduler``; every point is cached, so a re-run after a kill replays the finished steps
    from the cache. Returns the tasks' answers in order and the stats (``points``, ``cached``,
    ``failed`` and :func:`speed`'s keys over the whole search); a task's exception propagates.
    """
    from dataclasses import replace

    from neurospice import validate
    validate.whole("workers", workers, lo=1)
    cache = cache or PointCache()
    bar = tqdm(total=len(tasks), desc=f"characterize {template.recipe}", unit="task", disable=not progress)
    stats = {"points": 0, "cached": 0, "failed": 0}
    timed = {"analysis_s": 0.0, "timed_runs": 0}
    lock = threading.Lock()
    t0 = time.perf_counter()

    def drive(task, **where):
        try:
            points = list(next(task))
            while True:
                sweep = run_sweep(replace(template, point_list=points), cache=cache, progress=False,
                                  **where, **run_kw)
                res = sweep.results
                with lock:
                    stats["points"] += len(res)
                    stats["cached"] += sum(r.cached for r in res)
                    stats["failed"] += sum(r.status != "ok" for r in res)
                    timed["analysis_s"] += sweep.analysis_s
                    timed["timed_runs"] += sweep.timing.get("timed_runs", 0)
                points = list(task.send([r.result if r.status == "ok" else None for r in res]))
        except StopIteration as stop:
            bar.update()
            return stop.value

    def done(answers, slots):
        # the tasks share one pool: efficiency over the whole search (wall × the pool's slots)
        worker_s = (time.perf_counter() - t0) * slots if timed["timed_runs"] else 0.0
        stats.update(speed(timed["analysis_s"], worker_s))
        return answers, stats

    try:
        if scheduler:
            from distributed import Client
            with Client(scheduler) as client, cf.ThreadPoolExecutor(max(1, len(tasks))) as drivers:
                answers = list(drivers.map(lambda t: drive(t, client=client), tasks))
                return done(answers, sum(client.nthreads().values()) or 1)
        with cf.ThreadPoolExecutor(max(1, workers)) as pool, \
                cf.ThreadPoolExecutor(max(1, len(tasks))) as drivers:
            answers = list(drivers.map(lambda t: drive(t, executor=pool), tasks))
        return done(answers, max(1, workers))
    finally:
        bar.close()
