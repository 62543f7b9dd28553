"""The family registry: a family defined here, in the test file (an RC-membrane LIF neuron on
the generic technology), runs through ``neurospice characterize / train / verify / export /
compare`` with no edit to the CLI, compare, report or NIR export; a family from another
package is found through the ``neurospice.families`` entry point.

References: the RC membrane's one-step response is analytic (``v_end = β·v0 + R(1−β)·I``,
``β = exp(−dt/RC)``), and ngspice re-simulates the trained neurons' steps."""
import json
import math
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from neurospice import registry
from neurospice.characterize.artefact import load_artefact, now_iso, save_artefact
from neurospice.characterize.recipes import register_recipe
from neurospice.characterize.sweep import Sweep, run_sweep
from neurospice.cli import main
from neurospice.files import sha256_file

DT_S, R_OHM, C_F = 100e-9, 1e6, 1e-12     # τ = RC = 1 µs, one step 100 ns
THETA_V = 0.5                             #: spike when the membrane reaches θ, then reset to 0
I_UNIT_A = 1e-6                           #: a weight of 1 is 1 µA per input spike


@register_recipe
@dataclass
class RCMembraneRecipe:
    """One step of an RC membrane from ``v0_V`` under a DC input current ``i_in_A``."""
    name: str = "test_rc_membrane"
    version: int = 1

    def build(self, point, tag, tech, options):
        from neurospice.characterize.recipes import _Piece
        text = (f"C_{tag} m_{tag} 0 {C_F:g} IC={point['v0_V']:.9g}\nR_{tag} m_{tag} 0 {R_OHM:g}\n"
                f"I_{tag} 0 m_{tag} DC {point['i_in_A']:.9g}")
        return _Piece(tag, text, [f"v(m_{tag})"])

    def analysis(self, piece, options):
        return f".tran {DT_S / 200:g} {DT_S:g} uic"

    def assemble(self, tech, pieces, temperature_C, options):
        body = "\n".join(p.text for p in pieces)
        saves = " ".join(s for p in pieces for s in p.saves)
        return f"* rc membrane\n{body}\n.save {saves}\n{self.analysis(None, options)}\n.end\n"

    def measure(self, plot, piece, point, options):
        return {"v_end_V": float(plot[f"v(m_{piece.tag})"][-1])}


def simulate_steps(points, workers=2):
    """ngspice: end-of-step membrane voltage for each ``{i_in_A, v0_V}``."""
    res = run_sweep(Sweep(recipe="test_rc_membrane", axes={}, point_list=points), workers=workers,
                    progress=False)
    return res, [r.result["v_end_V"] if r.status == "ok" else math.nan for r in res.results]


@dataclass
class RCTrainConfig:
    artefact: str = ""
    hidden: int = 16
    epochs: int = 4
    steps: int = 8
    lr: float = 0.2
    seed: int = 1
    limit: int | None = 600


class RCNet(torch.nn.Module):
    """inputs → hidden RC-LIF → output RC-LIF; u[t] = β·u[t−1] + g·I[t], reset to 0."""

    def __init__(self, sizes, beta, gain):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.sizes, self.beta, self.gain = sizes, beta, gain
        self.w = torch.nn.ParameterList([torch.nn.Parameter(torch.randn(a, b, generator=g) * 2 / math.sqrt(a))
                                         for a, b in zip(sizes[:-1], sizes[1:])])

    def forward(self, x, record=False):
        from neurospice.training.surrogate import triangle_spike
        rec = []
        for w in self.w:
            u = torch.zeros(x.shape[1], w.shape[1])
            out, starts, currents = [], [], []
            for x_t in x:
                i_t = (x_t @ w) * I_UNIT_A
                starts.append(u.detach())
                currents.append(i_t.detach())
                u = self.beta * u + self.gain * i_t
                z = triangle_spike(u - THETA_V, 1 / THETA_V, THETA_V)
                out.append(z)
                u = u * (1 - z.detach())
            x = torch.stack(out)
            rec.append({"spikes": x.detach(), "v0": torch.stack(starts), "i": torch.stack(currents)})
        return (x, rec) if record else x


def _data(cfg):
    from neurospice.training.datasets import encode, load_dataset, validation_split
    ds = load_dataset("digits", seed=cfg.seed, limit=cfg.limit)
    xtr, ytr, xva, yva = validation_split(ds.x_train, ds.y_train, 0.1, cfg.seed + 1)
    enc = lambda x: encode(torch.as_tensor(x), cfg.steps, "regular", max_rate=1.0)  # noqa: E731
    return ds, enc, (xtr, ytr), (xva, yva)


