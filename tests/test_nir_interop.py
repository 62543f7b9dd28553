"""NIR that other tools run: a trained network exported in a consumer's time convention,
imported by that consumer (snnTorch 1.0, Norse 1.1; pinned in scripts/setup.sh) and run on the
digits test set, against neurospice's own model of the same network (the independent reference:
the consumers' own neuron code)."""
import json

import numpy as np
import pytest
import torch

from neurospice.cli import main

pytest.importorskip("snntorch")
pytest.importorskip("norse")


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(memcap_diff_curve, tmp_path_factory):
    """The LIF reference (memcap ``ideal``) and a circuit-aware memcap network, small."""
    from neurospice.training.config import MemcapTrainConfig
    from neurospice.training.memcap_train import train_memcap
    out = tmp_path_factory.mktemp("nir_interop")
    cks = {}
    for mode in ("ideal", "aware"):
        cfg = MemcapTrainConfig(dataset="digits", mode=mode, curve=memcap_diff_curve, hidden=16, epochs=2,
                                steps=8, max_rate=1.0, lr=3e-2, limit=400)
        cks[mode] = train_memcap(cfg, out=out / mode, progress=False)["checkpoint"]
    return cks


@pytest.mark.parametrize("consumer", ["snntorch", "norse"])
def test_lif_reference_and_linearized_memcap_run_the_same_in_the_consumer(trained, consumer):
    from neurospice.training.nir_interop import check_in_consumer
    lif = check_in_consumer(trained["ideal"], consumer)
    assert lif["runs"] and lif["convention"] == consumer
    assert lif["model"]["same_class"] >= 0.99 and lif["model"]["same_counts"] >= 0.95
    assert lif["model"]["samples"] > 300                       # the whole digits test set
    mem = check_in_consumer(trained["aware"], consumer)
    assert mem["linearized"]["same_class"] >= 0.99 and mem["linearized"]["same_counts"] >= 0.95


def test_physical_convention_is_what_the_consumers_get_wrong(trained):
    """The check can fail: the physical graph (τ ≈ 28 ns for 10 ns steps) in a consumer that
    assumes its own step is a different network."""
    from neurospice.training.nir_interop import check_in_consumer
    wrong = check_in_consumer(trained["ideal"], "norse", convention="physical")
    assert wrong["model"]["same_counts"] < 0.5


def test_retimed_graph_is_the_euler_reading_of_the_same_step(trained, tmp_path, capsys):
    import nir
    assert main(["export", trained["ideal"], "--nir", str(tmp_path / "p.nir"), "--json"]) == 0
    cap = capsys.readouterr()
    phys = json.loads(cap.out.strip().splitlines()[-1])
    assert "--dt-convention snntorch" in phys["note"] and "--dt-convention norse" in cap.err
    assert main(["export", trained["ideal"], "--nir", str(tmp_path / "s.nir"), "--dt-convention",
                 "snntorch", "--json"]) == 0
    snn = _last_json(capsys)
    p, s = nir.read(phys["nir"]), nir.read(snn["nir"])
    assert snn["dt_s"] == 1e-4 and snn["network_dt_s"] == phys["dt_s"] and "note" not in snn
    for k in ("neurons0", "neurons1"):
        beta = 1 - phys["dt_s"] / p.nodes[k].tau                  # the network's own leak per step
        np.testing.assert_allclose(1 - 1e-4 / s.nodes[k].tau, beta, rtol=1e-5)
        np.testing.assert_allclose(s.nodes[k].r * 1e-4 / s.nodes[k].tau, 1.0, rtol=1e-5)   # snnTorch's rule
        gain = p.nodes[k].r * (1 - beta)                          # volts per fF of synapse output
        syn = k.replace("neurons", "synapses")
        np.testing.assert_allclose(s.nodes[syn].weight, p.nodes[syn].weight * gain[:, None], rtol=1e-4)


def test_a_family_without_a_nir_neuron_says_so(tmp_path):
    from neurospice import registry
    with pytest.raises(registry.FamilyError, match="qclif.*NIR"):
        registry.get("qclif").nir_reference({}, 1)


def test_agreement_reads_classes_from_grouped_output_neurons():
    """Two output neurons per class: spikes moved between a class's two neurons keep its class
    (hand-made: class 1 = neurons 2, 3), single-neuron reading would call them different."""
    from neurospice.training.nir_interop import agreement
    ref = torch.tensor([[[0., 0, 2, 0]]])
    out = torch.tensor([[[0., 0, 0, 2]]])
    assert agreement(out, ref, outputs_per_class=2)["same_class"] == 1.0
    assert agreement(out, ref)["same_class"] == 0.0
