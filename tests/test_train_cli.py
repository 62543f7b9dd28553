"""End to end through the CLI: characterize the differential neuron, train (aware) on the
bundled digits, resume, and re-simulate the trained output layer in ngspice."""
import json

from neurospice.cli import main


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_train_resume_verify(memcap_diff_curve, tmp_path, capsys):
    args = ["train", "memcap", "--dataset", "digits", "--mode", "aware", "--curve", memcap_diff_curve,
            "--hidden", "16", "--limit", "400", "--out", str(tmp_path), "--json"]
    assert main(args + ["--epochs", "1"]) == 0
    first = _last_json(capsys)
    for key in ("accuracy_test", "checkpoint", "energy_per_inference_nJ", "wall_s"):
        assert key in first
    assert main(args + ["--epochs", "2"]) == 0           # resumes from last.pt: one more epoch
    second = _last_json(capsys)
    hist = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == [0, 1]
    assert second["energy_per_inference_nJ"] > 0 and (tmp_path / "training.png").exists()
    assert main(["verify", second["checkpoint"], "--samples", "3", "--hidden-neurons", "1",
                 "--workers", "2", "--json"]) == 0
    v = _last_json(capsys)
    assert v["samples"] == 3
    # an independent simulator (ngspice) against the table model: spike-level agreement
    assert v["spike_agreement"] >= 0.9


def test_train_bad_curve_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "c.json"
    bad.write_text("{not json")
    assert main(["train", "memcap", "--curve", str(bad), "--out", str(tmp_path), "--json"]) == 2
    err = _last_json(capsys)
    assert err["error"] == "ArtefactError"


def test_verify_corrupt_checkpoint(tmp_path, capsys):
    ck = tmp_path / "checkpoint.pt"
    ck.write_bytes(b"\x00garbage")
    assert main(["verify", str(ck), "--json"]) == 2
    assert _last_json(capsys)["error"] == "CheckpointError"


def test_train_qclif_resumes_and_reports(tmp_path, capsys):
    args = ["train", "qclif", "--dataset", "digits", "--hidden", "16", "--limit", "300",
            "--out", str(tmp_path), "--json"]
    assert main(args + ["--epochs", "1"]) == 0
    first = _last_json(capsys)
    for key in ("accuracy_test", "checkpoint", "spikes_per_inference", "energy", "samples", "wall_s"):
        assert key in first
    assert main(args + ["--epochs", "2"]) == 0           # resumes from last.pt: one more epoch
    _last_json(capsys)
    hist = json.loads((tmp_path / "metrics.json").read_text())
    assert hist["config"]["epochs"] == 2 and (tmp_path / "history.png").exists()
    import torch
    assert [h["epoch"] for h in torch.load(tmp_path / "last.pt", weights_only=False)["history"]] == [0, 1]


def test_a_moved_run_folder_still_verifies_and_exports(memcap_diff_curve, tmp_path, monkeypatch, capsys):
    """Checkpoints carry the artefact they were trained with: after the run folder moves, the
    artefact file is gone and the working directory changed, verify and export still run."""
    import shutil
    curve = tmp_path / "curve.json"
    shutil.copy(memcap_diff_curve, curve)
    assert main(["train", "memcap", "--curve", str(curve), "--hidden", "8", "--epochs", "1", "--limit", "200",
                 "--out", str(tmp_path / "run"), "--json"]) == 0
    _last_json(capsys)
    shutil.move(tmp_path / "run", tmp_path / "moved")
    curve.unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ck = str(tmp_path / "moved" / "checkpoint.pt")
    assert main(["verify", ck, "--samples", "1", "--workers", "1", "--json"]) == 0
    assert _last_json(capsys)["samples"] == 1
    assert main(["export", ck, "--nir", "net.nir", "--json"]) == 0
    assert (elsewhere / "net.nir").exists() and _last_json(capsys)["family"] == "memcap"
