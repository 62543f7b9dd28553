"""qCLIF: golden model against hand arithmetic, the torch cell against the golden model, and the
sky130 transistor-level netlist against the golden model cycle by cycle (ngspice)."""

import numpy as np
import pytest

from neurospice.circuits.qclif import (QCLIFConfig, compare_float_integer, modulation_shift,
                                       random_inputs, run_cycles, step)
from neurospice.circuits.qclif_gates import build_circuit
from neurospice.circuits.technology import sky130_available


def test_step_matches_hand_arithmetic():
    cfg = QCLIFConfig()            # B=8: θ=64, V in [-128, 127], Va in [0, 255], d_a=1, k_s=4
    # Va=200 (≥128: ×1), V=40, no spike; S_a=10, S_s=30:
    #   Va' = 200+10-1 = 209;  acc = 40 - (40>>4=2) + 30 - 0 = 68 ≥ 64 -> spike, V'=68
    assert step(cfg, 200, 40, 0, 10, 30) == (209, 68, 1)
    # Va=100 (64..127: ×½), V=68 after a spike, S_s=-7 -> (-7>>1) = -4 (floor):
    #   acc = 68 - 4 - 4 - 64 = -4 -> V'=-4, z'=0;  Va' = 100 + 0 - 1 = 99
    assert step(cfg, 100, 68, 1, 0, -7) == (99, -4, 0)
    # Va=0: the soma gets no input however strong; V=-3: leak (-3>>4) = -1 -> acc = -2
    assert step(cfg, 0, -3, 0, 0, 500) == (0, -2, 0)
    # saturation: Va clips at 255 and 0, V at +127 / -128
    assert step(cfg, 250, 120, 0, 100, 400)[:2] == (255, 127)
    assert step(cfg, 5, -120, 1, -300, -400) == (0, -128, 0)


def test_modulation_levels_follow_leading_one():
    cfg = QCLIFConfig()
    va = np.array([1, 31, 32, 63, 64, 127, 128, 255])
    assert modulation_shift(cfg, va).tolist() == [3, 3, 2, 2, 1, 1, 0, 0]


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_torch_cell_is_bit_exact_with_golden(bits):
    torch = pytest.importorskip("torch")
    from neurospice.training.qclif_net import QCLIFCell
    cfg = QCLIFConfig.for_bits(bits)
    rng = np.random.default_rng(bits)
    n = 50_000
    lo, hi = cfg.bus_range
    arrays = (rng.integers(0, cfg.va_max + 1, n), rng.integers(*cfg.v_range, n, endpoint=True),
              rng.integers(0, 2, n), rng.integers(lo, hi + 1, n), rng.integers(lo, hi + 1, n))
    golden = step(cfg, *arrays)
    cell = QCLIFCell(cfg)(*(torch.tensor(a, dtype=torch.float32) for a in arrays))
    for g, c in zip(golden, cell):
        assert np.array_equal(g, c.numpy().astype(np.int64))


def test_surrogate_gradients_flow_through_the_integer_cell():
    torch = pytest.importorskip("torch")
    from neurospice.training.qclif_net import QCLIFRSNN
    model = QCLIFRSNN(6, 16, 3, n_context=2, cfg=QCLIFConfig(), seed=0)
    x = (torch.rand(5, 4, 6) < 0.5).float()
    c = torch.ones(5, 4, 2)
    loss = model(x, c)["logits"].sum()
    loss.backward()
    for name in ("w_s", "w_s_rec", "w_a", "b_a", "w_o"):
        assert getattr(model, name).grad.abs().sum() > 0, name


def test_float_clif_and_qclif_agree_qualitatively():
    r = compare_float_integer()
    quiet = slice(0, 10)             # before the context pulse: no apical drive, no spikes
    assert r["q_z"][quiet].sum() == 0 and r["f_z"][quiet].sum() == 0
    assert r["q_z"].sum() > 5 and r["f_z"].sum() > 5
    assert abs(r["q_z"].sum() - r["f_z"].sum()) <= 0.5 * r["f_z"].sum()


@pytest.mark.parametrize("bits", [4, 6, 8, 10])
def test_netlist_generates_for_each_width(bits):
    c = build_circuit(QCLIFConfig.for_bits(bits))
    assert len(c.registers["va"]) == bits and len(c.registers["v"]) == bits
    assert c.cell_counts()["dfrtp_1"] == 2 * bits + 1
    with pytest.raises(ValueError):
        QCLIFConfig(bits=3)


def test_inputs_outside_their_range_are_refused():
    cfg = QCLIFConfig()
    inp = random_inputs(cfg, 5)
    inp.w_s[0] = 200
    with pytest.raises(ValueError, match="w_s outside"):
        run_cycles(cfg, inp)


