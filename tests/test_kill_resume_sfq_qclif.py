"""Kill at random moments (issue 21), the superconducting and digital families'
characterizations: ``characterize sfq`` (every cell) and ``characterize qclif`` (4 bits,
transistor level), each followed by a Dask ``LocalCluster`` twin. The method, the moments and
what is compared: ``test_kill_resume.py`` (this file is apart so the two test workers share the
kill tests)."""
import pytest

from kill_harness import Verb, _normal, _same_artefacts, assert_finished_clean, assert_killed_mid_run
from neurospice.characterize.artefact import load_artefact

SEED = 21


def _on_dask(fn, workers=2, **kw):
    """``fn`` on a 2-process Dask ``LocalCluster``; ``workers``: what ``fn`` is told (the qCLIF
    chunk count follows it)."""
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        return fn(scheduler=cluster.scheduler_address, workers=workers, **kw)


def test_characterize_sfq_survives_kills(tmp_path):
    """``characterize sfq`` on every cell (truth tables at three biases, margins bisected three
    times); the counting neuron's benches are the same kind of sweep point, only longer (the
    demo's and the characterization tests run them). Then a Dask ``LocalCluster`` gives the same artefact."""
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
