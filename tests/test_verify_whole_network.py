"""``verify --whole-network`` (issue 19): every layer in ngspice, each layer driven by the
previous layer's *circuit* spikes.

The wiring is checked against an independent toy: ngspice replaced by a neuron that fires in a
step when its positive rows' capacitance-weighted input exceeds its negative rows' — the test
computes what both layers of that toy must give straight from the capacitances and the input
spikes (layer 2 from the toy's layer-1 spikes, not the model's), and checks the cached rerun
simulates nothing. Then the real thing, ngspice against the table model, per layer."""
import json

import numpy as np
import pytest

from neurospice.cli import main


@pytest.fixture(scope="module")
def checkpoint(memcap_diff_curve, tmp_path_factory):
    from neurospice.training.config import MemcapTrainConfig
    from neurospice.training.memcap_train import train_memcap
    cfg = MemcapTrainConfig(dataset="digits", mode="aware", curve=memcap_diff_curve, hidden=12, epochs=1,
                            steps=8, max_rate=1.0, lr=3e-2, limit=300)
    return train_memcap(cfg, out=tmp_path_factory.mktemp("whole"), progress=False)["checkpoint"]


def _toy(rows) -> list[int]:
    """Spike where Σ C+·m+·s > Σ C−·m−·s (the rows one neuron's circuit is built from)."""
    sp, cp, cn, mp, mn = rows
    drive = sp @ (np.asarray(cp) * np.asarray(mp)) - sp @ (np.asarray(cn) * np.asarray(mn))
    return (drive > 0).astype(int).tolist()


def test_each_layer_is_driven_by_the_previous_layers_circuit_spikes(checkpoint, tmp_path, monkeypatch):
    from neurospice.training import memcap_verify as mv
    calls = []

    def fake(tag, tech, design, jobs, read_equivalent):
        calls.append(tag)
        return [_toy(rows) for rows in jobs]
    monkeypatch.setattr(mv, "_simulate", fake)
    r = mv.verify_whole_network(checkpoint, samples=3, workers=2, out=tmp_path, progress=False)
    rec = mv._record(checkpoint, 3, "read", 30_000, tmp_path / "ref", "reference")
    (cp1, cn1), (cp2, cn2) = rec.caps_np
    s = rec.s_np                                            # [T, n, n_in]
    # independent reference: the toy on every row of every neuron, no grouping, no cache
    toy1 = (np.einsum("tbi,ij->tbj", s, cp1) > np.einsum("tbi,ij->tbj", s, cn1)).astype(int)
    toy2 = (np.einsum("tbi,ij->tbj", toy1, cp2) > np.einsum("tbi,ij->tbj", toy1, cn2)).astype(int)
    files = sorted(p.name for p in tmp_path.rglob("layer*_sample*.json"))
    assert len(files) == 6 and len(calls) == 3 * (12 + 10)     # one ngspice run per neuron
    for k, toy in enumerate((toy1, toy2)):
        for b in range(3):
            got = np.asarray(json.loads(next(tmp_path.rglob(f"layer{k + 1}_sample{b}.json")).read_text()))
            assert np.array_equal(got, toy[:, b, :].T), (k, b)
    agree2 = float((toy2 == rec.layers[1]).mean())
    assert r["layers"][1]["spike_agreement"] == pytest.approx(agree2)
    assert r["layers"][1]["driven_by"] == "layer 1's circuit spikes"
    from neurospice.training.neurons import decide
    import torch
    acc = float((decide(torch.as_tensor(toy2)).numpy() == rec.y).mean())
    assert r["accuracy_circuit"] == pytest.approx(acc)
    calls.clear()
    again = mv.verify_whole_network(checkpoint, samples=3, workers=2, out=tmp_path, progress=False)
    assert calls == [] and again["layers"] == r["layers"]        # every layer from the cache