@pytest.mark.parametrize("bits", [4, 8])
def test_gate_level_netlist_in_ngspice_is_bit_exact(bits):
    """The generated netlist as XSPICE gates in ngspice against the golden model, 300 cycles."""
    from neurospice.characterize.qclif_sim import simulate_gate_level
    cfg = QCLIFConfig.for_bits(bits)
    inp = random_inputs(cfg, 300, seed=bits)
    circ, gold = simulate_gate_level(inp, cfg), run_cycles(cfg, inp)
    for k in ("va", "v", "z"):
        np.testing.assert_array_equal(circ[k], gold[k], err_msg=k)
    assert gold["z"].sum() > 10 and len(set(gold["v"].tolist())) > 2 ** bits // 2   # exercises the logic


def test_gate_level_check_catches_a_wrong_gate(monkeypatch):
    """The comparison can fail: one carry gate of the soma adder changed (and2 → or2)."""
    import neurospice.characterize.qclif_sim as cq
    from neurospice.circuits import qclif_gates as q
    real = q.build_circuit

    def broken(cfg):
        c = real(cfg)
        k = next(i for i, (_, kind, _) in enumerate(c.gates.instances) if kind == "fa_1")
        name, _, pins = c.gates.instances[k]
        c.gates.instances[k] = (name, "or2_1", (pins[0], pins[1], pins[3]))   # COUT = A | B
        return c
    monkeypatch.setattr(cq, "build_circuit", broken)
    cfg = QCLIFConfig()
    inp = random_inputs(cfg, 100, seed=1)
    circ, gold = cq.simulate_gate_level(inp, cfg), run_cycles(cfg, inp)
    assert any(not np.array_equal(circ[k], gold[k]) for k in ("va", "v", "z"))


@pytest.mark.sky130
@pytest.mark.slow
def test_spice_6bit_neuron_is_bit_exact(tmp_path):
    """A second width through the generator: 6 bits, 60 random cycles of the generated netlist
    as ngspice XSPICE gates (the 8-bit netlist is checked at transistor level above; the
    logic is what changes with the width)."""
    from neurospice.characterize.qclif_sim import simulate_gate_level
    cfg = QCLIFConfig.for_bits(6)
    inp = random_inputs(cfg, 60, seed=5)
    regs, gold = simulate_gate_level(inp, cfg), run_cycles(cfg, inp)
    for k in ("va", "v", "z"):
        assert np.array_equal(regs[k], gold[k]), k
    assert regs["z"].sum() > 0


@pytest.mark.sky130
@pytest.mark.slow
def test_spice_at_1v6_is_bit_exact():
    """tt / 1.6 V, 12 random cycles at 50 MHz: with ngspice's trapezoidal rule a flip-flop's
    internal node rang to −1.29 V here and its latch flipped (cycles 8–11 wrong); the deck's
    integration method (gear) must keep the golden registers."""
    from neurospice.characterize.qclif_sim import simulate
    cfg = QCLIFConfig()
    r = simulate(random_inputs(cfg, 12, seed=2000), cfg, period_s=20e-9, vdd_V=1.6)
    assert r.bit_exact, r.mismatches


@pytest.fixture(scope="module")
def characterized(tmp_path_factory):
    if not sky130_available():
        pytest.skip("sky130 PDK not found (neurospice fetch-pdk)")
    from neurospice.characterize.qclif import characterize_qclif
    out = tmp_path_factory.mktemp("qclif")
    # two chunks of 25 cycles, one per worker (~4 core-s a cycle; the full characterization's
    # 200 cycles are README figures of ``neurospice characterize qclif``; 50 random cycles from
    # this seed saturate the adaptation register, empty it, and spike 13 times)
    return characterize_qclif(quick=True, cycles=50, out=out, workers=2), out


@pytest.mark.sky130
@pytest.mark.slow
def test_spice_is_bit_exact_over_50_random_cycles(characterized):
    """sky130 tt, 1.8 V, 100 MHz, transistor level: every register every cycle equals the
    golden model (the independent reference), and both compartments were exercised."""
    r, out = characterized
    assert r["bit_exact"] is True and r["cycles"] >= 50
    assert len(r["chunks"]) == 2
    assert r["nominal"]["spikes"] > 10
    chunks = r["chunks"]
    va = np.concatenate([c["registers"]["va"] for c in chunks])
    assert va.max() == 255 and (va == 0).sum() > 0 and len(np.unique(va)) > 20


@pytest.mark.sky130
@pytest.mark.slow
def test_characterize_reports_energy_speed_area(characterized):
    r, out = characterized
    for key in ("bit_exact", "cycles", "energy_per_spike_pJ", "fmax_MHz", "leakage_nW",
                "transistors", "area_um2"):
        assert key in r, key
    assert r["fmax_MHz"] > 100                       # it was bit-exact at 100 MHz
    assert 0 < r["nominal"]["energy_per_cycle_idle_pJ"] < r["nominal"]["energy_per_cycle_active_pJ"]
    assert 0 < r["leakage_nW"] < 1e3
    assert r["transistors"] > 1000 and r["area_um2"] > 1000
    assert (out / "qclif.png").exists() and (out / "qclif.json").exists()
