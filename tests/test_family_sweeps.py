"""SFQ and qCLIF characterization through the one sweep runner: every transient a cached
point, a run killed midway resumes from the cache, and a Dask ``LocalCluster`` (``--scheduler``)
gives the same artefact as local threads. The reference for "same" is the other executor's
run of the same circuits; the reference for "right" stays the golden models (the qCLIF
registers) and the SFQ bench checks (pulse counts as phase slips)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neurospice.characterize.artefact import load_artefact
from neurospice.characterize.sweep import PointCache

#: a small SFQ characterization: two cells, their bias margins bisected twice (no neuron: its
#: benches are the same kind of sweep point, only longer)
SFQ_SMALL = ("from neurospice.characterize.sfq import characterize_sfq\n"
             "import json, sys\n"
             "r = characterize_sfq(cells=('jtl', 'splitter'), thresholds=(), bisection_steps=2,\n"
             "                     workers=2, out=sys.argv[1])\n"
             "print(json.dumps({k: r[k] for k in ('points', 'cached', 'failed', 'artefact')}))\n")
#: a small qCLIF characterization: 4 bits, two chunks of 2 random cycles (the first after 8 idle)
QCLIF_SMALL = ("from neurospice.characterize.qclif import characterize_qclif\n"
               "from neurospice.circuits.qclif import QCLIFConfig\n"
               "import json, sys\n"
               "r = characterize_qclif(quick=True, cycles=4, workers=2, cfg=QCLIFConfig.for_bits(4), out=sys.argv[1])\n"
               "print(json.dumps({k: r[k] for k in ('bit_exact', 'cycles', 'artefact')}))\n")


def _killed_then_resumed(script: str, root: Path, min_points: int) -> dict:
    """Run ``script`` with its own cache, SIGKILL it once ``min_points`` points are cached,
    run it again to the end; returns the second run's JSON and the points cached before."""
    env = dict(os.environ, NEUROSPICE_CACHE=str(root / "cache"))
    args = [sys.executable, "-c", script, str(root / "out")]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    points = root / "cache" / "points"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(points.rglob("*.json"))) < min_points and proc.poll() is None:
        time.sleep(0.1)
    killed_midway = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(list(points.rglob("*.json")))
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return {"killed_midway": killed_midway, "cached_before": before,
            **json.loads(done.stdout.strip().splitlines()[-1])}


def _on_dask(fn, **kw):
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        return fn(scheduler=cluster.scheduler_address, workers=2, **kw)


def _same(a: dict, b: dict, skip=("created", "wall_s", "plot", "artefact", "sha256")):
    return {k: v for k, v in a.items() if k not in skip} == {k: v for k, v in b.items() if k not in skip}


@pytest.mark.slow
def test_sfq_characterization_resumes_and_dask_equals_local(tmp_path):
    from neurospice.characterize.sfq import characterize_sfq
    local = _killed_then_resumed(SFQ_SMALL, tmp_path / "local", min_points=1)
    assert local["killed_midway"] and local["cached_before"] >= 1
    assert local["cached"] >= local["cached_before"] and local["failed"] == 0
    dask = _on_dask(characterize_sfq, cells=("jtl", "splitter"), thresholds=(), bisection_steps=2,
                    out=tmp_path / "dask", cache=PointCache(tmp_path / "dask-cache"))
    # the same points; from its fresh cache only the repeats within the run (a margin search
    # re-asks its nominal point) come cached
    assert dask["points"] == local["points"] and dask["cached"] < local["cached"]
    a, b = load_artefact(local["artefact"]), load_artefact(dask["artefact"])
    cells = a["summary"]["cells"]
    assert cells["jtl"]["output_pulses"] == 3 and cells["splitter"]["output_pulses"] == 3
    assert cells["jtl"]["bias_low"] < 1 < cells["jtl"]["bias_high"]        # margins were bisected
    assert _same(a["summary"], b["summary"]) and _same(a["provenance"], b["provenance"])


@pytest.mark.sky130
@pytest.mark.slow
def test_qclif_characterization_resumes_and_dask_equals_local(tmp_path):
    from neurospice.characterize.qclif import characterize_qclif
    from neurospice.circuits.qclif import QCLIFConfig
    local = _killed_then_resumed(QCLIF_SMALL, tmp_path / "local", min_points=1)
    assert local["killed_midway"] and local["cached_before"] >= 1
    assert local["bit_exact"] and local["cycles"] == 4        # registers = golden model, every cycle
    dask = _on_dask(characterize_qclif, quick=True, cycles=4, cfg=QCLIFConfig.for_bits(4),
                    out=tmp_path / "dask", cache=PointCache(tmp_path / "dask-cache"))
    a = load_artefact(local["artefact"])
    b = load_artefact(dask["artefact"])
    assert _same(a, b, skip=("created", "wall_s", "analysis_s", "worker_s", "efficiency", "plot", "artefact",
                             "sha256", "leakage_nW"))
    assert a["leakage_nW"] == pytest.approx(b["leakage_nW"], rel=1e-9)
