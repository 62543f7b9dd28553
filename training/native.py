"""The table neurons' step as compiled C (``neuron_kernels.c``), with hand-written backward.

One call per step does every look-up of a neuron (cell search, bilinear corners, the
comparator offset), the spike and the reset, and keeps what the backward needs (the slopes
of every table at the points); the backward is one more call. The PyTorch path does the
same in ~40 tensor operations and an autograd graph, each a pass over memory; at the
training shapes that overhead, not arithmetic, is its cost (``benchmarks/neuron_step.py``).

Contract: float32 CPU tensors of one shape, tables that do not require a gradient; the forward
values are bit for bit the PyTorch path's (same float32 operations in the same order, no fused
multiply-add; a zero may differ in sign: ``torch.equal`` holds), gradients equal to rounding
(``tests/test_fused_interp.py``). Anything else — another dtype or device, broadcast shapes,
trainable or misshapen tables — takes the PyTorch path.

The library is built on first use with the system's C compiler (``$CC``, default ``cc``; a
few seconds, once) into the cache (``<cache>/native/<hash of source, compiler and flags>/``), then
loaded with ``ctypes``. Without a compiler, or with ``NEUROSPICE_NATIVE=0``, everything takes
the PyTorch path (same numbers, slower); :func:`status` says which and why.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

SOURCE = Path(__file__).with_name("neuron_kernels.c")
#: no fused multiply-add: the forward must round as PyTorch's separate multiplies and adds do;
#: no trapping math: lets the compiler vectorize the selects (spike, reset, surrogate) — it
#: changes no value, only the promise to keep floating-point exceptions where they would trap
CFLAGS = ("-O3", "-std=c99", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math", "-fno-trapping-math")
#: blocks of points over threads; the library then uses the OpenMP runtime PyTorch has loaded
#: (same ``libgomp.so.1``), so ``torch.set_num_threads`` sets its threads too. Without an
#: OpenMP-capable compiler the library is built single-threaded.
OPENMP_FLAGS = ("-fopenmp",)
#: ``NEUROSPICE_NATIVE=0`` turns the compiled step off (the PyTorch path, same numbers)
SWITCH_ENV = "NEUROSPICE_NATIVE"
#: rows of per-point values the forward keeps for the backward (see neuron_kernels.c)
DIFF_SAVED_ROWS, TABLE_SAVED_ROWS = 11, 6

_P, _F, _I, _L = ctypes.c_void_p, ctypes.c_float, ctypes.c_int, ctypes.c_long


class _Grad(ctypes.Structure):
    """``grad_t`` of neuron_kernels.c: an incoming gradient's address and stride (1, or 0 for
    one value broadcast to every point)."""
    _fields_ = [("p", ctypes.c_void_p), ("stride", ctypes.c_long)]


_G = _Grad
_SIGNATURES = {
    "ns_bilinear": [_L, _P, _P, _P, _I, _P, _I, _P, _I, _P, _P, _P],
    "ns_bilinear_backward": [_L, _I, _P, _P, _P, _P, _P],
    "ns_diff_step": [_L, _P, _P, _P, _P, _P, _P, _I, _P, _I, _P, _P, _P, _I, _P, _F,
                     _P, _P, _P, _P, _P],
    "ns_diff_step_backward": [_L, _P, _P, _G, _G, _G, _G, _F, _F, _F, _P, _P, _P, _P, _P],
    "ns_table_step": [_L, _P, _P, _P, _I, _P, _I, _P, _P, _F, _P, _P, _P],
    "ns_table_step_backward": [_L, _P, _G, _G, _F, _F, _P, _P],
}
_why_not = "not tried yet"


def _build() -> Path:
    """The compiled library's path, building it first when the cache lacks it."""
    from neurospice.circuits.technology import cache_root
    cc = os.environ.get("CC", "cc")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30,
                             check=True).stdout
    key = hashlib.sha256("\0".join([SOURCE.read_text(), version, *CFLAGS, *OPENMP_FLAGS]).encode())
    lib = cache_root() / "native" / key.hexdigest()[:16] / "neuron_kernels.so"
    if not lib.exists():
        lib.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=lib.parent)     # concurrent builders: each
        os.close(fd)                                                 # its own file, then rename
        try:
            try:
                _compile(cc, [*CFLAGS, *OPENMP_FLAGS], tmp)
            except subprocess.CalledProcessError:
                _compile(cc, list(CFLAGS), tmp)                     # no OpenMP: one thread
            os.replace(tmp, lib)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return lib


def _compile(cc: str, flags: list, out: str) -> None:
    subprocess.run([cc, *flags, str(SOURCE), "-o", out], capture_output=True, text=True,
                   timeout=120, check=True)


