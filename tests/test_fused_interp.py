"""The fused table lookup (``interp2d_many``, ``interp1d``) and the table neurons' steps
against the unfused original, on both paths: compiled (``training/native.py``) and PyTorch.

The reference is a private copy of the original implementation (autograd through ``clamp``,
``searchsorted``, gathers and the bilinear formula), kept here so that it cannot drift with
the code under test: forward bit-for-bit, gradients allclose, finite differences in float64,
and whole DiffNeuron / TableNeuron steps old against new. Every test runs twice (fixture
``path``): with the compiled step, and with it switched off.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from neurospice.training import native  # noqa: E402
from neurospice.training.memcap_net import DiffNeuron, surrogate_half_width_V  # noqa: E402
from neurospice.training.neurons import (TableNeuron, interp1d, interp2d,  # noqa: E402
                                         interp2d_many)
from neurospice.training.surrogate import triangle_spike  # noqa: E402


@pytest.fixture(autouse=True, params=["compiled", "pytorch"])
def path(request, monkeypatch):
    """Which path the code under test takes (neurons are made inside each test, so none has
    its compiled tables cached from the other path)."""
    if request.param == "pytorch":
        monkeypatch.setattr(native, "library", lambda: None)
    elif native.library() is None:
        pytest.fail(f"the compiled neuron step is not available here: {native.status()}")
    return request.param


# -- the reference: the original, unfused implementation ----------------------------------
def _interp2d_old(grid, v_axis, c_axis, v, c):
    out_dtype = torch.promote_types(v.dtype, c.dtype)
    if out_dtype != grid.dtype:
        return _interp2d_old(grid, v_axis, c_axis, v.to(grid.dtype), c.to(grid.dtype)).to(out_dtype)
    v = v.clamp(v_axis[0], v_axis[-1])
    c = c.clamp(c_axis[0], c_axis[-1])
    iv = torch.searchsorted(v_axis, v.detach().contiguous(), right=True).clamp(1, len(v_axis) - 1)
    ic = torch.searchsorted(c_axis, c.detach().contiguous(), right=True).clamp(1, len(c_axis) - 1)
    v0, v1 = v_axis[iv - 1], v_axis[iv]
    c0, c1 = c_axis[ic - 1], c_axis[ic]
    tv = (v - v0) / (v1 - v0)
    tc = (c - c0) / (c1 - c0)
    g00, g01 = grid[iv - 1, ic - 1], grid[iv - 1, ic]
    g10, g11 = grid[iv, ic - 1], grid[iv, ic]
    return (g00 * (1 - tv) * (1 - tc) + g01 * (1 - tv) * tc + g10 * tv * (1 - tc) + g11 * tv * tc)


def _offset_old(n, v_neg):
    x = v_neg.to(n.th_v.dtype).clamp(n.th_v[0], n.th_v[-1])
    i = torch.searchsorted(n.th_v, x.detach().contiguous(), right=True).clamp(1, len(n.th_v) - 1)
    t = (x - n.th_v[i - 1]) / (n.th_v[i] - n.th_v[i - 1])
    return (n.th_off[i - 1] * (1 - t) + n.th_off[i] * t).to(v_neg.dtype)


def _diff_step_old(n, c_pos, c_neg, state, offset_error=None):
    vp, vn = state
    pp = _interp2d_old(n.peak, n.v_axis, n.c_axis, vp, c_pos)
    pn = _interp2d_old(n.peak, n.v_axis, n.c_axis, vn, c_neg)
    margin = pp - pn - _offset_old(n, pn)
    if offset_error is not None:
        margin = margin - offset_error
    z = triangle_spike(margin, n.gamma, n.width)
    ep = _interp2d_old(n.end, n.v_axis, n.c_axis, vp, c_pos)
    en = _interp2d_old(n.end, n.v_axis, n.c_axis, vn, c_neg)
    return z, ((1 - z) * ep, z * n.v_ref + (1 - z) * en), margin


def _table_step_old(n, c, v):
    peak = _interp2d_old(n.peak_grid, n.v_axis, n.c_axis, v, c)
    z = triangle_spike(peak - n.threshold, n.gamma, n.width)
    return z, (1 - z) * _interp2d_old(n.end_grid, n.v_axis, n.c_axis, v, c)


# -- tables shaped like the real memcap_diff artefact ------------------------------------
C_AXIS = [0.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 130.0, 160.0, 200.0, 250.0, 300.0, 400.0, 500.0, 640.0]
V_AXIS = [float(v) for v in np.linspace(0, 1.0, 11)]


def _layer_table():
    """A saturating charge-sharing surface: 11 start voltages × 15 active capacitances."""
    v0, c = np.meshgrid(V_AXIS, C_AXIS, indexing="ij")
    peak = v0 + (1.45 - v0) * c / (c + 130.0)
    end = np.maximum(peak - 0.1 * np.tanh(peak / 0.2), 0.0)
    return {"v_mem0_V": V_AXIS, "c_active_fF": C_AXIS, "v_mem_peak_V": peak.tolist(),
            "v_mem_end_V": end.tolist()}


THRESHOLD = {"v_neg_V": [0.0, 0.3, 0.6, 0.9], "offset_V": [0.041, 0.0475, 0.056, 0.07]}


def _diff_neuron():
    table = _layer_table()
    return DiffNeuron(table, THRESHOLD, 0.3, surrogate_half_width_V(table, 18.0))


def _axes_grids(dtype):
    t = _layer_table()
    return (torch.tensor(t["v_mem0_V"], dtype=dtype), torch.tensor(t["c_active_fF"], dtype=dtype),
            torch.tensor(t["v_mem_peak_V"], dtype=dtype), torch.tensor(t["v_mem_end_V"], dtype=dtype))


def _points(n, dtype, seed, v_axis, c_axis):
    """Random points over and beyond the axes, plus every node, the edges and beyond them."""
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(n, generator=g, dtype=torch.float64) * 1.6 - 0.3
    c = torch.rand(n, generator=g, dtype=torch.float64) * 900 - 100
    vv, cc = torch.meshgrid(torch.cat([v_axis.double(), torch.tensor([-0.5, 1.5], dtype=torch.float64)]),
                            torch.cat([c_axis.double(), torch.tensor([-5.0, 700.0], dtype=torch.float64)]),
                            indexing="ij")
    return torch.cat([v, vv.flatten()]).to(dtype), torch.cat([c, cc.flatten()]).to(dtype)


# -- forward: bit for bit ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_is_bit_for_bit_the_original(dtype):
    v_axis, c_axis, peak, end = _axes_grids(dtype)
    v, c = _points(5000, dtype, 0, v_axis, c_axis)
    got = interp2d_many((peak, end), v_axis, c_axis, v, c)
    assert torch.equal(got[0], _interp2d_old(peak, v_axis, c_axis, v, c))
    assert torch.equal(got[1], _interp2d_old(end, v_axis, c_axis, v, c))
    assert torch.equal(interp2d(end, v_axis, c_axis, v, c), _interp2d_old(end, v_axis, c_axis, v, c))
    # 2-D state, broadcast points, and NaN where the original has NaN
    v2, c2 = v[:4000].view(40, 100), c[:4000].view(40, 100)
    assert torch.equal(interp2d(peak, v_axis, c_axis, v2, c2), _interp2d_old(peak, v_axis, c_axis, v2, c2))
    vb, cb = v[:30, None], c[None, 100:170]
    assert torch.equal(interp2d(peak, v_axis, c_axis, vb, cb), _interp2d_old(peak, v_axis, c_axis, vb, cb))
    vn = torch.tensor([float("nan"), 0.5, 0.2], dtype=dtype)
    cn = torch.tensor([50.0, float("nan"), 30.0], dtype=dtype)
    a, b = interp2d(peak, v_axis, c_axis, vn, cn), _interp2d_old(peak, v_axis, c_axis, vn, cn)
    assert torch.equal(a.isnan(), b.isnan()) and torch.equal(a[2], b[2])


def test_scalar_and_empty_points():
    v_axis, c_axis, peak, end = _axes_grids(torch.float32)
    v, c = torch.tensor(0.37), torch.tensor(123.0)
    assert torch.equal(interp2d(peak, v_axis, c_axis, v, c), _interp2d_old(peak, v_axis, c_axis, v, c))
    assert interp2d(peak, v_axis, c_axis, torch.zeros(0), torch.zeros(0)).shape == (0,)


def test_lower_precision_inputs_follow_the_original():
    v_axis, c_axis, peak, end = _axes_grids(torch.float32)
    v, c = _points(3000, torch.float32, 1, v_axis, c_axis)
    for dt in (torch.bfloat16, torch.float16, torch.float64):
        got = interp2d_many((peak, end), v_axis, c_axis, v.to(dt), c.to(dt))
        assert got[0].dtype == dt
        assert torch.equal(got[0], _interp2d_old(peak, v_axis, c_axis, v.to(dt), c.to(dt)))
        assert torch.equal(got[1], _interp2d_old(end, v_axis, c_axis, v.to(dt), c.to(dt)))


def test_long_axes_take_searchsorted_and_agree():
    """A 31-point axis (still counted) and a 97-point one (the single-ended artefact's
    capacitance axis: past the counting limit, searchsorted)."""
    v_axis = torch.linspace(0, 1.2, 31)
    c_axis = torch.linspace(0, 480, 97)
    grid = torch.sin(3 * v_axis[:, None]) * torch.cos(c_axis[None, :] / 100)
    v, c = _points(4000, torch.float32, 2, v_axis, c_axis)
    assert torch.equal(interp2d(grid, v_axis, c_axis, v, c), _interp2d_old(grid, v_axis, c_axis, v, c))


# -- gradients -----------------------------------------------------------------------------
def _away_from_nodes(x, axis, gap):
    return (x[:, None] - axis[None, :]).abs().min(1).values > gap


def test_gradcheck_float64_inside_cells_and_clamped():
    v_axis, c_axis, peak, end = _axes_grids(torch.float64)
    g = torch.Generator().manual_seed(3)
    v = torch.rand(400, generator=g, dtype=torch.float64) * 1.4 - 0.2
    c = torch.rand(400, generator=g, dtype=torch.float64) * 800 - 80
    keep = _away_from_nodes(v, v_axis, 1e-3) & _away_from_nodes(c, c_axis, 1e-2)
    v, c = v[keep][:40], c[keep][:40]
    assert ((v < 0) | (v > 1)).any() and ((c < 0) | (c > 640)).any()     # some are clamped
    assert ((v > 0) & (v < 1) & (c > 0) & (c < 640)).sum() > 10          # most are inside
    v.requires_grad_()
    c.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: tuple(interp2d_many((peak, end), v_axis, c_axis, a, b)),
                                    (v, c))
    assert torch.autograd.gradcheck(lambda a, b: interp2d(end, v_axis, c_axis, a, b), (v, c))
    th_v = torch.tensor(THRESHOLD["v_neg_V"], dtype=torch.float64)
    th_off = torch.tensor(THRESHOLD["offset_V"], dtype=torch.float64)
    x = torch.tensor([-0.2, 0.05, 0.2, 0.44, 0.61, 0.89, 1.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: interp1d(th_off, th_v, a), (x,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_equal_autograd_through_the_original(dtype):
    """Including points exactly on nodes and on the edges: the clamp passes the gradient
    there (inclusive bounds) and the cell is the one searchsorted picks, in both."""
    v_axis, c_axis, peak, end = _axes_grids(dtype)
    v, c = _points(3000, dtype, 4, v_axis, c_axis)
    w = torch.randn(2, len(v), generator=torch.Generator().manual_seed(5), dtype=dtype)
    grads = []
    for f in (lambda a, b: interp2d_many((peak, end), v_axis, c_axis, a, b),
              lambda a, b: [_interp2d_old(g, v_axis, c_axis, a, b) for g in (peak, end)]):
        a, b = v.clone().requires_grad_(), c.clone().requires_grad_()
        p, e = f(a, b)
        (w[0] * p + w[1] * e).sum().backward()
        grads.append((a.grad, b.grad))
    # the original sums four corner terms (~1 V each) before dividing by the cell width: a few
    # float32 ulps of 1 V / 0.1 V apart from the fused corner differences
    tol = dict(rtol=1e-5, atol=2e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    assert torch.allclose(grads[0][0], grads[1][0], **tol)
    assert torch.allclose(grads[0][1], grads[1][1], **tol)
    outside = (v < 0) | (v > 1)
    assert torch.all(grads[0][0][outside] == 0) and grads[0][0][~outside].abs().sum() > 0
    on_edge = (v == 0) | (v == 1)
    assert on_edge.any() and torch.equal(grads[0][0][on_edge] != 0, grads[1][0][on_edge] != 0)


def test_one_coordinate_needing_a_gradient_and_broadcast_gradients():
    v_axis, c_axis, peak, end = _axes_grids(torch.float64)
    v, c = _points(200, torch.float64, 6, v_axis, c_axis)
    a = v.clone().requires_grad_()
    interp2d(peak, v_axis, c_axis, a, c).sum().backward()
    b = v.clone().requires_grad_()
    _interp2d_old(peak, v_axis, c_axis, b, c).sum().backward()
    assert torch.allclose(a.grad, b.grad)
    vb = v[:20, None].clone().requires_grad_()      # [20, 1] against [1, 30]: reduced back
    cb = c[None, 50:80].clone().requires_grad_()
    interp2d(peak, v_axis, c_axis, vb, cb).sum().backward()
    vr, cr = v[:20, None].clone().requires_grad_(), c[None, 50:80].clone().requires_grad_()
    _interp2d_old(peak, v_axis, c_axis, vr, cr).sum().backward()
    assert vb.grad.shape == (20, 1) and torch.allclose(vb.grad, vr.grad) and torch.allclose(cb.grad, cr.grad)


def test_grids_that_require_grad_take_the_autograd_path():
    v_axis, c_axis, peak, end = _axes_grids(torch.float64)
    v, c = _points(300, torch.float64, 7, v_axis, c_axis)
    g1, g2 = peak.clone().requires_grad_(), peak.clone().requires_grad_()
    interp2d(g1, v_axis, c_axis, v, c).sum().backward()
    _interp2d_old(g2, v_axis, c_axis, v, c).sum().backward()
    assert torch.allclose(g1.grad, g2.grad)


# -- whole neuron steps, old against new ----------------------------------------------------
def test_diff_neuron_steps_equal_the_original():
    n = _diff_neuron()
    g = torch.Generator().manual_seed(8)
    T, shape = 12, (32, 24)
    cp = (torch.rand(T, *shape, generator=g) * 160).requires_grad_()
    cn = (torch.rand(T, *shape, generator=g) * 120).requires_grad_()
    err = torch.randn(shape[1], generator=g) * 0.01
    outs, grads = [], []
    for step in ("new", "old"):
        state, zs, margins = n.initial_state(shape), [], []
        for t in range(T):
            if step == "new":
                z, state = n(cp[t], cn[t], state, err if t % 2 else None)
                m = n.margin
            else:
                z, state, m = _diff_step_old(n, cp[t], cn[t], state, err if t % 2 else None)
            zs.append(z)
            margins.append(m)
        zs, margins = torch.stack(zs), torch.stack(margins)
        outs.append((zs, margins, state))
        (zs.sum() + state[0].sum() + 0.5 * state[1].sum() + margins.square().sum()).backward()
        grads.append((cp.grad.clone(), cn.grad.clone()))
        cp.grad, cn.grad = None, None
    (z1, m1, s1), (z2, m2, s2) = outs
    assert torch.equal(z1, z2) and torch.equal(m1, m2)
    assert torch.equal(s1[0], s2[0]) and torch.equal(s1[1], s2[1])
    assert 0 < float(z1.detach().mean()) < 0.5                     # it fires, not always
    assert torch.allclose(grads[0][0], grads[1][0], rtol=1e-4, atol=1e-6)
    assert torch.allclose(grads[0][1], grads[1][1], rtol=1e-4, atol=1e-6)
    assert grads[0][0].abs().sum() > 0


def test_diff_neuron_bfloat16_step_equals_the_original():
    n = _diff_neuron()
    g = torch.Generator().manual_seed(9)
    cp = torch.rand(6, 16, 8, generator=g) * 160
    cn = torch.rand(6, 16, 8, generator=g) * 120
    s1 = s2 = n.initial_state((16, 8), dtype=torch.bfloat16)
    for t in range(6):
        z1, s1 = n(cp[t].bfloat16(), cn[t].bfloat16(), s1)
        z2, s2, _ = _diff_step_old(n, cp[t].bfloat16(), cn[t].bfloat16(), s2)
        assert z1.dtype == s1[0].dtype == torch.bfloat16
        assert torch.equal(z1, z2) and torch.equal(s1[0], s2[0]) and torch.equal(s1[1], s2[1])


def test_offset_equals_the_original():
    n = _diff_neuron()
    x = torch.cat([torch.linspace(-0.3, 1.2, 1001), n.th_v]).requires_grad_()
    y = x.detach().clone().requires_grad_()
    a, b = n.offset(x), _offset_old(n, y)
    assert torch.equal(a, b)
    a.sum().backward()
    b.sum().backward()
    assert torch.allclose(x.grad, y.grad, rtol=1e-5, atol=1e-7)


def test_table_neuron_steps_equal_the_original():
    v_axis, c_axis, peak, end = _axes_grids(torch.float32)
    n = TableNeuron(v_axis, c_axis, peak, end, threshold=0.9)
    g = torch.Generator().manual_seed(10)
    c = (torch.rand(10, 64, 16, generator=g) * 200).requires_grad_()
    res = []
    for step in (n, lambda x, v: _table_step_old(n, x, v)):
        v, zs = torch.zeros(64, 16), []
        for t in range(10):
            z, v = step(c[t], v)
            zs.append(z)
        zs = torch.stack(zs)
        (zs.sum() + v.sum()).backward()
        res.append((zs, v, c.grad.clone()))
        c.grad = None
    assert torch.equal(res[0][0], res[1][0]) and torch.equal(res[0][1], res[1][1])
    assert res[0][0].sum() > 0
    assert torch.allclose(res[0][2], res[1][2], rtol=1e-4, atol=1e-6)


# -- the compiled path's own contract -------------------------------------------------------
def test_compiled_steps_take_the_compiled_path(path):
    """The steps above really ran compiled (not silently on PyTorch) where that was asked."""
    n = _diff_neuron()
    cp = torch.rand(4, 8, requires_grad=True) * 100
    z, _ = n(cp, cp, n.initial_state((4, 8)))
    assert (type(z.grad_fn).__name__ == "DiffStepBackward") == (path == "compiled")
    v_axis, c_axis, peak, end = _axes_grids(torch.float32)
    t = TableNeuron(v_axis, c_axis, peak, end, threshold=0.9)
    z, _ = t(cp)
    assert (type(z.grad_fn).__name__ == "TableStepBackward") == (path == "compiled")


@pytest.mark.parametrize("threads", [1, 2])
def test_diff_neuron_large_layer_and_offset_gradient(threads):
    """8,192 neurons (blocks spread over the threads when there are two), a comparator
    offset error that requires a gradient, both membranes as leaves: forward bit for bit,
    every gradient (v±, c±, offset error) allclose to the original's."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        n = _diff_neuron()
        g = torch.Generator().manual_seed(11)
        shape = (64, 128)
        leaves = [torch.rand(shape, generator=g) * 0.9, 0.3 + torch.rand(shape, generator=g) * 0.6,
                  torch.rand(shape, generator=g) * 300, torch.rand(shape, generator=g) * 200,
                  torch.randn(shape[1], generator=g) * 0.02]
        w = torch.randn(4, *shape, generator=g)
        res = []
        for step in ("new", "old"):
            vp, vn, cp, cn, err = (x.clone().requires_grad_() for x in leaves)
            if step == "new":
                z, (a, b) = n(cp, cn, (vp, vn), err)
                m = n.margin
            else:
                z, (a, b), m = _diff_step_old(n, cp, cn, (vp, vn), err)
            (w[0] * z + w[1] * a + w[2] * b + w[3] * m).sum().backward()
            res.append(((z, a, b, m), [x.grad for x in (vp, vn, cp, cn, err)]))
        (out1, g1), (out2, g2) = res
        assert all(torch.equal(x, y) for x, y in zip(out1, out2))
        assert 0.05 < float(out1[0].detach().mean()) < 0.95
        for x, y in zip(g1, g2):
            assert torch.allclose(x, y, rtol=1e-4, atol=1e-5), float((x - y).abs().max())
        assert g1[4].shape == (shape[1],) and g1[4].abs().sum() > 0
    finally:
        torch.set_num_threads(before)