def test_whole_network_in_ngspice_through_the_cli(checkpoint, capsys):
    assert main(["verify", checkpoint, "--whole-network", "--samples", "2", "--workers", "2", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["whole_network"] is True and r["samples"] == 2
    assert [layer["neurons"] for layer in r["layers"]] == [12, 10]
    # ngspice (an independent simulator) against the table model on the same input spikes;
    # layer 2 sees layer 1's circuit spikes, so its agreement also measures the drift (a
    # one-epoch network's: ~0.75), reported, not bounded here
    assert r["layers"][0]["spike_agreement"] >= 0.85, r["layers"]
    assert 0 <= r["layers"][1]["spike_agreement"] <= 1
    assert 0 <= r["accuracy_circuit"] <= 1
    assert any("idle input rows" in x for x in r["idealized"])
    assert any("read-regime" in x for x in r["idealized"])


def test_grouped_rows_simulate_as_the_rows_one_by_one():
    """A neuron's rows with the same spike train and capacitance become one row of that
    multiplicity, per side: the same membranes in ngspice as every row on its own (both
    neurons in one deck, so they share the time steps)."""
    from neurospice.circuits import memcap as mc
    from neurospice.circuits.engine import run_netlist
    from neurospice.circuits.technology import generic
    from neurospice.training.memcap_verify import _neuron_rows
    rng = np.random.default_rng(3)
    patterns = rng.integers(0, 2, size=(4, 8))                  # 4 distinct trains, 8 steps
    trains = patterns[rng.integers(0, 4, size=30)]              # 30 rows, many repeated
    trains[25:] = 0                                             # and 5 idle ones
    levels = np.array([2e-15, 8e-15, 14e-15, 20e-15])
    cp, cn = levels[rng.integers(0, 4, 30)], levels[rng.integers(0, 4, 30)]
    design, tech = mc.DiffNeuronDesign(), generic("tt")
    sp, a, c, m_p, m_n = _neuron_rows(trains.T, cp, cn)
    assert sp.shape[1] < 2 * 30                                  # fewer rows than the pumps
    idle = trains.sum(1) == 0
    # the reference: every active row on its own, the idle ones lumped as the grouping does
    ref_sp = np.concatenate([trains[~idle].T, np.zeros((8, 1), int)], 1)
    ref_p = list(cp[~idle]) + [cp[idle].mean()]
    ref_n = list(cn[~idle]) + [cn[idle].mean()]
    ref_m = [1] * int((~idle).sum()) + [int(idle.sum())]
    pts = [mc.diff_neuron_point("g", tech, design, sp, a, c, m_p, read_equivalent=True, multiplicity_neg=m_n),
           mc.diff_neuron_point("r", tech, design, ref_sp, ref_p, ref_n, ref_m, read_equivalent=True)]
    plot = run_netlist(mc.assemble(tech, pts), circuit="grouping").plot
    grouped, reference = (mc.measure_diff(plot, p, design) for p in pts)
    for key in ("v_p_end_V", "v_n_end_V", "v_p_peak_V", "v_n_peak_V"):
        assert np.max(np.abs(np.subtract(grouped[key], reference[key]))) < 1e-4, key
    assert grouped["spikes"] == reference["spikes"] and sum(reference["spikes"]) > 0


def test_spread_capacitance_pumps_less_than_the_tables_lumping():
    """The differential tables realize an active capacitance as the fewest rows near C_max
    (``MemcapDiffRecipe``); a layer spreads it over many small rows, each its own pump, and
    those move the membrane less (the diode's drop is paid per pump). README: the reason
    ``--whole-network`` finds the MNIST hidden layer firing more than the model."""
    from neurospice.circuits import memcap as mc
    from neurospice.circuits.engine import run_netlist
    from neurospice.circuits.technology import generic
    d, tech = mc.DiffNeuronDesign(fire_enabled=False), generic("tt")
    mid = 0.5 * (d.device.c_min_F + d.device.c_max_F)
    total_F, pts = 200e-15, []
    for tag, rows in (("few", 10), ("many", 50)):               # 20 fF rows, 4 fF rows
        pts.append(mc.diff_neuron_point(tag, tech, d, np.array([[1, 0]]), [total_F / rows, mid],
                                        [d.device.c_min_F, mid], [rows, 784 - rows], read_equivalent=True))
    plot = run_netlist(mc.assemble(tech, pts), circuit="spread").plot
    few, many = (mc.measure_diff(plot, p, d)["v_p_end_V"][0] for p in pts)
    assert many < 0.9 * few, (few, many)


def test_families_say_which_verify_the_whole_network(capsys):
    assert main(["families", "--json"]) == 0
    fams = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["families"]
    assert fams["memcap"]["verifies_whole_network"] is True
    assert not any(f["verifies_whole_network"] for name, f in fams.items() if name != "memcap")


def test_verify_time_steps_give_the_characterization_steps_spikes():
    """``verify`` integrates at ``memcap.SPIKE_TRAN`` (1 ns step bound, trtol 20); the
    reference is the same neurons at the characterization's 20 ps bound: same spike trains.
    Three neurons of 40 random rows (8 steps), driven from weak to strong so that they fire
    sometimes, not always."""
    from neurospice.circuits import memcap as mc
    from neurospice.training.memcap_verify import VERIFY_TRAN, _neuron_rows, _simulate
    from neurospice.circuits.technology import generic
    assert VERIFY_TRAN == mc.SPIKE_TRAN and mc.SPIKE_TRAN.max_step_s > 10 * mc.CHARACTERIZE_TRAN.max_step_s
    rng = np.random.default_rng(5)
    design, tech = mc.DiffNeuronDesign(), generic("tt")
    levels = np.linspace(design.device.c_min_F, design.device.c_max_F, 16)
    jobs = []
    for rate in (0.15, 0.3, 0.5):
        trains = (rng.random((40, 8)) < rate).astype(int)
        cp = levels[rng.integers(4, 16, 40)]
        cn = levels[rng.integers(0, 6, 40)]
        jobs.append(_neuron_rows(trains.T, cp, cn))
    coarse = _simulate("spk", tech, design, jobs, True)
    fine = _simulate("ref", tech, design, jobs, True, tran=mc.CHARACTERIZE_TRAN)
    assert coarse == fine
    fired = sum(map(sum, fine))
    assert 0 < fired < 3 * 8, fine


def test_verify_cache_key_follows_how_decks_are_written(monkeypatch):
    """The verify cache key holds a digest of a probe deck written by the same code as the real
    ones: the device model, the analysis settings or the rows' layout change it."""
    from neurospice.circuits import memcap as mc
    from neurospice.circuits.technology import generic
    from neurospice.training import memcap_verify as V
    tech, design = generic("tt"), mc.DiffNeuronDesign()
    read = V._deck_settings(tech, design, True)
    assert read == V._deck_settings(tech, design, True)
    assert read != V._deck_settings(tech, design, False)
    assert read != V._deck_settings(generic("ff"), design, True)
    monkeypatch.setattr(V, "VERIFY_TRAN", mc.TranSettings(0.5e-9, trtol=20.0))
    assert read != V._deck_settings(tech, design, True)
    monkeypatch.undo()
    monkeypatch.setattr(V, "JOBS_LAYOUT", "grouped-rows/two-neurons-per-deck")
    assert read != V._deck_settings(tech, design, True)