def _model(ck_or_cfg, sizes=None):
    art = load_artefact(ck_or_cfg.artefact)["summary"]
    return RCNet(sizes, art["beta"], art["gain_V_per_A"])


def accuracy(model, enc, x, y):
    from neurospice.training.neurons import decide
    with torch.no_grad():
        return float((decide(model(enc(x))) == torch.as_tensor(y)).float().mean())


def characterize_rc(out, workers=2) -> dict:
    t0 = time.time()
    axes = {"i_in_A": [float(v) for v in np.linspace(-2e-6, 6e-6, 5)], "v0_V": [0.0, 0.25, 0.5]}
    res = run_sweep(Sweep(recipe="test_rc_membrane", axes=axes), workers=workers, progress=False)
    pts = [(r.point["v0_V"], r.point["i_in_A"], r.result["v_end_V"]) for r in res.ok]
    a = np.array([[v0, i, 1.0] for v0, i, _ in pts])
    y = np.array([v for *_, v in pts])
    (beta, gain, offset), *_ = np.linalg.lstsq(a, y, rcond=None)
    rms = float(np.sqrt(np.mean((a @ [beta, gain, offset] - y) ** 2)) / np.ptp(y))
    art = save_artefact({"family": "rclif", "created": now_iso(),
                         "table": {"v0_V": a[:, 0].tolist(), "i_in_A": a[:, 1].tolist(), "v_end_V": y.tolist()},
                         "summary": {"beta": float(beta), "gain_V_per_A": float(gain), "offset_V": float(offset),
                                     "step_s": DT_S, "threshold_V": THETA_V}}, Path(out) / "rclif.json")
    return {"points": len(res.results), "failed": len(res.failed), "cached": res.n_cached,
            "artefact": str(art), "fit_rms": rms, "wall_s": time.time() - t0}


def train_rc(cfg: RCTrainConfig, out) -> dict:
    from neurospice.training.loop import TrainingRun, fit
    ds, enc, (xtr, ytr), (xva, yva) = _data(cfg)
    model = _model(cfg, [ds.n_inputs, cfg.hidden, ds.n_classes])

    def batches(gen):
        for idx in torch.randperm(len(ytr), generator=gen).split(64):
            yield enc(xtr[idx.numpy()]), torch.as_tensor(ytr[idx.numpy()])

    def loss(batch):
        s, y = batch
        counts = model(s).sum(0)
        return torch.nn.functional.cross_entropy(counts, y), int((counts.argmax(1) == y).sum()), len(y)
    fitted = fit(TrainingRun(family="rclif", config=cfg, model=model, batches=batches, loss=loss,
                             validate=lambda: accuracy(model, enc, xva, yva), sizes=model.sizes, lr=cfg.lr,
                             epochs=cfg.epochs, seed=cfg.seed), out, progress=False)
    return {"accuracy_test": accuracy(model, enc, ds.x_test, ds.y_test), "checkpoint": fitted["checkpoint"]}


def verify_rc(checkpoint, samples: int) -> dict:
    """Every hidden neuron's every step of ``samples`` test images re-simulated in ngspice
    from the model's start voltage under the model's input current."""
    from neurospice.training.checkpoint import read_checkpoint
    ck = read_checkpoint(checkpoint, "rclif")
    cfg = RCTrainConfig(**ck["config"])
    model = _model(cfg, ck["sizes"])
    model.load_state_dict(ck["state"])
    ds, enc, *_ = _data(cfg)
    with torch.no_grad():
        _, rec = model(enc(ds.x_test[:samples]), record=True)
    h = rec[0]
    pts = [{"v0_V": float(v), "i_in_A": float(i)} for v, i in zip(h["v0"].flatten(), h["i"].flatten())]
    _, v_end = simulate_steps(pts)
    circuit = (np.array(v_end) >= THETA_V).astype(float)
    return {"spike_agreement": float((circuit == h["spikes"].flatten().numpy()).mean()),
            "samples": samples, "neuron_steps": len(pts)}


