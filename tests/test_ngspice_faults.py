"""ngspice faults and a shared cache (issue 21): an ngspice that crashes, hangs, prints garbage
or writes a damaged, empty or foreign raw file, put in place through ``NEUROSPICE_NGSPICE``,
gives a named error from ``run_netlist`` and costs a sweep only the points it hit, each recorded
with its reason and none cached, so the next run with a sound ngspice completes them. Two
processes running one sweep into one cache folder both finish with the right results and leave
the cache whole."""
import json
import math
import os
import random
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from neurospice.characterize.sweep import PointCache, Sweep, run_sweep
from neurospice.circuits.engine import ngspice_version, run_netlist
from neurospice.circuits.errors import (NetlistError, NeurospiceError, RawFileError,
                                        SimulationError, SimulationTimeout)

REAL = shutil.which("ngspice")
pytestmark = pytest.mark.skipif(REAL is None, reason="ngspice not installed")

RC = "* rc\nV1 in 0 PWL(0 0 1p 1)\nR1 in out 1k\nC1 out 0 1p\n.tran 10p 5n\n.end\n"
AXES = {"r_ohm": [1e3, 2e3], "c_F": [1e-12]}
OPTS = {"tstop_s": 8e-9, "tstep_s": 10e-12}
V_TAU = 1 - math.exp(-1)      # the RC step response at t = RC, for a 1 V step


def wrapper(tmp_path, name: str, body: str) -> Path:
    """An executable standing in for ngspice: ``--version`` answered by the real one (so cache
    keys are those of a sound run), anything else by ``body`` (``$3`` is the raw file, ``$4``
    the netlist; ``REAL`` runs the real ngspice)."""
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\nREAL={REAL}\n"
                    'if [ "$1" = "--version" ]; then exec "$REAL" "$@"; fi\n'
                    + textwrap.dedent(body))
    path.chmod(0o755)
    return path


@pytest.fixture
def use(monkeypatch):
    """``use(path)``: ngspice is ``path`` for the rest of the test."""
    return lambda path: monkeypatch.setenv("NEUROSPICE_NGSPICE", str(path))


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")   # killed; its reaper may not have collected it yet


# ------------------------------------------------------------------------ run_netlist

@pytest.mark.parametrize("how", ["kill -SEGV $$", "exit 139"])
def test_crash_is_a_simulation_error(tmp_path, use, how):
    use(wrapper(tmp_path, "crash", f"echo 'ngspice is about to fall over'\n{how}\n"))
    with pytest.raises(SimulationError, match=r"ngspice crashed \(signal 11\) on circuit 'rc-crash'"):
        run_netlist(RC, circuit="rc-crash")


def test_hang_times_out_and_leaves_no_process(tmp_path, use):
    pidfile = tmp_path / "child.pid"
    use(wrapper(tmp_path, "hang", f"""\
        sleep 60 &
        echo $! > {pidfile}
        wait
        """))
    t0 = time.monotonic()
    with pytest.raises(SimulationTimeout, match="'rc-hang' exceeded 2 s"):
        run_netlist(RC, circuit="rc-hang", timeout_s=2)
    assert time.monotonic() - t0 < 6
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child), f"ngspice's child {child} outlived the timeout"


def test_garbage_output_and_raw_file(tmp_path, use):
    junk = tmp_path / "junk.bin"
    rng = random.Random(21)
    junk.write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    use(wrapper(tmp_path, "garbage", f"""\
        printf '\\001\\377 ~~ %%%% garbage ~~\\n'
        head -c 2000 /dev/zero | tr '\\0' 'x'
        cat {junk} > "$3"
        """))
    with pytest.raises(RawFileError, match="damaged raw file for circuit 'rc-garbage'"):
        run_netlist(RC, circuit="rc-garbage")


def test_raw_file_with_a_plausible_but_cut_header(tmp_path, use):
    use(wrapper(tmp_path, "cut", """\
        "$REAL" "$@" > /dev/null 2>&1
        head -c 300 "$3" > "$3.cut" && mv "$3.cut" "$3"
        """))
    with pytest.raises(RawFileError, match="'rc-cut'.*truncated binary data"):
        run_netlist(RC, circuit="rc-cut")


def test_empty_raw_file_is_named(tmp_path, use):
    use(wrapper(tmp_path, "empty", ': > "$3"\n'))
    with pytest.raises(NetlistError, match="'rc-empty'.*wrote no results"):
        run_netlist(RC, circuit="rc-empty")


def test_version_of_each_executable(tmp_path, use):
    """``ngspice_version`` asks each executable once: a wrapper that is not ngspice says so
    (the version is part of every cache key), one that hangs on ``--version`` is named."""
    real = ngspice_version()
    assert real.startswith("ngspice-") and real != "ngspice-unknown"
    use(wrapper(tmp_path, "sound", 'exec "$REAL" "$@"\n'))
    assert ngspice_version() == real
    other = tmp_path / "other"
    other.write_text("#!/bin/sh\necho 'not a simulator'\n")
    other.chmod(0o755)
    use(other)
    assert ngspice_version() == "ngspice-unknown"
    not_runnable = tmp_path / "not-runnable"
    not_runnable.write_text("no shebang, no binary")
    not_runnable.chmod(0o755)
    use(not_runnable)
    with pytest.raises(NeurospiceError, match="not-runnable"):
        ngspice_version()


# ------------------------------------------------------------------------ through a sweep

def _sweep():
    return Sweep(recipe="rc", axes={k: list(v) for k, v in AXES.items()}, options=dict(OPTS))


