"""Bring your own neuron (family ``custom``): a neuron netlist that is not the shipped one,
written here with its TOML, through characterize → train → verify; the table model against
an analytic RC solution, the torch cell against the numpy golden model, a PySpice SubCircuit
against the same netlist as a file, and every bad input refused with nothing written."""
from __future__ import annotations

import io
import json
import math
import os
import stat
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from neurospice.circuits.technology import sky130_available

#: the test neuron: an RC-leaky membrane (internal node ``mem``), an inverter comparator with a
#: positive-feedback pull-up, and a reset NMOS behind an RC delay — not the shipped Axon-Hillock
RC_NEURON = """* test neuron (tests/test_custom_neuron.py)
.subckt rc_neuron vdd iin spk vss
Rin iin mem 10
Cm mem vss 150f
Rleak mem vss 2meg
{m}p1 a mem vdd vdd {p} {wp1}
{m}n1 a mem vss vss {n} {wn}
{m}p2 spk a vdd vdd {p} {wp1}
{m}n2 spk a vss vss {n} {wn}
{m}fb mem a vdd vdd {p} {wfb}
Rd spk g 20k
Cd g vss 20f
{m}r mem g vss vss {n} {wr}
.ends rc_neuron
"""
GENERIC = dict(m="M", p="gpmos", n="gnmos", wp1="w=1u l=0.18u", wn="w=0.5u l=0.18u", wfb="w=0.5u l=0.18u",
               wr="w=4u l=0.18u")
SKY130 = dict(m="X", p="sky130_fd_pr__pfet_01v8", n="sky130_fd_pr__nfet_01v8", wp1="w=1 l=0.15", wn="w=0.5 l=0.15",
              wfb="w=0.42 l=0.15", wr="w=4 l=0.15")
R_LEAK_OHM, C_MEM_F, STEP_S = 2e6, 150e-15, 50e-9

TOML = """[neuron]
netlist = "rc_neuron.sp"
subckt = "rc_neuron"
technology = "{technology}"
membrane = "mem"
step_s = 50e-9
[pins]
vdd = {{ dc_V = 1.8 }}
iin = "input"
spk = "spike"
vss = "ground"
[spike]
level_V = 0.9
[ranges]
input_A = {input_A}
membrane_V = [-0.1, 0.7]
[grid]
membrane_points = {rows}
input_points = {cols}
"""


