"""The PyTorch SFQ neuron against an independent integer golden model (plain Python counter),
its wiring and threshold constraints, a short training run, and model-vs-ngspice agreement."""
import numpy as np
import pytest
import torch

from neurospice.characterize.artefact import save_artefact
from neurospice.circuits.errors import NeurospiceError
from neurospice.training.config import SFQTrainConfig
from neurospice.training.sfq_net import SFQNet, SFQNeuron, WireSelect, sfq_spec

THRESHOLDS = [1, 2, 4, 8, 16]


def golden_counter(inputs, threshold):
    """One neuron: a counter that emits one pulse each time it wraps at ``threshold``."""
    count, out = 0, []
    for pulses in inputs:
        fired = 0
        for _ in range(int(pulses)):
            count += 1
            if count == threshold:
                count, fired = 0, fired + 1
        out.append(fired)
    return out


def test_neuron_matches_golden_counter():
    rng = np.random.default_rng(0)
    neuron = SFQNeuron(5, THRESHOLDS)
    with torch.no_grad():
        neuron.theta.copy_(torch.tensor([0.0, 1.2, 2.0, 2.6, 4.4]))   # → 1, 2, 4, 8, 16
    assert neuron.threshold().tolist() == [1, 2, 4, 8, 16]
    x = torch.as_tensor(rng.integers(0, 17, size=(40, 3, 5)), dtype=torch.float32)
    z = neuron(x)
    for n in range(3):
        for k, t in enumerate(THRESHOLDS):
            assert z[:, n, k].int().tolist() == golden_counter(x[:, n, k].tolist(), t)


def test_gradients_reach_thresholds_and_wires():
    net = SFQNet(20, 6, 3, {"thresholds": THRESHOLDS, "fan_in": 16, "energy_per_spike_aJ": 1.0})
    x = (torch.rand(6, 4, 20) < 0.5).float()
    net(x)["logits"].sum().backward()
    assert net.soma1.theta.grad.abs().sum() > 0 and net.wire1.score.grad.abs().sum() > 0
    assert (net.wire1.mask().detach().sum(0) == 16).all()          # exactly 16 wires per neuron
    assert (net.wire2.mask().detach().sum(0) == 6).all()           # fewer lines: all wired
    assert WireSelect(20, 6, 16).wires().shape == (16, 6)
    with pytest.raises(NeurospiceError, match="fan-in"):
        WireSelect(6, 3, 16)


def test_spec_refuses_bad_artefacts(tmp_path):
    with pytest.raises(NeurospiceError, match="not an SFQ artefact"):
        sfq_spec({"family": "memcap"})
    with pytest.raises(NeurospiceError, match="wrong counts"):
        sfq_spec({"family": "sfq", "summary": {"thresholds": [2], "counts_correct": False}})


@pytest.fixture
def artefact(tmp_path):
    """A stand-in for `characterize sfq` output (the circuit facts the model needs)."""
    return str(save_artefact({"family": "sfq", "summary": {"thresholds": THRESHOLDS, "fan_in": 16,
                                                             "fan_in_inhibitory": 16,
                                                             "counts_correct": True,
                                                             "energy_per_spike_aJ": 60.0}},
                             tmp_path / "sfq.json"))


def test_train_then_verify_in_ngspice(artefact, tmp_path):
    """A short training run; a hidden neuron with inhibitory inputs re-simulated in ngspice."""
    from neurospice.training.sfq_train import train_sfq
    from neurospice.training.sfq_verify import verify_sfq_checkpoint
    cfg = SFQTrainConfig(artefact=artefact, epochs=2, hidden=32, steps=2, limit=600)
    m = train_sfq(cfg, out=tmp_path / "run", progress=False)
    assert m["accuracy_test"] > 0.3                      # ten classes: chance is 0.1
    r = verify_sfq_checkpoint(m["checkpoint"], samples=1, neurons=1, progress=False)
    assert r["spike_agreement"] == 1.0, r["rows"]
    assert r["inhibitory_pulses"] > 0, r["rows"]     # (firing with inhibition: test_sfq_inhibition)


