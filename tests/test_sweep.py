"""Sweep runner: cache, resume, failed points, Dask cluster equals local run."""
import math
from dataclasses import dataclass

import pytest

from neurospice.characterize import memcap_recipes  # noqa: F401  (registers 'memcap')
from neurospice.characterize import recipes
from neurospice.characterize.sweep import PointCache, Sweep, run_sweep

RC_AXES = {"r_ohm": [1e3, 2e3, 4e3], "c_F": [0.5e-12, 1e-12]}
OPTS = {"tstop_s": 15e-9}


def _rc_sweep():
    return Sweep("rc", dict(RC_AXES), options=dict(OPTS))


def test_rc_sweep_matches_analytic(tmp_path):
    res = run_sweep(_rc_sweep(), cache=PointCache(tmp_path), points_per_run=4, progress=False)
    assert len(res.ok) == 6 and not res.failed
    for r in res.ok:
        assert r.result["v_at_tau_V"] == pytest.approx(1 - math.exp(-1), abs=3e-3)
        assert r.result["v_at_3tau_V"] == pytest.approx(1 - math.exp(-3), abs=3e-3)


def test_second_run_is_all_cached_and_identical(tmp_path):
    cache = PointCache(tmp_path)
    a = run_sweep(_rc_sweep(), cache=cache, progress=False)
    b = run_sweep(_rc_sweep(), cache=cache, progress=False)
    assert a.n_cached == 0 and b.n_cached == 6
    assert [r.result for r in a.results] == [r.result for r in b.results]


def test_efficiency_of_uncached_and_cached_sweeps(tmp_path):
    """Σ ngspice analysis time / (wall × workers): a fraction for a sweep that ran (never
    asserted on speed beyond plausibility), None when every point came from the cache."""
    cache = PointCache(tmp_path)
    a = run_sweep(_rc_sweep(), cache=cache, points_per_run=6, progress=False)
    assert a.n_cached == 0 and a.workers == 1 and a.timing["runs"] == a.timing["timed_runs"] == 1
    assert a.analysis_s > 0 and 0 < a.efficiency <= 1.5
    assert a.timing["analysis_s"] <= a.timing["ngspice_s"] <= a.timing["run_s"] <= a.wall_s
    speed = a.speed()
    assert speed["efficiency"] == pytest.approx(a.efficiency, abs=1e-3) and speed["worker_s"] > 0
    b = run_sweep(_rc_sweep(), cache=cache, points_per_run=6, progress=False)
    assert b.n_cached == 6 and b.efficiency is None and b.analysis_s == 0 and b.workers == 0
    assert b.speed() == {"analysis_s": 0.0, "worker_s": 0.0, "efficiency": None}


def test_run_batch_returns_its_analysis_time():
    """What Dask workers run: the per-point outcomes and the time of the ngspice runs made."""
    from neurospice.characterize.sweep import run_batch
    points = [dict(p, corner="tt", temperature_C=27.0, mc=None, seed=1)
              for p in _rc_sweep().points()[:2]]
    outcomes, timing = run_batch("rc", "generic", "tt", 27.0, points, dict(OPTS), 60.0)
    assert [o[:2] for o in outcomes] == [(0, "ok"), (1, "ok")]
    assert timing["runs"] == timing["timed_runs"] == 1 and timing["analysis_s"] > 0


def test_interrupted_run_resumes_without_loss(tmp_path):
    cache = PointCache(tmp_path)
    part = Sweep("rc", {"r_ohm": RC_AXES["r_ohm"][:2], "c_F": RC_AXES["c_F"]}, options=dict(OPTS))
    run_sweep(part, cache=cache, progress=False)  # the part finished before the 'kill'
    full = run_sweep(_rc_sweep(), cache=cache, progress=False)
    assert full.n_cached == 4 and len(full.ok) == 6


def test_damaged_cache_entry_is_recomputed(tmp_path):
    cache = PointCache(tmp_path)
    run_sweep(_rc_sweep(), cache=cache, progress=False)
    victim = next(tmp_path.rglob("*.json"))
    victim.write_text("{ truncated")
    again = run_sweep(_rc_sweep(), cache=cache, progress=False)
    assert again.n_cached == 5 and len(again.ok) == 6


@dataclass
class _FightingRC(recipes.RCRecipe):
    """RC recipe whose points with r_ohm == 666 contain two fighting sources."""

    name: str = "rc_fight"

    def build(self, point, tag, tech, options):
        piece = super().build(point, tag, tech, options)
        if point["r_ohm"] == 666:
            piece.text += f"\nVa_{tag} {tag}_out 0 1\nVb_{tag} {tag}_out 0 2"
        return piece


def test_failed_point_is_recorded_and_does_not_abort(tmp_path, monkeypatch):
    monkeypatch.setitem(recipes._RECIPES, "rc_fight", _FightingRC())
    sw = Sweep("rc_fight", {"r_ohm": [1e3, 666, 2e3], "c_F": [1e-12]}, options=dict(OPTS))
    res = run_sweep(sw, cache=PointCache(tmp_path), points_per_run=8, progress=False)
    assert len(res.ok) == 2 and len(res.failed) == 1
    bad = res.failed[0]
    assert bad.point["r_ohm"] == 666 and "ConvergenceError" in bad.reason


def test_parallel_workers_equal_serial(tmp_path):
    serial = run_sweep(_rc_sweep(), cache=PointCache(tmp_path / "a"), points_per_run=1,
                       progress=False)
    parallel = run_sweep(_rc_sweep(), cache=PointCache(tmp_path / "b"), points_per_run=1,
                         workers=2, progress=False)
    assert [r.result for r in serial.results] == [r.result for r in parallel.results]


def test_dask_local_cluster_equals_local(tmp_path):
    distributed = pytest.importorskip("distributed")
    sw = Sweep("memcap", {"c_active_fF": [20.0, 80.0, 200.0], "v_mem0_V": [0.0, 0.3],
                          "fan_in": [8]})
    local = run_sweep(sw, cache=PointCache(tmp_path / "local"), points_per_run=3, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = run_sweep(sw, cache=PointCache(tmp_path / "dask"), points_per_run=3,
                           scheduler=cluster.scheduler_address, progress=False)
    assert remote.n_cached == 0 and len(remote.ok) == 6
    assert [r.result for r in local.results] == [r.result for r in remote.results]