class RCLIFFamily(registry.Family):
    name = "rclif"
    summary = "test family: RC-membrane LIF neuron (R, C, ideal current input) on the generic technology"
    order = 90
    trainable = True
    comparable = True
    variation = "weight spread σ_w/w per synapse"

    def characterize_targets(self):
        return {"rclif": "one step of the RC membrane over input current and start voltage"}

    def characterize(self, target, args):
        return characterize_rc(os.path.join(args.out, "rclif"), args.workers)

    def add_train_options(self, p):
        p.add_argument("--artefact", required=True)
        p.add_argument("--hidden", type=int, default=RCTrainConfig.hidden)
        p.add_argument("--epochs", type=int, default=RCTrainConfig.epochs)

    def train(self, args):
        return train_rc(RCTrainConfig(artefact=args.artefact, hidden=args.hidden, epochs=args.epochs),
                        args.out or "runs/train/rclif")

    def verify(self, checkpoint, args):
        return verify_rc(checkpoint, args.samples or 2)

    def nir_graph(self, ck):
        import nir
        from neurospice.training.nir_export import euler_lif
        cfg = RCTrainConfig(**ck["config"])
        s = load_artefact(cfg.artefact)["summary"]
        nodes, edges, prev = {"input": nir.Input(input_type={"input": np.array([ck["sizes"][0]])})}, [], "input"
        for k, w in enumerate(ck["state"][f"w.{j}"] for j in range(len(ck["sizes"]) - 1)):
            nodes[f"synapses{k}"] = nir.Linear(weight=(w.numpy().T * I_UNIT_A).astype(np.float32))
            nodes[f"neurons{k}"] = euler_lif(s["beta"], s["gain_V_per_A"], THETA_V, w.shape[1], DT_S)
            edges += [(prev, f"synapses{k}"), (f"synapses{k}", f"neurons{k}")]
            prev = f"neurons{k}"
        nodes["output"] = nir.Output(output_type={"output": np.array([ck["sizes"][-1]])})
        return nodes, edges + [(prev, "output")], {"dt_s": DT_S, "steps": cfg.steps}

    def compare_settings(self, c):
        return {"epochs": RCTrainConfig.epochs, "verify_samples": 1}

    def compare_row(self, c, out, progress=False):
        from neurospice.training.robustness import spread_curve
        art = characterize_rc(Path(out) / "artefacts" / "rclif", c.workers)["artefact"]
        cfg = RCTrainConfig(artefact=art, hidden=c.hidden, seed=c.seed)
        m = train_rc(cfg, Path(out) / "train" / "rclif")
        v = verify_rc(m["checkpoint"], 1)
        ck = torch.load(m["checkpoint"], weights_only=False)
        model = _model(cfg, ck["sizes"])
        ds, enc, *_ = _data(cfg)

        def at(spread, draw):
            g = torch.Generator().manual_seed(draw)
            model.load_state_dict(ck["state"])
            with torch.no_grad():
                for w in model.w:
                    w.mul_(1 + spread * torch.randn(w.shape, generator=g))
            return accuracy(model, enc, ds.x_test, ds.y_test)
        return {"accuracy_model": m["accuracy_test"], "neurons": sum(ck["sizes"][1:]), "layers": ck["sizes"],
                "steps": cfg.steps, "latency_per_inference_s": cfg.steps * DT_S, "clock_Hz": 1 / DT_S,
                "energy_counted": "not modelled in this test family",
                "circuit_check": {"kind": "hidden neurons' steps re-simulated in ngspice", "unit": "samples",
                                  "samples": v["samples"], "spike_agreement": v["spike_agreement"]},
                "robustness": spread_curve(at, c.spreads, c.draws), "artefact": art,
                "artefact_sha256": sha256_file(art), "checkpoint": m["checkpoint"],
                "checkpoint_sha256": sha256_file(m["checkpoint"])}

    def transfer(self, result, drives):
        beta = load_artefact(result["artefact"])["summary"]["beta"]
        u, spikes = np.zeros(len(drives)), np.zeros(len(drives))
        for _ in range(64):                   # a constant drive of d thresholds per step
            u = beta * u + np.asarray(drives) * THETA_V
            z = u >= THETA_V
            spikes += z
            u[z] = 0.0
        return np.asarray(drives), spikes / 64


