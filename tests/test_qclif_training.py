"""qCLIF training: data views, a short training run, checkpoint round trip, and verify in ngspice
(the trained network's neuron on the circuit, compared with the model step by step)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from neurospice.circuits.qclif import QCLIFConfig, step  # noqa: E402
from neurospice.training.config import QCLIFTrainConfig  # noqa: E402
from neurospice.training.qclif_train import (context_task, load_qclif_checkpoint,  # noqa: E402
                                             make_data, model_from_qclif_checkpoint, train_qclif)


def test_rows_become_time_steps_and_context_task_is_balanced():
    from neurospice.training.qclif_train import SequenceData
    train, val, test, ds, n_out = make_data(QCLIFTrainConfig(dataset="digits"))
    assert train.x.shape[0] == 8 and train.x.shape[2] == 8 and n_out == 10
    img = np.random.default_rng(0).random((2, 12))            # two 3×4 images
    seq = SequenceData(img, np.array([1, 2]), (3, 4), threshold=0.5)
    assert seq.x.shape == (3, 2, 4)                            # [rows = steps, samples, columns]
    assert np.array_equal(seq.x[1, 0], img[0, 4:8] > 0.5)      # step 1 = row 1 of sample 0
    # context task: the one-hot target names the label in about half the samples
    y = np.arange(1000) % 10
    onehot, answer = context_task(y, 10, seed=3)
    target = onehot.argmax(1)
    assert np.array_equal(answer, (target == y).astype(int))
    assert 0.4 < answer.mean() < 0.6
    assert not set(np.unique(make_data(QCLIFTrainConfig(task="context"))[0].y)) - {0, 1}


def test_validation_is_stratified_not_the_first_rows():
    train, val, *_ = make_data(QCLIFTrainConfig(dataset="digits"))
    assert len(np.unique(val.y)) == 10 and len(np.unique(train.y)) == 10


def test_recorded_network_states_follow_the_golden_model():
    """The RSNN's recorded per-step sums and states obey circuits.qclif.step exactly, in both
    layers; the output layer's somatic sums are the hidden spikes of the same step through the
    integer output weights (the golden model's arithmetic in numpy), and its spikes are ``out``."""
    from neurospice.training.qclif_net import QCLIFRSNN
    cfg = QCLIFConfig()
    model = QCLIFRSNN(8, 12, 3, n_context=0, cfg=cfg, seed=2)
    with torch.no_grad():
        model.w_o.mul_(8)                              # outputs that spike
    x = (torch.rand(10, 5, 8, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    with torch.no_grad():
        out = model(x, record=True)
        w = {k: t.round().long().numpy() for k, t in model.integer_weights().items()}
    lo, hi = cfg.bus_range
    for layer, size in (("hidden", 12), ("output", 3)):
        r = {k: t.round().long().numpy() for k, t in out["record"][layer].items()}
        va = v = z = np.zeros((5, size), dtype=np.int64)
        for t in range(10):
            va, v, z = step(cfg, va, v, z, r["s_a"][t], r["s_s"][t])
            assert np.array_equal(va, r["va"][t]) and np.array_equal(v, r["v"][t]) and np.array_equal(z, r["z"][t])
        assert r["s_s"].min() >= lo and r["s_s"].max() <= hi
    hidden_z = out["record"]["hidden"]["z"].long().numpy()
    s_out = np.clip(hidden_z @ w["w_o"] + w["b_o"], lo, hi)
    assert np.array_equal(s_out, out["record"]["output"]["s_s"].round().long().numpy())
    assert np.array_equal(out["out"].long().numpy(), out["record"]["output"]["z"].long().numpy())
    assert out["out"].sum() > 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("qclif-train")
    cfg = QCLIFTrainConfig(dataset="digits", hidden=32, epochs=12, limit=600, lr=1e-2)
    return train_qclif(cfg, out=out, progress=False), cfg, out


def test_training_learns_and_checkpoint_round_trips(trained):
    m, cfg, out = trained
    assert m["accuracy_test"] > 0.3                 # 10 classes: chance is 0.1
    ck = load_qclif_checkpoint(m["checkpoint"])
    model, cfg2 = model_from_qclif_checkpoint(ck)
    assert cfg2 == cfg
    w = model.integer_weights()
    assert torch.equal(w["w_s"], w["w_s"].round())   # integers, as the circuit holds them
    lo, hi = QCLIFConfig().weight_range
    assert w["w_s"].min() >= lo and w["w_s"].max() <= hi
    assert (out / "history.png").exists() and (out / "metrics.json").exists()


def test_corrupt_qclif_checkpoint_is_named(tmp_path):
    from neurospice.training.checkpoint import CheckpointError
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_qclif_checkpoint(bad)


@pytest.mark.sky130
@pytest.mark.slow
def test_verify_runs_a_trained_neuron_bit_exactly_in_ngspice(trained):
    from neurospice.training.qclif_verify import verify_qclif_checkpoint
    m, _, _ = trained
    r = verify_qclif_checkpoint(m["checkpoint"], samples=1, neurons=1, workers=2, progress=False)
    assert r["neuron_samples"] == 2 and r["output_neuron_samples"] == 1 and r["steps"] == 8
    assert r["bit_exact_agreement"] == 1.0, r["rows"]


def test_verify_at_gate_level_covers_many_neurons(trained):
    from neurospice.training.qclif_verify import verify_qclif_checkpoint
    m, _, _ = trained
    r = verify_qclif_checkpoint(m["checkpoint"], samples=6, neurons=5, workers=2, progress=False, level="gate",
                                output_neurons=10)
    assert r["neuron_samples"] == 90 and r["output_neuron_samples"] == 60 and r["level"] == "gate"
    assert r["bit_exact_agreement"] == 1.0 and r["spikes_model"] > 0
    # every output neuron ran: the circuit's own class, by decide, is the model's
    assert r["accuracy_circuit"] == r["accuracy_model"]


def _write_dvs_copy(root, per_split=100, seed=0):
    """A tiny DVS Gesture copy in tonic's on-disk layout: ``DVSGesture/<split>/<user>/<label>.npy``
    (int columns x, y, p, t in ms), plus the archive file whose presence tonic checks (empty:
    it is never opened). Label k's events sit in the image quadrant k % 4."""
    rng = np.random.default_rng(seed)
    base = root / "DVSGesture"
    for split in ("ibmGestureTrain", "ibmGestureTest"):
        for i in range(per_split):
            label = i % 4
            folder = base / split / f"user{i // 4:02d}_led"
            folder.mkdir(parents=True, exist_ok=True)
            n = 40
            qx, qy = (label % 2) * 64, (label // 2) * 64
            ev = np.stack([qx + rng.integers(0, 64, n), qy + rng.integers(0, 64, n),
                           rng.integers(0, 2, n), np.sort(rng.integers(0, 1000, n))], axis=1)
            np.save(folder / f"{label}.npy", ev.astype(np.int64))
        (base / f"{split}.tar.gz").write_bytes(b"")
    return root


def test_dvs_gesture_reader_on_a_generated_copy(tmp_path):
    pytest.importorskip("tonic")
    from neurospice.training.datasets import DatasetError, load_dvs_gesture
    ds = load_dvs_gesture(_write_dvs_copy(tmp_path), steps=5, pooling=64)
    assert ds.x_train.shape == (5, 100, 2 * 2 * 2) and ds.x_test.shape[1] == 100
    # label k's events all fall into pooled cell k (quadrant), either polarity
    for i, label in enumerate(ds.y_train[:8]):
        active = np.flatnonzero(ds.x_train[:, i].max(0)) // 2
        assert set(active) == {label}
    with pytest.raises(DatasetError, match="not found"):
        load_dvs_gesture(tmp_path / "elsewhere")


def test_train_qclif_on_dvs_copy(tmp_path):
    pytest.importorskip("tonic")
    root = _write_dvs_copy(tmp_path / "dvs")
    cfg = QCLIFTrainConfig(dataset=f"dvs:{root}", hidden=16, epochs=6, lr=1e-2)
    m = train_qclif(cfg, out=tmp_path / "run", progress=False)
    assert m["inputs"] == 512 and m["steps"] == 20
    assert m["accuracy_test"] > 0.5          # 4 separable classes: chance is 0.25
