"""compare / report / NIR export: failure models against closed forms, the NIR graph against an
independent Euler simulation of its own parameters, and a small end-to-end comparison."""
import json
import math
import shutil

import numpy as np
import pytest
import torch

from neurospice.cli import main
from neurospice.training.qclif_family import qclif_failures
from neurospice.training.robustness import stuck_hook
from neurospice.training.sfq_family import sfq_failures


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _phi(x):
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_sfq_failure_fractions_match_the_normal_distribution():
    lo, hi, sigma = 0.743, 1.258, 0.2
    rng = np.random.default_rng(0)
    silent, free = sfq_failures(lo, hi)(rng.normal(0, sigma, 200_000))
    # bias 1/(1+ε) < lo  ⇔  ε > 1/lo − 1 ;  > hi  ⇔  ε < 1/hi − 1
    assert silent.mean() == pytest.approx(1 - _phi((1 / lo - 1) / sigma), abs=3e-3)
    assert free.mean() == pytest.approx(_phi((1 / hi - 1) / sigma), abs=3e-3)
    assert not (silent & free).any()


def test_qclif_timing_failures_match_the_guard():
    rng = np.random.default_rng(1)
    _, late = qclif_failures(1.15)(rng.normal(0, 0.1, 200_000))
    assert late.mean() == pytest.approx(1 - _phi(0.15 / 0.1), abs=3e-3)


def test_stuck_hook_forces_failed_neurons_only():
    lin = torch.nn.Identity()
    silent = np.array([True, False, False])
    free = np.array([False, False, True])
    h = lin.register_forward_hook(stuck_hook(silent, free))
    x = torch.full((4, 2, 3), 0.5)
    y = lin(x)
    h.remove()
    assert (y[..., 0] == 0).all() and (y[..., 1] == 0.5).all() and (y[..., 2] == 1).all()


def _euler_lif(node, currents, dt):
    """Run a NIR LIF node by its own equation, Euler with dt: τ dv/dt = (v_leak − v) + R·I."""
    v = np.zeros(currents.shape[1:])
    out = []
    for i_t in currents:
        v = v + dt / node.tau * (node.v_leak - v + node.r * i_t)
        z = (v >= node.v_threshold).astype(float)
        v = np.where(z > 0, node.v_reset, v)
        out.append(z)
    return np.array(out)


def test_nir_export_round_trip_memcap_ideal(memcap_diff_curve, tmp_path, capsys):
    import nir
    from neurospice.training.memcap_train import load_checkpoint, model_from_checkpoint
    assert main(["train", "memcap", "--dataset", "digits", "--mode", "ideal", "--curve", memcap_diff_curve,
                 "--hidden", "16", "--limit", "300", "--epochs", "1", "--out", str(tmp_path / "t"),
                 "--json"]) == 0
    ck = _last_json(capsys)["checkpoint"]
    assert main(["export", ck, "--nir", str(tmp_path / "net.nir"), "--json"]) == 0
    r = _last_json(capsys)
    g = nir.read(r["nir"])
    assert r["family"] == "lif" and g.metadata["family"] in ("lif", b"lif")
    model, cfg, _ = model_from_checkpoint(load_checkpoint(ck))
    with torch.no_grad():
        cp, cn = model.capacitances()[0]
    np.testing.assert_allclose(g.nodes["synapses0"].weight, (cp - cn).numpy().T, rtol=1e-6)
    # the exported LIF (dt = 1 step, Euler reading) spikes where the trained neuron spikes
    rng = np.random.default_rng(3)
    s = (rng.random((8, 5, 64)) < 0.3).astype(np.float32)
    current = s @ g.nodes["synapses0"].weight.T
    nrn = model.neurons[0]
    state = nrn.initial_state((5, 16))
    ref = []
    with torch.no_grad():
        for t in range(8):
            z, state = nrn(torch.as_tensor(s[t]) @ cp, torch.as_tensor(s[t]) @ cn, state)
            ref.append(z.numpy())
    np.testing.assert_array_equal(_euler_lif(g.nodes["neurons0"], current, float(g.metadata["dt_s"])), np.array(ref))


def test_export_rejects_a_foreign_file(tmp_path, capsys):
    bad = tmp_path / "x.pt"
    torch.save({"format": "something-else"}, bad)
    assert main(["export", str(bad), "--nir", str(tmp_path / "x.nir"), "--json"]) == 2
    assert "not a neurospice checkpoint" in _last_json(capsys)["message"]