def test_synaptic_operations_counted_by_hand():
    """Every input line pulses every step (white pixels at max rate 1): the hidden layer sees
    steps × hidden × fan-in synaptic operations; each hidden pulse reaches every output neuron
    wired to it (here all of them: fan-in = hidden)."""
    from neurospice.training.sfq_train import evaluate_sfq
    spec = {"fan_in": 2, "thresholds": [1, 2, 4]}
    model = SFQNet(4, 2, 3, spec, seed=3)
    cfg = SFQTrainConfig(steps=5, max_rate=1.0)
    x, y = np.ones((7, 4), np.float32), np.zeros(7, int)
    ev = evaluate_sfq(model, x, y, cfg)
    with torch.no_grad():
        hidden = model(torch.ones(5, 7, 4))["hidden"]
    by_hand = 5 * 2 * 2 + float(hidden.sum()) / 7 * 3
    assert ev["synaptic_ops_per_inference"] == pytest.approx(by_hand)


def test_class_votes_sum_each_class_output_neurons():
    """Class k's vote is the pulses of output neurons k·P … k·P+P−1 (hand-made table); the
    evaluation decides on the votes, not on single neurons."""
    from neurospice.training.neurons import decide
    net = SFQNet(4, 3, 2, {"fan_in": 2, "thresholds": [1, 2]}, outputs_per_class=3)
    assert net.sizes == [4, 3, 6]
    out = torch.tensor([[[1., 1, 1, 3, 0, 0]], [[1., 1, 1, 2, 0, 0]]])       # [T=2, N=1, 6]
    assert net.votes(out).tolist() == [[[3, 3]], [[3, 2]]]
    assert decide(net.votes(out)).tolist() == [0]          # 6 vs 5 pulses
    assert decide(out).tolist() == [3]                     # the busiest single neuron: class 1


def test_checkpoint_from_before_output_groups_loads_as_one_per_class():
    from dataclasses import asdict

    from neurospice.training.sfq_train import model_from_sfq_checkpoint
    spec = {"fan_in": 2, "thresholds": [1, 2]}
    old = SFQNet(4, 3, 5, spec)
    config = {k: v for k, v in asdict(SFQTrainConfig()).items() if k not in ("outputs_per_class", "augment_px")}
    model, cfg = model_from_sfq_checkpoint({"config": config, "sizes": old.sizes, "spec": spec,
                                            "state": old.state_dict()})
    assert (cfg.outputs_per_class, cfg.augment_px, model.sizes) == (1, 0, [4, 3, 5])


def test_default_shift_range_per_image_size():
    """SFQ's default shifts: ±1 pixel on 28×28 images, none on 8×8 ones; an explicit value wins."""
    from neurospice.training.datasets import shift_range
    from neurospice.training.sfq_train import sfq_shift_px
    assert [sfq_shift_px(SFQTrainConfig(), s) for s in ((28, 28), (8, 8), None)] == [1, 0, 0]
    assert sfq_shift_px(SFQTrainConfig(augment_px=3), (8, 8)) == 3
    assert [shift_range(None, s) for s in ((28, 28), (8, 8))] == [2, 1]     # memcap's rule unchanged


def test_a_run_with_other_layer_sizes_is_not_resumed(artefact, tmp_path):
    """A ``last.pt`` of one output neuron per class in the output folder: a run with two per
    class starts afresh (no size-mismatch crash, no mixed epochs)."""
    from neurospice.training.sfq_train import train_sfq
    small = dict(artefact=artefact, epochs=1, hidden=8, steps=2, limit=200)
    train_sfq(SFQTrainConfig(outputs_per_class=1, **small), out=tmp_path, progress=False)
    m = train_sfq(SFQTrainConfig(outputs_per_class=2, **small), out=tmp_path, progress=False)
    ck = torch.load(m["checkpoint"], weights_only=False)
    assert ck["sizes"] == [64, 8, 20] and len(m["history"]) == 1