def _check_analytic(results):
    for r in results:
        assert r.status == "ok", r.reason
        assert r.result["v_at_tau_V"] == pytest.approx(V_TAU, rel=0.02)


def test_crashing_ngspice_costs_points_not_the_sweep_and_a_rerun_completes(tmp_path, use):
    cache = PointCache(tmp_path / "cache")
    use(wrapper(tmp_path, "crash", "kill -SEGV $$\n"))
    bad = run_sweep(_sweep(), cache=cache, progress=False)
    assert len(bad.failed) == 2 and not bad.ok
    assert all(r.reason.startswith("SimulationError: ngspice crashed (signal 11)") for r in bad.failed)
    assert not list(cache.root.rglob("*.json")), "a crash was cached as the circuit's result"
    use(REAL)
    good = run_sweep(_sweep(), cache=cache, progress=False)
    assert good.n_cached == 0
    _check_analytic(good.results)
    again = run_sweep(_sweep(), cache=cache, progress=False)
    assert again.n_cached == 2 and [r.result for r in again.results] == [r.result for r in good.results]


def test_ngspice_failing_on_cue_costs_that_point_only(tmp_path, use):
    """One point's netlist (R = 2 kΩ) hangs ngspice, then crashes it: the batch is retried point
    by point, the other point is simulated, the bad one is recorded with its reason."""
    cue = "if grep -q ' 2000$' \"$4\"; then {}; fi\nexec \"$REAL\" \"$@\"\n"
    cache = PointCache(tmp_path / "cache")
    use(wrapper(tmp_path, "hang-on-cue", cue.format("sleep 30")))
    t0 = time.monotonic()
    res = run_sweep(_sweep(), cache=cache, progress=False, timeout_s=1.5)
    assert time.monotonic() - t0 < 15
    ok, failed = res.ok, res.failed
    assert [r.point["r_ohm"] for r in ok] == [1e3] and [r.point["r_ohm"] for r in failed] == [2e3]
    assert failed[0].reason.startswith("SimulationTimeout:") and "exceeded 1.5 s" in failed[0].reason
    _check_analytic(ok)
    use(wrapper(tmp_path, "crash-on-cue", cue.format("kill -SEGV $$")))
    res = run_sweep(_sweep(), cache=cache, progress=False)
    assert res.n_cached == 1 and "SimulationError" in res.failed[0].reason
    use(REAL)
    res = run_sweep(_sweep(), cache=cache, progress=False)
    assert res.n_cached == 1 and not res.failed
    _check_analytic(res.results)


def test_foreign_raw_file_fails_points_not_the_sweep(tmp_path, use):
    """A raw file of another circuit (the vectors the recipe reads are not in it) is a failed
    point naming the missing vector, not a ``KeyError`` out of ``run_sweep``."""
    other = tmp_path / "other.cir"
    other.write_text(RC)
    use(wrapper(tmp_path, "foreign", f'"$REAL" -b -r "$3" {other} > /dev/null 2>&1\n'))
    res = run_sweep(_sweep(), cache=PointCache(tmp_path / "cache"), progress=False)
    assert len(res.failed) == 2
    assert all(r.reason.startswith("MissingVector: vector 'v(p") for r in res.failed)


# ------------------------------------------------------------------------ two processes, one cache

CHILD = """
import json, sys, time
from pathlib import Path
from neurospice.characterize.sweep import PointCache, Sweep, run_sweep
cache_dir, me, other = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
sweep = Sweep(recipe="rc", axes={"r_ohm": [1e3, 1.5e3, 2e3, 3e3, 4e3, 5e3], "c_F": [1e-12]},
              options={"tstop_s": 16e-9, "tstep_s": 10e-12})
me.touch()
deadline = time.time() + 60
while not other.exists() and time.time() < deadline:   # start together
    time.sleep(0.01)
res = run_sweep(sweep, cache=PointCache(cache_dir), points_per_run=1, progress=False)
print(json.dumps({"results": [[r.point["r_ohm"], r.status, r.result, r.reason] for r in res.results],
                  "cached": res.n_cached}))
"""


def test_two_processes_share_one_cache(tmp_path):
    cache_dir = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k != "NEUROSPICE_NGSPICE"}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(cache_dir), str(tmp_path / f"go{i}"),
                               str(tmp_path / f"go{1 - i}")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for i in (0, 1)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    a, b = (o["results"] for o in outs)
    assert a == b and len(a) == 6
    for r_ohm, status, result, reason in a:
        assert status == "ok", reason
        assert result["v_at_tau_V"] == pytest.approx(V_TAU, rel=0.02), r_ohm
    # the cache: one sound entry per point, no temporary file left
    files = sorted(p for p in cache_dir.rglob("*") if p.is_file())
    assert not [p for p in files if ".tmp" in p.name], files
    assert len(files) == 6
    by_r = {}
    for f in files:
        entry = json.loads(f.read_text())
        assert entry["key"] == f.stem and entry["status"] == "ok" and entry["format"] == 1
        by_r[entry["point"]["r_ohm"]] = entry["result"]
    assert by_r == {r_ohm: result for r_ohm, _, result, _ in a}
    # and a third run finds every point there
    again = run_sweep(Sweep(recipe="rc", axes={"r_ohm": [1e3, 1.5e3, 2e3, 3e3, 4e3, 5e3],
                                               "c_F": [1e-12]},
                            options={"tstop_s": 16e-9, "tstep_s": 10e-12}),
                      cache=PointCache(cache_dir), progress=False)
    assert again.n_cached == 6
