"""Every bad input refused up front (issue 21's first part): a table of command lines, each with
the words the user must see. For each: exit code 2, the named error in the JSON, and nothing
written under ``--out`` or the results cache. The rules themselves live in the config
dataclasses and ``neurospice.validate``, shared by the CLI and the Python API (the last tests)."""
import json

import pytest

from neurospice.cli import main

CK = "{ck}"          # a checkpoint file naming the memcap family (made by the fixture)
CK_SFQ = "{ck_sfq}"  # one naming the SFQ family
OUT = "{out}"

CASES = [
    # characterize
    (["characterize", "memcap", "--fan-in", "-5", "--out", OUT], "ConfigError", "fan_in must be ≥ 1, got -5"),
    (["characterize", "memcap", "--fan-in", "0", "--out", OUT], "ConfigError", "fan_in must be ≥ 1, got 0"),
    (["characterize", "memcap", "--mc", "-1", "--out", OUT], "ConfigError", "mc_samples must be ≥ 0, got -1"),
    (["characterize", "memcap", "--temperature", "-300", "--out", OUT], "ConfigError",
     "temperature_C must be > -273.15, got -300"),
    (["characterize", "memcap", "--workers", "0", "--out", OUT], "ConfigError", "workers must be ≥ 1, got 0"),
    (["characterize", "memcap", "--vdd", "-1", "--out", OUT], "ConfigError", "vdd_V must be > 0, got -1"),
    (["characterize", "memcap", "--corner", "xx", "--out", OUT], "UsageError", "invalid choice: 'xx'"),
    (["characterize", "memcap", "--technology", "tsmc", "--out", OUT], "UsageError", "invalid choice: 'tsmc'"),
    (["characterize", "memcap", "--fan-in", "many", "--out", OUT], "UsageError", "invalid int value: 'many'"),
    (["characterize", "memcap-diff", "--layer-fan-in", "0", "--out", OUT], "ConfigError", "fan_in must be ≥ 1, got 0"),
    (["characterize", "memcap-diff", "--mc", "-2", "--out", OUT], "ConfigError", "mc_samples must be ≥ 0, got -2"),
    (["characterize", "sfq", "--thresholds", "3", "--out", OUT], "NeurospiceError", "powers of two from 1 to 16, got [3]"),
    (["characterize", "sfq", "--cells", "nand9", "--out", OUT], "NeurospiceError", "unknown SFQ cells ['nand9']"),
    (["characterize", "sfq", "--bisection-steps", "-1", "--out", OUT], "ConfigError",
     "bisection_steps must be ≥ 0, got -1"),
    (["characterize", "sfq", "--workers", "0", "--out", OUT], "ConfigError", "workers must be ≥ 1, got 0"),
    (["characterize", "sfq", "--thresholds", "4,x", "--out", OUT], "ConfigError",
     "--thresholds must be whole numbers separated by commas"),
    (["characterize", "qclif", "--bits", "3", "--out", OUT], "ConfigError", "bits must be in [4, 16], got 3"),
    (["characterize", "qclif", "--cycles", "0", "--out", OUT], "ConfigError", "cycles must be ≥ 1, got 0"),
    (["characterize", "spiky", "--out", OUT], "UsageError", "invalid choice: 'spiky'"),
    (["characterize"], "UsageError", "the following arguments are required: TARGET"),
    # train memcap
    (["train", "memcap", "--hidden", "-3", "--out", OUT], "ConfigError", "hidden must be ≥ 1, got -3"),
    (["train", "memcap", "--steps", "0", "--out", OUT], "ConfigError", "steps must be ≥ 1, got 0"),
    (["train", "memcap", "--epochs", "-1", "--out", OUT], "ConfigError", "epochs must be ≥ 1, got -1"),
    (["train", "memcap", "--levels", "-2", "--out", OUT], "ConfigError", "levels must be ≥ 2, got -2"),
    (["train", "memcap", "--max-rate", "5", "--out", OUT], "ConfigError", "max_rate must be in (0, 1], got 5"),
    (["train", "memcap", "--lr", "-1", "--out", OUT], "ConfigError", "lr must be > 0, got -1"),
    (["train", "memcap", "--program-sigma", "-0.1", "--out", OUT], "ConfigError",
     "program_sigma must be ≥ 0, got -0.1"),
    (["train", "memcap", "--offset-sigma", "-1", "--out", OUT], "ConfigError", "offset_sigma_V must be ≥ 0, got -1"),
    (["train", "memcap", "--dataset", "cifar", "--out", OUT], "ConfigError", "unknown dataset 'cifar'"),
    (["train", "memcap", "--dataset", "idx:/no/such/folder", "--out", OUT], "ConfigError",
     "/no/such/folder does not exist"),
    (["train", "memcap", "--limit", "0", "--out", OUT], "ConfigError", "limit must be ≥ 1, got 0"),
    (["train", "memcap", "--device", "gpu", "--out", OUT], "ConfigError", "device must be cpu, cuda or cuda:N, got 'gpu'"),
    (["train", "memcap", "--init-from", "/no/such.pt", "--out", OUT], "ConfigError", "init_from: no file /no/such.pt"),
    (["train", "memcap", "--curve", "/no/such.json", "--out", OUT], "NeurospiceError",
     "curve artefact /no/such.json not found"),
    (["train", "memcap", "--augment-px", "-1", "--out", OUT], "ConfigError", "augment_px must be ≥ 0, got -1"),
    (["train", "memcap", "--mode", "best", "--out", OUT], "UsageError", "invalid choice: 'best'"),
    (["train", "memcap", "--seed", "-4", "--out", OUT], "ConfigError", "seed must be ≥ 0, got -4"),
    # train sfq / qclif
    (["train", "sfq", "--hidden", "0", "--out", OUT], "ConfigError", "hidden must be ≥ 1, got 0"),
    (["train", "sfq", "--max-rate", "0", "--out", OUT], "ConfigError", "max_rate must be in (0, 1], got 0"),
    (["train", "sfq", "--lr-threshold", "0", "--out", OUT], "ConfigError", "lr_threshold must be > 0, got 0"),
    (["train", "sfq", "--outputs-per-class", "0", "--out", OUT], "ConfigError", "outputs_per_class must be ≥ 1, got 0"),
    (["train", "sfq", "--augment-px", "-1", "--out", OUT], "ConfigError", "augment_px must be ≥ 0, got -1"),
    (["train", "sfq", "--artefact", "/no/such.json", "--out", OUT], "NeurospiceError",
     "SFQ artefact /no/such.json not found"),
    (["train", "qclif", "--bits", "2", "--out", OUT], "ConfigError", "bits must be in [4, 16], got 2"),
    (["train", "qclif", "--bits-table", "4,3", "--out", OUT], "ConfigError", "bits must be in [4, 16], got 3"),
    (["train", "qclif", "--bits-table", "4,x", "--out", OUT], "ConfigError", "--bits-table must be whole numbers"),
    (["train", "qclif", "--dataset", "dvs", "--out", OUT], "ConfigError", "dvs needs a folder: dvs:DIR"),
    (["train", "qclif", "--epochs", "0", "--out", OUT], "ConfigError", "epochs must be ≥ 1, got 0"),
    (["train", "lif", "--out", OUT], "UsageError", "invalid choice: 'lif'"),
    # verify / export
    (["verify", CK, "--samples", "0"], "ConfigError", "samples must be ≥ 1, got 0"),
    (["verify", CK, "--hidden-neurons", "-1"], "ConfigError", "hidden_neurons must be ≥ 0, got -1"),
    (["verify", CK, "--workers", "0"], "ConfigError", "workers must be ≥ 1, got 0"),
    (["verify", "/no/such.pt"], "CheckpointError", "checkpoint /no/such.pt not found"),
    (["verify", CK, "--whole-network", "--hidden-neurons", "2"], "ConfigError",
     "--whole-network simulates every neuron: --hidden-neurons has nothing to choose"),
    (["verify", CK, "--whole-network", "--samples", "0"], "ConfigError", "samples must be ≥ 1, got 0"),
    (["verify", CK_SFQ, "--whole-network"], "ConfigError",
     "verify --whole-network: the sfq family re-simulates sampled neurons only"),
    (["export", "/no/such.pt", "--nir", OUT + "/x.nir"], "CheckpointError", "checkpoint /no/such.pt not found"),
    (["export", CK, "--nir", OUT + "/x.nir", "--dt-convention", "brian"], "UsageError", "invalid choice: 'brian'"),
    (["export", CK, "--nir", OUT + "/x.nir", "--check-in", "brian"], "UsageError", "invalid choice: 'brian'"),
    # compare
    (["compare", "--draws", "0", "--out", OUT], "ConfigError", "draws must be ≥ 1, got 0"),
    (["compare", "--hidden", "-3", "--out", OUT], "ConfigError", "hidden must be ≥ 1, got -3"),
    (["compare", "--spreads", "0,-0.1", "--out", OUT], "ConfigError", "spreads must be ≥ 0, got -0.1"),
    (["compare", "--families", "memcap,nope", "--out", OUT], "FamilyError", "unknown neuron family 'nope'"),
    (["compare", "--workers", "0", "--out", OUT], "ConfigError", "workers must be ≥ 1, got 0"),
    (["compare", "--verify-samples", "0", "--out", OUT], "ConfigError", "verify_samples must be ≥ 1, got 0"),
    (["compare", "--dataset", "mnist:/no/such.tgz", "--out", OUT], "ConfigError", "/no/such.tgz does not exist"),
    (["compare", "--seed", "x", "--out", OUT], "UsageError", "invalid int value: 'x'"),
]


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A checkpoint naming the memcap family (its content is never reached: the options are
    refused first), an output folder that must stay absent and a cache that must stay empty."""
    import torch
    ck = tmp_path / "ck.pt"
    torch.save({"format": "neurospice.checkpoint", "version": 2, "family": "memcap", "config": {}}, ck)
    ck_sfq = tmp_path / "ck_sfq.pt"
    torch.save({"format": "neurospice.checkpoint", "version": 2, "family": "sfq", "config": {}}, ck_sfq)
    cache = tmp_path / "cache"
    monkeypatch.setenv("NEUROSPICE_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)                # default output folders would land here
    return {"ck": str(ck), "ck_sfq": str(ck_sfq), "out": str(tmp_path / "out"), "cache": cache, "root": tmp_path}


@pytest.mark.parametrize("argv, error, words", CASES, ids=[" ".join(c[0][:4]) for c in CASES])
def test_bad_input_is_refused_up_front(argv, error, words, places, capsys):
    argv = [a.format(ck=places["ck"], ck_sfq=places["ck_sfq"], out=places["out"]) for a in argv]
    before = sorted(p.name for p in places["root"].iterdir())
    assert main(argv + ["--json"]) == 2
    cap = capsys.readouterr()
    reply = json.loads(cap.out.strip().splitlines()[-1])
    assert reply["error"] == error, reply
    assert words in reply["message"], reply["message"]
    assert words in cap.err                        # the same words for a person at a terminal
    assert not (places["root"] / "out").exists()
    assert not places["cache"].exists() or not any(places["cache"].rglob("*"))
    assert sorted(p.name for p in places["root"].iterdir()) == before      # no runs/ either


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40


def test_the_python_api_applies_the_same_rules():
    from neurospice.circuits.errors import ConfigError
    from neurospice.training.compare import CompareConfig
    from neurospice.training.config import MemcapTrainConfig, QCLIFTrainConfig, SFQTrainConfig
    with pytest.raises(ConfigError, match="hidden must be ≥ 1, got -3"):
        MemcapTrainConfig(hidden=-3)
    with pytest.raises(ConfigError, match=r"max_rate must be in \(0, 1\], got 5"):
        SFQTrainConfig(max_rate=5)
    with pytest.raises(ConfigError, match=r"bits must be in \[4, 16\], got 20"):
        QCLIFTrainConfig(bits=20)
    with pytest.raises(ConfigError, match="draws must be ≥ 1, got 0"):
        CompareConfig(draws=0)
    assert MemcapTrainConfig(hidden=7).hidden == 7          # valid values pass unchanged