@pytest.fixture
def rclif_family():
    fam = registry.register(RCLIFFamily)
    yield fam
    registry.unregister(fam.name)


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_a_family_defined_here_runs_every_verb(rclif_family, tmp_path, capsys):
    import nir
    # characterize: the fitted step matches the analytic RC response
    assert main(["characterize", "rclif", "--out", str(tmp_path / "runs"), "--workers", "2", "--json"]) == 0
    c = _last_json(capsys)
    assert c["points"] == 15 and c["failed"] == 0 and c["fit_rms"] < 1e-3
    s = load_artefact(c["artefact"])["summary"]
    beta = math.exp(-DT_S / (R_OHM * C_F))
    assert s["beta"] == pytest.approx(beta, rel=2e-3)
    assert s["gain_V_per_A"] == pytest.approx(R_OHM * (1 - beta), rel=2e-3)
    # train (the shared loop: best-validation checkpoint naming its family)
    assert main(["train", "rclif", "--artefact", c["artefact"], "--hidden", "12", "--out",
                 str(tmp_path / "train"), "--json"]) == 0
    t = _last_json(capsys)
    assert t["accuracy_test"] > 0.3
    assert torch.load(t["checkpoint"], weights_only=False)["family"] == "rclif"
    # verify: the checkpoint names its family; ngspice re-simulates the neurons' steps
    assert main(["verify", t["checkpoint"], "--samples", "2", "--json"]) == 0
    v = _last_json(capsys)
    assert v["neuron_steps"] == 2 * 8 * 12 and v["spike_agreement"] >= 0.97
    # export: NIR with the Euler reading of the fitted step
    assert main(["export", t["checkpoint"], "--nir", str(tmp_path / "net.nir"), "--json"]) == 0
    e = _last_json(capsys)
    g = nir.read(e["nir"])
    assert e["family"] == "rclif"
    np.testing.assert_allclose(g.nodes["neurons0"].tau, DT_S / (1 - s["beta"]), rtol=1e-5)
    # compare: the family beside nothing else, its row and report
    out = tmp_path / "cmp"
    assert main(["compare", "--families", "rclif", "--hidden", "8", "--draws", "2", "--spreads", "0,0.5",
                 "--out", str(out), "--json"]) == 0
    r = _last_json(capsys)["families"]["rclif"]
    assert r["latency_per_inference_ns"] == pytest.approx(8 * 100.0) and r["clock_MHz"] == pytest.approx(10.0)
    assert r["circuit_check"]["spike_agreement"] >= 0.97
    assert "| rclif |" in (out / "report.md").read_text()


def test_a_family_from_another_package_is_found_by_entry_point(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "tinyfam").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "tinyfam"
        version = "0.0.1"
        [project.entry-points."neurospice.families"]
        tinyfam = "tinyfam:TinyFamily"
        """))
    (pkg / "tinyfam" / "__init__.py").write_text(textwrap.dedent('''
        from neurospice.registry import Family

        class TinyFamily(Family):
            """An RC low-pass characterized with the built-in 'rc' recipe."""
            name = "tinyfam"
            summary = "plug-in test family"

            def characterize_targets(self):
                return {"tinyfam": "an RC low-pass at t = RC"}

            def characterize(self, target, args):
                from neurospice.characterize.sweep import Sweep, run_sweep
                res = run_sweep(Sweep(recipe="rc", axes={"r_ohm": [1e3], "c_F": [1e-12]}),
                                progress=False, workers=args.workers)
                return {"points": len(res.results), "v_at_tau_V": res.ok[0].result["v_at_tau_V"]}
        '''))
    site = tmp_path / "site"
    built = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                            "--target", str(site), str(pkg)], capture_output=True, text=True)
    if built.returncode != 0:        # no wheel builder offline here: install it as pip would lay it out
        import shutil
        shutil.copytree(pkg / "tinyfam", site / "tinyfam")
        info = site / "tinyfam-0.0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyfam\nVersion: 0.0.1\n")
        (info / "entry_points.txt").write_text("[neurospice.families]\ntinyfam = tinyfam:TinyFamily\n")
    env = dict(os.environ, PYTHONPATH=str(site))
    run = lambda *a: subprocess.run([sys.executable, "-m", "neurospice", *a, "--json"], cwd=tmp_path,  # noqa: E731
                                    env=env, capture_output=True, text=True, timeout=300)
    listed = run("families")
    assert listed.returncode == 0, listed.stderr
    fams = json.loads(listed.stdout.strip().splitlines()[-1])["families"]
    assert fams["tinyfam"]["module"] == "tinyfam" and {"memcap", "sfq", "qclif", "lif"} <= set(fams)
    ran = run("characterize", "tinyfam", "--workers", "1")
    assert ran.returncode == 0, ran.stderr
    r = json.loads(ran.stdout.strip().splitlines()[-1])
    assert r["points"] == 1 and r["v_at_tau_V"] == pytest.approx(1 - math.exp(-1), abs=0.01)


def test_unknown_family_and_checkpoint_family_are_named_errors(tmp_path):
    from neurospice.training.checkpoint import CheckpointError, checkpoint_family, save_checkpoint
    with pytest.raises(registry.FamilyError, match="unknown neuron family 'nope'.*memcap"):
        registry.get("nope")
    ck = save_checkpoint(tmp_path / "c.pt", "from-a-missing-plugin", config={}, state={})
    with pytest.raises(CheckpointError, match="from-a-missing-plugin.*installed"):
        checkpoint_family(ck)
