"""Table-driven neuron vs LIF (exact), gradients by finite differences, built from a real artefact."""
import pytest

torch = pytest.importorskip("torch")

from neurospice.training.neurons import LIF, TableNeuron, interp2d  # noqa: E402


def _linear_tables(beta=0.8):
    v_axis = torch.linspace(-2, 3, 11, dtype=torch.float64)
    c_axis = torch.linspace(-1, 2, 7, dtype=torch.float64)
    grid = beta * v_axis[:, None] + c_axis[None, :]  # bilinear is exact on a linear map
    return v_axis, c_axis, grid


def test_linear_table_neuron_reproduces_lif_exactly():
    torch.manual_seed(0)
    v_axis, c_axis, grid = _linear_tables()
    table = TableNeuron(v_axis, c_axis, grid, grid, threshold=1.0)
    lif = LIF(beta=0.8, threshold=1.0)
    c = torch.rand(30, 64, dtype=torch.float64) * 0.6
    assert torch.equal(table.run(c), lif.run(c))


def test_interpolation_gradcheck():
    v_axis, c_axis, _ = _linear_tables()
    grid = torch.sin(v_axis[:, None]) * torch.cos(c_axis[None, :])
    v = (torch.rand(8, dtype=torch.float64) * 4 - 1.5).requires_grad_()
    c = (torch.rand(8, dtype=torch.float64) * 2.5 - 0.8).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: interp2d(grid, v_axis, c_axis, a, b), (v, c))


def test_state_dict_roundtrip():
    v_axis, c_axis, grid = _linear_tables()
    a = TableNeuron(v_axis, c_axis, grid, grid, threshold=1.0)
    b = TableNeuron(v_axis, c_axis, grid * 0, grid * 0, threshold=1.0)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.peak_grid, b.peak_grid)


def test_from_memcap_artefact_follows_ngspice(memcap_quick_kills, tmp_path):
    """The quick memcap artefact (made by the CLI test's session fixture) against ngspice."""
    from neurospice.characterize import memcap_recipes  # noqa: F401  (the fixture may come pickled
    from neurospice.characterize.artefact import load_artefact  # from the other test process)
    from neurospice.characterize.sweep import Sweep, run_sweep, PointCache
    neuron = TableNeuron.from_artefact(load_artefact(memcap_quick_kills["full"]["artefact"]))
    # independent check: ngspice at points *between* the grid nodes
    sw = Sweep("memcap", {"c_active_fF": [35.0, 95.0, 155.0, 300.0], "v_mem0_V": [0.1, 0.4],
                          "fan_in": [64]})
    res = run_sweep(sw, cache=PointCache(tmp_path / "c"), progress=False)
    for r in res.ok:
        c = torch.tensor([r.point["c_active_fF"]])
        v = torch.tensor([r.point["v_mem0_V"]])
        z, v_next = neuron(c, v)
        peak = interp2d(neuron.peak_grid, neuron.v_axis, neuron.c_axis, v, c)
        assert float(peak) == pytest.approx(r.result["v_mem_peak_V"], abs=0.01)
        if abs(r.result["v_mem_peak_V"] - neuron.threshold) > 0.02:  # clear of the threshold
            assert int(z) == r.result["spike"], r.point
        if not r.result["spike"] and not int(z):
            assert float(v_next) == pytest.approx(r.result["v_mem_end_V"], abs=0.01)