@functools.lru_cache(maxsize=None)
def library():
    """The loaded kernels (``ctypes.CDLL``), or None (then :func:`status` says why)."""
    global _why_not
    if os.environ.get(SWITCH_ENV, "1") == "0":
        _why_not = f"off (${SWITCH_ENV}=0)"
        return None
    try:
        lib = ctypes.CDLL(str(_build()))
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        _why_not = f"C compiler unavailable or failed ({detail.strip().splitlines()[-1] if detail.strip() else exc})"
        warnings.warn(f"neurospice: compiled neuron step not used, {_why_not}; the PyTorch path "
                      f"gives the same numbers, slower", RuntimeWarning, stacklevel=3)
        return None
    for name, args in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, None
    _why_not = ""
    return lib


def status() -> str:
    """'compiled' or why the PyTorch path is taken."""
    return "compiled" if library() is not None else _why_not


def _plain(t: torch.Tensor) -> bool:
    return (t.dtype == torch.float32 and t.is_cpu and t.is_contiguous() and not t.requires_grad)


def bilinear_usable(v, c, v_axis, c_axis, grids) -> bool:
    """Whether :func:`bilinear` can look up ``grids [K, nv, nc]``: ``v``, ``c`` float32 CPU
    tensors of one shape, axes and grids contiguous float32 CPU tensors that need no gradient
    and fit (:func:`grids_fit`)."""
    return (points_usable(v, c) and all(_plain(t) for t in (v_axis, c_axis, grids))
            and grids.dim() == 3 and grids_fit(v_axis, c_axis, *grids.unbind(0))
            and library() is not None)


def data_ptr(t: torch.Tensor | None):
    """The address C reads (None: NULL)."""
    return None if t is None else t.data_ptr()


def _incoming(g: torch.Tensor | None):
    """An incoming gradient as C reads it: (the tensor to hold while C runs, its ``grad_t``).
    One value broadcast to all points (the gradient of a sum) is passed as stride 0, not
    copied out; anything else not contiguous is made so (a new tensor: hold it — a
    temporary would be freed before the call)."""
    if g is None:
        return None, _Grad(None, 1)
    if g.numel() > 0 and all(st == 0 for st in g.stride()):
        return g, _Grad(g.data_ptr(), 0)
    g = g.contiguous()
    return g, _Grad(g.data_ptr(), 1)


def grids_fit(v_axis: torch.Tensor, c_axis: torch.Tensor, *grids: torch.Tensor) -> bool:
    """Axes 1-D of ≥ 2 points and every grid ``[len(v_axis), len(c_axis)]``: what the C code
    indexes without checking (the PyTorch path raises on anything else)."""
    shape = (v_axis.numel(), c_axis.numel())
    return (v_axis.dim() == c_axis.dim() == 1 and min(shape) >= 2
            and all(tuple(g.shape) == shape for g in grids))


class CompiledStep(nn.Module):
    """Base of the table neurons: the compiled step's table arguments, built on first use and
    again whenever a table buffer is replaced or moved (checked on every call: the buffer
    objects and their addresses). A subclass names its table buffers in :attr:`NATIVE_TABLES`,
    checks their shapes in :meth:`native_fits` and orders the C arguments in :meth:`native_args`
    (scalars such as thresholds are passed per call, not kept here)."""

    NATIVE_TABLES: tuple[str, ...] = ()
    _compiled = None

    def native_fits(self, t: dict) -> bool:          # pragma: no cover - abstract
        raise NotImplementedError

    def native_args(self, t: dict) -> tuple:         # pragma: no cover - abstract
        raise NotImplementedError

    def compiled_tables(self):
        """The C table arguments, or None when the step cannot be compiled — also while
        ``torch.compile`` traces the neuron (it cannot see into C; it gets the PyTorch path)."""
        if torch.compiler.is_compiling():
            return None
        held = self._compiled
        bufs = self._buffers
        if held is not None and all(bufs.get(n) is t and t.data_ptr() == p
                                    for n, t, p in zip(self.NATIVE_TABLES, held[0], held[1])):
            return held[2]
        t = {n: bufs[n] for n in self.NATIVE_TABLES}
        ok = library() is not None and all(_plain(x) for x in t.values()) and self.native_fits(t)
        args = self.native_args(t) if ok else None
        self.__dict__["_compiled"] = (tuple(t.values()), tuple(x.data_ptr() for x in t.values()), args)
        return args

    def __getstate__(self):
        """Copies and pickles leave the C arguments behind: they are this instance's tensors'
        addresses (a copy rebuilds its own on first use)."""
        state = super().__getstate__()
        state.pop("_compiled", None)
        return state


def points_usable(*points: torch.Tensor) -> bool:
    """Inputs and state of a compiled step: float32 CPU tensors of one shape."""
    shape = points[0].shape
    return all(t.dtype == torch.float32 and t.is_cpu and t.shape == shape for t in points)


