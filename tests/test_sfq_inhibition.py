"""Signed SFQ synapses: the PyTorch neuron against an independent per-pulse golden model (gate
tokens and a counter in plain Python), the ternary synapse selection, and the neuron circuit in
ngspice against the hand-worked inhibition table at 0.8, 1.0 and 1.2 × bias."""
import numpy as np
import pytest
import torch

from neurospice.characterize import sfq_benches as S
from neurospice.training.sfq_net import SFQNet, SFQNeuron, WireSelect


def golden_signed(exc, inh, threshold):
    """One neuron, pulse by pulse: each step first sets gate k's token for every pulse on
    inhibitory line k (one token at most), then sends its excitatory pulses one at a time —
    each is absorbed by the first gate holding a token, else counted; the counter emits a pulse
    and restarts at ``threshold``."""
    tokens = [False] * len(inh[0])
    count, out = 0, []
    for e_step, i_step in zip(exc, inh):
        for k, pulses in enumerate(i_step):
            if pulses > 0:
                tokens[k] = True
        fired = 0
        for _ in range(int(e_step)):
            holder = next((k for k, held in enumerate(tokens) if held), None)
            if holder is not None:
                tokens[holder] = False
                continue
            count += 1
            if count == threshold:
                count, fired = 0, fired + 1
        out.append(fired)
    return out


def test_signed_neuron_matches_golden_model():
    rng = np.random.default_rng(4)
    steps, batch, neurons, gates = 30, 3, 4, 5
    nrn = SFQNeuron(neurons, [1, 2, 4, 8, 16])
    with torch.no_grad():
        nrn.theta.copy_(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    exc = torch.as_tensor(rng.integers(0, 7, size=(steps, batch, neurons)), dtype=torch.float32)
    slots = torch.as_tensor(rng.integers(0, 3, size=(steps, batch, gates, neurons)) * (rng.random(
        (steps, batch, gates, neurons)) < 0.3), dtype=torch.float32)       # 0, 1 or 2 pulses
    z = nrn(exc, slots, slots.sum(2))
    for b in range(batch):
        for j, thr in enumerate([1, 2, 4, 8]):
            want = golden_signed(exc[:, b, j].tolist(), slots[:, b, :, j].tolist(), thr)
            assert z[:, b, j].int().tolist() == want, (b, j)


def test_ternary_selection_and_gradients():
    sel = WireSelect(40, 6, 8, inhibitory=5)
    m = sel.mask().detach()
    assert ((m == 1).sum(0) == 8).all() and ((m == -1).sum(0) == 5).all()
    exc, inh = sel.wires(), sel.inhibitory_wires()
    for j in range(6):
        assert not set(exc[:, j].tolist()) & set(inh[:, j].tolist())
        assert (torch.diff(inh[:, j]) > 0).all()              # gate order: sorted lines
    assert WireSelect(10, 3, 8, inhibitory=5).fan_in_inhibitory == 2     # fewer lines: fewer gates
    net = SFQNet(40, 6, 3, {"thresholds": [1, 2, 4], "fan_in": 8, "fan_in_inhibitory": 5})
    x = (torch.rand(5, 4, 40) < 0.5).float()
    net(x)["logits"].sum().backward()
    assert net.wire1.score.grad.abs().sum() > 0 and net.soma1.theta.grad.abs().sum() > 0


def _small_neuron(monkeypatch, excitatory=6, inhibitory=6):
    monkeypatch.setattr(S, "NEURON_INPUTS", excitatory)
    monkeypatch.setattr(S, "NEURON_INHIBITORY", inhibitory)


@pytest.mark.parametrize("bias", [0.8, 1.2])
def test_neuron_inhibition_table_at_bias_edges(monkeypatch, bias):
    """The hand-worked table (``INHIBITION_EXPECTED``: token capacity one, chain order, counter
    wrap) on a 6 + 6-line neuron of the same cells at ±20 % bias."""
    _small_neuron(monkeypatch)
    stepped = S.bench_inhibition()
    run = S.require_settled(stepped.bench, S.run_bench(stepped.bench, bias))
    assert S.spikes_per_step(stepped, run) == S.INHIBITION_EXPECTED


def test_neuron_inhibition_table_full_size():
    """The characterized neuron (all its lines and gates) at nominal bias."""
    stepped = S.bench_inhibition()
    run = S.require_settled(stepped.bench, S.run_bench(stepped.bench))
    assert S.spikes_per_step(stepped, run) == S.INHIBITION_EXPECTED


def test_stepped_bench_refuses_bad_trains():
    from neurospice.circuits.errors import NeurospiceError
    with pytest.raises(NeurospiceError, match="one pulse per line"):
        S.stepped_neuron_bench("x", 2, [[2, 0]], [[0]])
    with pytest.raises(NeurospiceError, match="power of two"):
        S.stepped_neuron_bench("x", 3, [[1, 0]], [[0]])
    with pytest.raises(NeurospiceError, match="inhibitory lines"):
        S.stepped_neuron_bench("x", 2, [[1]], [[0] * (S.NEURON_INHIBITORY + 1)])