def test_switch_and_missing_compiler_fall_back(monkeypatch, tmp_path, path):
    """``NEUROSPICE_NATIVE=0`` and a compiler that fails both leave the PyTorch path, the
    latter with a warning that names the cause; the steps still give the same numbers."""
    if path == "pytorch":
        pytest.skip("about the compiled path's build")
    monkeypatch.setenv("NEUROSPICE_CACHE", str(tmp_path / "cache"))     # nothing built yet
    try:
        native.library.cache_clear()
        monkeypatch.setenv(native.SWITCH_ENV, "0")
        assert native.library() is None and "NEUROSPICE_NATIVE=0" in native.status()
        native.library.cache_clear()
        monkeypatch.delenv(native.SWITCH_ENV)
        monkeypatch.setenv("CC", "false")
        with pytest.warns(RuntimeWarning, match="compiled neuron step not used"):
            assert native.library() is None
        assert "C compiler" in native.status()
        n = _diff_neuron()
        cp = torch.rand(3, 5) * 100
        z, (a, b) = n(cp, cp, n.initial_state((3, 5)))
        z2, (a2, b2), _ = _diff_step_old(n, cp, cp, n.initial_state((3, 5)))
        assert torch.equal(z, z2) and torch.equal(a, a2) and torch.equal(b, b2)
    finally:
        native.library.cache_clear()
        monkeypatch.undo()
        assert native.library() is not None


