"""Every family reads its class with the one decision rule (``neurons.decide``: most output
spikes, a tie to the first spike). Each family's evaluation runs with ``decide`` replaced by a
spy that answers one fixed class ``K`` for every sample: the spy must be called, and the
accuracy must be exactly the fraction of test labels equal to ``K`` — an evaluation that read
its class any other way (``argmax`` of counts, a float readout) would give another number.
The custom family's case is in ``test_custom_neuron`` (its tables come from that file's run)."""
import numpy as np
import pytest
import torch

from neurospice.circuits.qclif import QCLIFConfig

K = 3


def spy_on_decide(monkeypatch, module, widths: list | None = None) -> list:
    """Replace ``module.decide`` with the fixed-answer spy; the list records each call's batch
    (and ``widths``, if given, each call's number of outputs)."""
    calls = []

    def spy(out_spikes):
        calls.append(out_spikes.shape[1])
        if widths is not None:
            widths.append(out_spikes.shape[-1])
        return torch.full((out_spikes.shape[1],), K, dtype=torch.long)
    monkeypatch.setattr(module, "decide", spy)
    return calls


def test_memcap_and_lif_read_their_class_with_decide(memcap_diff_curve, monkeypatch):
    """``memcap`` (circuit tables) and ``lif`` (the ideal neuron) share ``memcap_train.evaluate``."""
    from neurospice.characterize.artefact import load_artefact
    from neurospice.training import memcap_train
    from neurospice.training.config import MemcapTrainConfig
    artefact = load_artefact(memcap_diff_curve)
    x = np.random.default_rng(0).random((40, 64)).astype(np.float32)
    y = np.arange(40) % 10
    for mode in ("aware", "ideal"):
        cfg = MemcapTrainConfig(mode=mode, hidden=16, steps=4)
        model = memcap_train.build_model(cfg, artefact, 64, 10)
        calls = spy_on_decide(monkeypatch, memcap_train)
        acc = memcap_train.evaluate(model, x, y, cfg, seed=1)["accuracy"]
        assert calls and sum(calls) == len(y), mode
        assert acc == np.mean(y == K), mode


def test_sfq_reads_its_class_with_decide(monkeypatch):
    from neurospice.training import sfq_train
    from neurospice.training.config import SFQTrainConfig
    from neurospice.training.sfq_net import SFQNet
    net = SFQNet(20, 6, 10, {"thresholds": [1, 2, 4], "fan_in": 16, "energy_per_spike_aJ": 1.0},
                 outputs_per_class=3)             # decide sees the 10 class votes, not 30 neurons
    x = np.random.default_rng(0).random((30, 20)).astype(np.float32)
    y = np.arange(30) % 10
    widths = []
    calls = spy_on_decide(monkeypatch, sfq_train, widths)
    acc = sfq_train.evaluate_sfq(net, x, y, SFQTrainConfig(steps=4))["accuracy"]
    assert calls and sum(calls) == len(y) and set(widths) == {10}
    assert acc == np.mean(y == K)


def test_qclif_reads_its_class_with_decide_from_output_neurons(monkeypatch):
    """qCLIF: the output neurons' spikes, not a float layer, go to ``decide``."""
    from neurospice.training import qclif_train
    from neurospice.training.qclif_net import QCLIFRSNN
    from neurospice.training.qclif_train import SequenceData
    model = QCLIFRSNN(8, 12, 10, cfg=QCLIFConfig(), seed=0)
    rng = np.random.default_rng(0)
    data = SequenceData(rng.random((30, 64)), np.arange(30) % 10, (8, 8), 0.5)
    seen = []
    calls = spy_on_decide(monkeypatch, qclif_train)
    real = qclif_train.decide

    def recording(out_spikes):
        seen.append(out_spikes.shape)
        return real(out_spikes)
    monkeypatch.setattr(qclif_train, "decide", recording)
    acc = qclif_train.evaluate_qclif(model, data)["accuracy"]
    assert calls and sum(calls) == 30 and seen[0][2] == 10    # [T, batch, output neurons]
    assert acc == np.mean(data.y == K)