def write_neuron(folder: Path, technology="generic", input_A="[-1e-6, 2e-6]", rows=9, cols=13,
                 netlist: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    devices = SKY130 if technology == "sky130" else GENERIC
    (folder / "rc_neuron.sp").write_text(netlist if netlist is not None else RC_NEURON.format(**devices))
    toml = folder / "rc_neuron.toml"
    toml.write_text(TOML.format(technology=technology, input_A=input_A, rows=rows, cols=cols))
    return toml


def cli(*argv) -> tuple[int, dict]:
    from neurospice.cli import main
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main([*argv, "--json"])
    return rc, json.loads(buf.getvalue().strip().splitlines()[-1])


@pytest.fixture(scope="module")
def generic_run(tmp_path_factory):
    """characterize → train → verify of the test neuron on the generic technology, by the CLI."""
    root = tmp_path_factory.mktemp("custom")
    toml = write_neuron(root / "neuron")
    rc, ch = cli("characterize", "custom", "--neuron", str(toml), "--workers", "2", "--out", str(root / "runs"))
    assert rc == 0, ch
    rc, tr = cli("train", "custom", "--neuron", str(toml), "--artefact", ch["artefact"], "--epochs", "2",
                 "--hidden", "16", "--steps", "8", "--limit", "400", "--out", str(root / "train"))
    assert rc == 0, tr
    rc, ve = cli("verify", tr["checkpoint"], "--samples", "3", "--hidden-neurons", "4", "--workers", "2")
    assert rc == 0, ve
    return {"toml": toml, "characterize": ch, "train": tr, "verify": ve, "root": root}


def test_characterize_keys_and_artefact(generic_run):
    from neurospice.characterize.artefact import load_artefact
    ch = generic_run["characterize"]
    for k in ("points", "failed", "cached", "artefact", "fit_rms", "wall_s"):
        assert k in ch
    assert ch["failed"] == 0 and ch["points"] > 9 * 13
    a = load_artefact(ch["artefact"])
    import hashlib
    assert a["provenance"]["netlist_hash"] == hashlib.sha256(a["neuron"]["netlist_text"].encode()).hexdigest()
    assert "outlives a step" in a["limits"] and a["state_check"]["sequences"] > 0
    assert Path(ch["figure"]).is_file()


def test_quiet_cells_match_the_rc_solution(generic_run):
    """Below the comparator's threshold every transistor on the membrane is off: the membrane
    is the RC low-pass, ``v(T) = iR + (v0 − iR)·exp(−T/RC)`` (an analytic reference)."""
    from neurospice.characterize.artefact import load_artefact
    t = load_artefact(generic_run["characterize"]["artefact"])["table"]
    v_axis, i_axis = np.array(t["v_mem0_V"]), np.array(t["i_in_A"])
    checked = 0
    for r, v0 in enumerate(v_axis):
        for c, i in enumerate(i_axis):
            expect = i * R_LEAK_OHM + (v0 - i * R_LEAK_OHM) * math.exp(-STEP_S / (R_LEAK_OHM * C_MEM_F))
            if 0.0 <= v0 and 0.0 <= expect <= 0.4:
                assert t["spike"][r][c] == 0
                assert t["v_end_V"][r][c] == pytest.approx(expect, abs=0.015), (v0, i)
                checked += 1
    assert checked >= 10


def test_torch_cell_reproduces_the_golden_table_model(generic_run):
    import torch
    from neurospice.characterize.artefact import load_artefact
    from neurospice.circuits.custom_model import TableModel
    from neurospice.training.custom_net import CustomNeuron
    art = load_artefact(generic_run["characterize"]["artefact"])
    golden, cell = TableModel(art["model"]), CustomNeuron(art)
    rng = np.random.default_rng(3)
    v = rng.uniform(-0.2, 0.8, 2000)
    i = rng.uniform(-1.5e-6, 2.5e-6, 2000)
    z, v_next, e = golden.step(v, i)
    with torch.no_grad():
        zt, vt, et = cell(torch.tensor(i * 1e6, dtype=torch.float32), torch.tensor(v, dtype=torch.float32),
                          energy=True)
    near = np.abs(i - golden.firing_current(v)) < 1e-9     # float32 may round across the boundary
    assert np.array_equal(zt.numpy()[~near], z[~near])
    assert np.allclose(vt.numpy()[~near], v_next[~near], atol=2e-5)
    assert np.allclose(et.numpy()[~near] * 1e-12, e[~near], rtol=1e-4, atol=1e-18)


def test_train_and_verify_against_ngspice(generic_run):
    tr, ve = generic_run["train"], generic_run["verify"]
    for k in ("accuracy_test", "checkpoint", "wall_s"):
        assert k in tr
    for k in ("spike_agreement", "samples", "layers", "accuracy_circuit"):
        assert k in ve
    assert ve["samples"] == 3 and {lay["role"] for lay in ve["layers"]} == {"hidden", "output"}
    # the test neuron's reset leaves state behind (its RC delay): agreement is high, not perfect
    assert ve["spike_agreement"] >= 0.9


def test_export_writes_nir(generic_run, tmp_path):
    rc, ex = cli("export", generic_run["train"]["checkpoint"], "--nir", str(tmp_path / "n.nir"))
    assert rc == 0 and ex["family"] == "custom" and (tmp_path / "n.nir").is_file()


def test_custom_in_compare_by_description(generic_run):
    from neurospice import registry
    from neurospice.training.compare import CompareConfig
    fam = registry.get(f"custom:{generic_run['toml']}")
    assert fam.comparable and fam.name == f"custom:{generic_run['toml']}"
    CompareConfig(families=(f"custom:{generic_run['toml']}", "lif"))     # accepted
    from neurospice.circuits.errors import ConfigError
    with pytest.raises(ConfigError, match="not found"):
        registry.get("custom:/nonexistent/neuron.toml")


def test_pyspice_subcircuit_gives_the_same_tables(generic_run, tmp_path):
    from PySpice.Spice.Netlist import SubCircuit
    from neurospice.characterize.artefact import load_artefact
    from neurospice.characterize.custom import characterize_custom
    from neurospice.circuits.custom import neuron_from_pyspice
    s = SubCircuit("rc_neuron", "vdd", "iin", "spk", "vss")
    s.R("in", "iin", "mem", 10)
    s.C("m", "mem", "vss", 150e-15)
    s.R("leak", "mem", "vss", 2e6)
    for name, d, g, src, kind, w in (("p1", "a", "mem", "vdd", "gpmos", 1e-6), ("n1", "a", "mem", "vss", "gnmos", 0.5e-6),
                                    ("p2", "spk", "a", "vdd", "gpmos", 1e-6), ("n2", "spk", "a", "vss", "gnmos", 0.5e-6),
                                    ("fb", "mem", "a", "vdd", "gpmos", 0.5e-6), ("r", "mem", "g", "vss", "gnmos", 4e-6)):
        s.MOSFET(name, d, g, src, src, model=kind, w=w, l=0.18e-6)
    s.R("d", "spk", "g", 20e3)
    s.C("d", "g", "vss", 20e-15)
    spec = neuron_from_pyspice(s, technology="generic", membrane="mem", step_s=50e-9,
                               pins={"vdd": {"dc_V": 1.8}, "iin": "input", "spk": "spike", "vss": "ground"},
                               spike={"level_V": 0.9}, ranges={"input_A": [-1e-6, 2e-6], "membrane_V": [-0.1, 0.7]},
                               grid={"membrane_points": 9, "input_points": 13})
    r = characterize_custom(spec, workers=2, out=tmp_path, progress=False)
    mine = load_artefact(r["artefact"])["table"]
    ref = load_artefact(generic_run["characterize"]["artefact"])["table"]
    assert mine["spike"] == ref["spike"]
    assert np.allclose(mine["v_end_V"], ref["v_end_V"], atol=1e-6)
    assert np.allclose(mine["energy_J"], ref["energy_J"], rtol=1e-6, atol=1e-20)


@pytest.mark.skipif(not sky130_available(), reason="sky130 PDK not present (neurospice fetch-pdk)")
def test_second_neuron_on_sky130(tmp_path):
    toml = write_neuron(tmp_path / "neuron", technology="sky130", rows=5, cols=7)
    rc, ch = cli("characterize", "custom", "--neuron", str(toml), "--workers", "2", "--out", str(tmp_path / "runs"))
    assert rc == 0 and ch["failed"] == 0 and ch["technology"] == ["sky130/tt"], ch
    rc, tr = cli("train", "custom", "--neuron", str(toml), "--artefact", ch["artefact"], "--epochs", "1",
                 "--hidden", "8", "--steps", "6", "--limit", "200", "--out", str(tmp_path / "train"))
    assert rc == 0, tr
    rc, ve = cli("verify", tr["checkpoint"], "--samples", "2", "--hidden-neurons", "2", "--workers", "2")
    assert rc == 0 and ve["technology"] == ["sky130/tt"] and ve["spike_agreement"] >= 0.85, ve


# -- bad input: a named error saying what to fix, and nothing written ------------------------
def _break(folder: Path, what: str) -> Path:
    toml = write_neuron(folder)
    text = toml.read_text()
    if what == "missing_netlist":
        (folder / "rc_neuron.sp").unlink()
    elif what == "subckt":
        toml.write_text(text.replace('subckt = "rc_neuron"', 'subckt = "axon"'))
    elif what == "unknown_pin":
        toml.write_text(text.replace('iin = "input"', 'iin = "input"\nbias = { dc_V = 0.5 }'))
    elif what == "pin_without_role":
        toml.write_text(text.replace('vss = "ground"\n', ""))
    elif what == "model":
        (folder / "rc_neuron.sp").write_text(RC_NEURON.format(**{**GENERIC, "n": "nfet_lvt"}))
    elif what == "empty_range":
        toml.write_text(text.replace("input_A = [-1e-6, 2e-6]", "input_A = [1e-6, 1e-6]"))
    elif what == "inverted_range":
        toml.write_text(text.replace("membrane_V = [-0.1, 0.7]", "membrane_V = [0.7, -0.1]"))
    elif what == "never_spikes":
        toml.write_text(text.replace("input_A = [-1e-6, 2e-6]", "input_A = [-1e-6, 1e-7]"))
    elif what == "always_spikes":
        toml.write_text(text.replace("input_A = [-1e-6, 2e-6]", "input_A = [4e-5, 5e-5]"))
    elif what == "toml_syntax":
        toml.write_text(text.replace("[pins]", "[pins"))
    return toml


BAD = {"missing_toml": "neuron description .* not found",
       "missing_netlist": r"netlist: file .*rc_neuron.sp not found",
       "subckt": "subcircuit 'axon' is not in the netlist .*rc_neuron",
       "unknown_pin": "names pin 'bias', which subcircuit rc_neuron does not have .*vdd iin spk vss",
       "pin_without_role": "pin\\(s\\) vss of rc_neuron have no role",
       "model": "model\\(s\\) nfet_lvt .* not in technology 'generic'",
       "empty_range": r"input_A = \[1e-06, 1e-06\] is empty or inverted",
       "inverted_range": r"membrane_V = \[0.7, -0.1\] is empty or inverted",
       "never_spikes": r"never spikes over the characterized range \(input -1e-06…1e-07 A",
       "always_spikes": r"always spikes over the characterized range \(input 4e-05…5e-05 A",
       "toml_syntax": "not valid TOML"}


@pytest.mark.parametrize("what", sorted(BAD))
def test_bad_neuron_input_is_refused_and_nothing_written(what, tmp_path):
    toml = tmp_path / "missing.toml" if what == "missing_toml" else _break(tmp_path / "neuron", what)
    out = tmp_path / "runs"
    rc, res = cli("characterize", "custom", "--neuron", str(toml), "--workers", "1", "--out", str(out))
    assert rc == 2 and res["error"] in ("ConfigError", "CharacterizationError"), res
    import re
    assert re.search(BAD[what], res["message"]), res["message"]
    assert not list(out.rglob("custom.json")) and not list(out.rglob("*.png"))


def test_a_point_that_does_not_converge_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    """An ngspice that fails to converge whenever the input current is 1 µA: those grid points
    are recorded with the reason, the rest of the characterization completes."""
    import shutil
    real = shutil.which("ngspice")
    wrapper = tmp_path / "ngspice"
    wrapper.write_text(f"""#!/bin/sh
for a in "$@"; do last="$a"; done
if [ -f "$last" ] && grep -q "DC 1e-06$" "$last"; then
  echo "doAnalyses: TRAN:  Timestep too small; time = 1e-09, timestep = 1e-20: trouble with node"; exit 1
fi
exec {real} "$@"
""")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("NEUROSPICE_NGSPICE", str(wrapper))
    monkeypatch.setenv("NEUROSPICE_CACHE", str(tmp_path / "cache"))
    from neurospice.characterize.artefact import load_artefact
    from neurospice.characterize.custom import characterize_custom
    toml = write_neuron(tmp_path / "neuron", input_A="[-1e-6, 2e-6]", rows=5, cols=7)   # 1 µA is a column
    r = characterize_custom(toml, workers=1, out=tmp_path / "runs", progress=False)
    assert r["failed"] == 5
    art = load_artefact(r["artefact"])
    assert len(art["failed_points"]) == 5
    assert all(p["i_in_A"] == pytest.approx(1e-6) and "timestep too small" in p["reason"].lower()
               for p in art["failed_points"])
    assert os.path.exists(r["artefact"])


def test_corners_temperatures_and_monte_carlo_through_the_runner(tmp_path):
    """The grid again at another corner and temperature and per mismatch sample (generic:
    Pelgrom shifts per transistor): each summarized against the nominal table."""
    from neurospice.characterize.artefact import load_artefact
    from neurospice.characterize.custom import characterize_custom
    toml = write_neuron(tmp_path / "neuron", rows=5, cols=9)
    r = characterize_custom(toml, corners=("tt", "ss", "ff"), temperatures_C=(27.0,), mc_samples=3,
                            workers=2, out=tmp_path / "runs", progress=False)
    var = load_artefact(r["artefact"])["variation"]
    assert set(var) == {"ss/27C", "ff/27C", "monte_carlo"}
    mc = var["monte_carlo"]
    assert mc["samples"] == 3 and len(mc["spike_cells_differing"]) == 3 and "Pelgrom" in mc["mismatch_model"]
    assert all(0 <= x <= 1 for x in mc["spike_cells_differing"])
    assert len(set(mc["v_end_rms_diff_V"])) == 3          # three different chips
    assert var["ss/27C"]["v_end_rms_diff_V"] != var["ff/27C"]["v_end_rms_diff_V"]
    assert var["ss/27C"]["spike_cells_differing"] > 0 or var["ff/27C"]["spike_cells_differing"] > 0


def test_export_of_a_network_with_a_spread_is_reproducible(generic_run):
    """A checkpoint trained with a synapse-current spread exports one fixed chip: twice the same."""
    from neurospice.training.custom_family import custom_graph
    from neurospice.training.custom_train import load_checkpoint
    ck = load_checkpoint(generic_run["train"]["checkpoint"])
    ck["config"] = {**ck["config"], "current_sigma": 0.2}
    a, b = custom_graph(ck)[0], custom_graph(ck)[0]
    assert np.array_equal(a["synapses0"].weight, b["synapses0"].weight)


def test_custom_reads_its_class_with_decide(generic_run, monkeypatch):
    """The decision-rule check of ``test_decision_rule`` for this family (its tables are this
    file's run): ``decide`` replaced by a spy answering class 3 → accuracy = share of label 3."""
    from test_decision_rule import K, spy_on_decide
    from neurospice.training import custom_train
    ck = custom_train.load_checkpoint(generic_run["train"]["checkpoint"])
    model, cfg, _ = custom_train.model_from_checkpoint(ck)
    x = np.random.default_rng(0).random((30, model.sizes[0])).astype(np.float32)
    y = np.arange(30) % 10
    calls = spy_on_decide(monkeypatch, custom_train)
    acc = custom_train.evaluate(model, x, y, cfg, seed=1)["accuracy"]
    assert calls and sum(calls) == len(y)
    assert acc == np.mean(y == K)