def test_a_copied_neuron_reads_its_own_tables(path):
    """A deep copy (or an unpickled neuron) must not keep the original's table addresses: the
    copy runs right after the original is gone."""
    import copy
    import gc
    import pickle
    n = _diff_neuron()
    cp = torch.rand(6, 9) * 150
    n(cp, cp, n.initial_state((6, 9)))                  # builds the original's C arguments
    ref = _diff_step_old(n, cp, cp * 0.7, n.initial_state((6, 9)))
    copies = [copy.deepcopy(n), pickle.loads(pickle.dumps(n))]
    del n
    gc.collect()
    for c in copies:
        z, (a, b) = c(cp, cp * 0.7, c.initial_state((6, 9)))
        assert torch.equal(z, ref[0]) and torch.equal(a, ref[1][0]) and torch.equal(b, ref[1][1])


def test_replaced_tables_and_changed_scalars_are_used(path):
    """Tables are re-read when a buffer is replaced (and a changed threshold or reset level is
    used at once); misshapen tables take the PyTorch path."""
    n = _diff_neuron()
    cp = torch.rand(5, 7) * 150
    n(cp, cp, n.initial_state((5, 7)))
    n.peak = n.peak * 0.9 + 0.05                        # a new buffer object
    n.v_ref = 0.25
    z, (a, b) = n(cp, cp * 0.6, n.initial_state((5, 7)))
    z2, (a2, b2), _ = _diff_step_old(n, cp, cp * 0.6, n.initial_state((5, 7)))
    assert torch.equal(z, z2) and torch.equal(a, a2) and torch.equal(b, b2)
    v_axis, c_axis, peak, end = _axes_grids(torch.float32)
    t = TableNeuron(v_axis, c_axis, peak, end, threshold=0.9)
    t(cp)
    t.threshold = 0.6
    assert torch.equal(t(cp)[0], _table_step_old(t, cp, torch.zeros_like(cp))[0])
    bad = TableNeuron(v_axis, c_axis, peak, end, threshold=0.9)
    bad.end_grid = end[:, :-1]                          # one column short
    assert bad.compiled_tables() is None