class DiffStep(torch.autograd.Function):
    """``memcap_net.DiffNeuron``'s step: (v+, v−, c+, c−, offset error or None, the neuron's
    C arguments, its surrogate (height, half-width, V_ref)) → (z, v+', v−', margin)."""

    @staticmethod
    def forward(ctx, vp, vn, cp, cn, offset_error, table_args, consts):
        ctx.set_materialize_grads(False)
        vp, vn, cp, cn = (x.contiguous() for x in (vp, vn, cp, cn))
        n = vp.numel()
        z, vp_next, vn_next, margin = (torch.empty_like(vp) for _ in range(4))
        need = any(ctx.needs_input_grad[:5])
        saved = torch.empty((DIFF_SAVED_ROWS, n), dtype=torch.float32) if need else None
        err = None if offset_error is None else offset_error.expand_as(vp).contiguous()
        p = data_ptr
        library().ns_diff_step(n, p(vp), p(vn), p(cp), p(cn), p(err), *table_args, consts[2],
                               p(z), p(vp_next), p(vn_next), p(margin), p(saved))
        if need:
            ctx.save_for_backward(saved, margin)
            ctx.consts = consts
            ctx.err_shape = None if offset_error is None else offset_error.shape
        return z, vp_next, vn_next, margin

    @staticmethod
    def backward(ctx, gz, gvp_next, gvn_next, gmargin):
        saved, margin = ctx.saved_tensors
        grads = [torch.empty_like(margin) for _ in range(5)]     # v+, v−, c+, c−, margin
        incoming = [_incoming(g) for g in (gz, gvp_next, gvn_next, gmargin)]  # held until the end
        library().ns_diff_step_backward(margin.numel(), data_ptr(saved), data_ptr(margin),
                                        *(arg for _, arg in incoming), *ctx.consts,
                                        *(data_ptr(g) for g in grads))
        gvp, gvn, gcp, gcn, gm = grads
        gerr = None if ctx.err_shape is None else (-gm).sum_to_size(ctx.err_shape)
        need = ctx.needs_input_grad
        return (gvp if need[0] else None, gvn if need[1] else None, gcp if need[2] else None,
                gcn if need[3] else None, gerr if need[4] else None, None, None)


class TableStep(torch.autograd.Function):
    """``neurons.TableNeuron``'s step: (v, c, the neuron's C arguments, its threshold, its
    surrogate (height, half-width)) → (z, v')."""

    @staticmethod
    def forward(ctx, v, c, table_args, threshold, consts):
        ctx.set_materialize_grads(False)
        v, c = v.contiguous(), c.contiguous()
        z, v_next = torch.empty_like(v), torch.empty_like(v)
        need = any(ctx.needs_input_grad[:2])
        saved = torch.empty((TABLE_SAVED_ROWS, v.numel()), dtype=torch.float32) if need else None
        library().ns_table_step(v.numel(), data_ptr(v), data_ptr(c), *table_args, threshold,
                                data_ptr(z), data_ptr(v_next), data_ptr(saved))
        if need:
            ctx.save_for_backward(saved)
            ctx.consts, ctx.shape = consts, v.shape
        return z, v_next

    @staticmethod
    def backward(ctx, gz, gv_next):
        (saved,) = ctx.saved_tensors
        gv, gc = (torch.empty(ctx.shape, dtype=torch.float32) for _ in range(2))
        incoming = [_incoming(g) for g in (gz, gv_next)]     # held until the call ends
        library().ns_table_step_backward(gv.numel(), data_ptr(saved), *(arg for _, arg in incoming),
                                         *ctx.consts, data_ptr(gv), data_ptr(gc))
        return (gv if ctx.needs_input_grad[0] else None, gc if ctx.needs_input_grad[1] else None,
                None, None, None)


def bilinear(v, c, v_axis, c_axis, grids, need_slopes: bool):
    """``neurons._FusedBilinear``'s forward: (values ``[K, *shape]``, slopes ``∂/∂v``,
    ``∂/∂c`` ``[K, *shape]`` or None)."""
    v, c = v.contiguous(), c.contiguous()
    K, n = grids.shape[0], v.numel()
    out = torch.empty((K, *v.shape), dtype=torch.float32)
    dv = torch.empty_like(out) if need_slopes else None
    dc = torch.empty_like(out) if need_slopes else None
    p = data_ptr                    # grids are contiguous: bilinear_usable checked them
    library().ns_bilinear(n, p(v), p(c), p(v_axis), v_axis.numel(), p(c_axis), c_axis.numel(),
                          p(grids), K, p(out), p(dv), p(dc))
    return out, dv, dc


def bilinear_backward(grad, dv, dc, need_v: bool, need_c: bool):
    """Σ_k grad[k]·slope[k] for ``v`` and ``c`` (None where not needed)."""
    grad = grad.contiguous()
    gv = torch.empty(dv.shape[1:], dtype=torch.float32) if need_v else None
    gc = torch.empty(dv.shape[1:], dtype=torch.float32) if need_c else None
    p = data_ptr
    library().ns_bilinear_backward(dv[0].numel(), dv.shape[0], p(grad), p(dv), p(dc), p(gv), p(gc))
    return gv, gc