def test_compare_memcap_and_lif_end_to_end(memcap_diff_curve, tmp_path, capsys, monkeypatch):
    """Two families through the whole chain (the memcap tables given, so nothing is re-swept):
    JSON keys, report with every figure, accuracy falling with spread, and a second call
    served from the cached family results. A family whose technology is missing (qclif without
    sky130, simulated here) is skipped and named, the others go on."""
    from neurospice import registry
    from neurospice.circuits.errors import TechnologyError

    def no_pdk(*a):
        raise TechnologyError("sky130 PDK not found (simulated by the test)")
    monkeypatch.setattr(registry.get("qclif"), "compare_row", no_pdk)
    out = tmp_path / "cmp"
    (out / "artefacts" / "memcap").mkdir(parents=True)
    shutil.copy(memcap_diff_curve, out / "artefacts" / "memcap" / "memcap_diff.json")
    args = ["compare", "--families", "memcap,lif,qclif", "--hidden", "16", "--quick", "--draws", "3",
            "--verify-samples", "6",
            "--spreads", "0,0.3", "--workers", "2", "--out", str(out), "--json"]
    assert main(args) == 0
    r = _last_json(capsys)
    assert set(r["families"]) == {"memcap", "lif"} and "sky130" in r["skipped"]["qclif"]
    m = r["families"]["memcap"]
    for key in ("accuracy_model", "accuracy_circuit", "energy_per_spike_pJ", "energy_per_inference_nJ",
                "latency_per_inference_ns", "neurons", "robustness", "artefact_sha256", "checkpoint_sha256"):
        assert m[key] is not None, key
    assert m["circuit_check"]["spike_agreement"] >= 0.9 and m["circuit_check"]["samples"] == 6
    assert m["latency_per_inference_ns"] == pytest.approx(8 * 10.0)    # 8 steps of 10 ns
    # energy per synaptic operation: an input spike reaching one synapse. Bounds from the data
    # alone: the encoded test inputs' spikes × 16 hidden synapses each, plus at most every
    # network spike × 16 (a hidden spike reaches 10 output synapses, an output spike none)
    from neurospice.training.datasets import encode, load_dataset
    ds = load_dataset("digits", seed=1)
    inputs = float(encode(ds.x_test, 8, "regular", max_rate=1.0).sum()) / len(ds.y_test)
    sops = m["synaptic_ops_per_inference"]
    assert 16 * inputs <= sops <= 16 * inputs + 16 * m["spikes_per_inference"]
    assert m["energy_per_sop_J"] == pytest.approx(m["energy_per_inference_nJ"] * 1e-9 / sops)
    assert sum(m["energy_per_sop_breakdown_J"].values()) == pytest.approx(m["energy_per_sop_J"])
    assert r["families"]["lif"]["energy_per_sop_J"] is None
    assert "Energy per synaptic operation" in (out / "report.md").read_text()
    report = (out / "report.md").read_text()
    for fig in ("transfer.png", "robustness.png", "energy_accuracy.png"):
        assert fig in report and (out / fig).exists()
    assert m["checkpoint_sha256"][:16] in report and "| qclif | not run: sky130 PDK not found" in report
    # more spread, no better accuracy (within the draws' noise); both curves present
    for key in ("robustness", "robustness_variation_aware"):
        rob = m[key]
        assert [p["spread"] for p in rob] == [0.0, 0.3]
        assert rob[1]["accuracy_mean"] <= rob[0]["accuracy_mean"] + 2 * rob[1]["accuracy_std"] + 0.02
    ck = out / "train" / "memcap" / "checkpoint.pt"
    stamp = ck.stat().st_mtime_ns
    assert main(args) == 0
    assert _last_json(capsys)["families"]["memcap"]["checkpoint_sha256"] == m["checkpoint_sha256"]
    assert ck.stat().st_mtime_ns == stamp                 # served from the cache: not trained again


def test_paired_gain_is_chip_by_chip():
    """The variation-aware gain pairs the two curves' chips: a constant +0.02 on every chip
    has zero standard error whatever the chips' own spread."""
    from neurospice.training.robustness import paired_gain
    chips = [0.55, 0.70, 0.62, 0.66]
    plain = [{"spread": 0.3, "draws": 4, "accuracies": chips}]
    aware = [{"spread": 0.3, "draws": 4, "accuracies": [a + 0.02 for a in chips]}]
    g = paired_gain(plain, aware)
    assert abs(g["gain_mean"] - 0.02) < 1e-12 and g["gain_se"] < 1e-12
    assert g["chips_better"] == 4 and g["chips_worse"] == 0
    mixed = [{"spread": 0.3, "draws": 4, "accuracies": [0.56, 0.69, 0.63, 0.66]}]
    g = paired_gain(plain, mixed)
    d = np.array([0.01, -0.01, 0.01, 0.0])
    assert abs(g["gain_mean"] - d.mean()) < 1e-12
    assert abs(g["gain_se"] - d.std(ddof=1) / 2) < 1e-12
    assert (g["chips_better"], g["chips_worse"]) == (2, 1)
    assert paired_gain(plain, [{"spread": 0.2, "draws": 4, "accuracies": chips}]) is None
