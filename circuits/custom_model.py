"""The table model of a user's neuron (numpy golden model; the torch cell reproduces it).

From the characterization of one step (membrane start ``v`` × input current ``i``, grid) and
the firing boundary found by bisection per grid row, one step is::

    b  = B(v)                                firing current at start voltage v (linear in v)
    z  = 1 if i > b else 0                   spike in this step
    v' = z·F(v, i) + (1 − z)·Q(v, i)         end-of-step membrane voltage
    e  = z·EF(v, i) + (1 − z)·EQ(v, i)       energy of the step (supplies + input source)

``Q``/``EQ`` (no spike) and ``F``/``EF`` (spike) are bilinear interpolations of grids on the
same axes (``v`` and ``i`` clamped to the axes, as the torch cell does). Each grid row holds
the measured cells of its own kind and, across the boundary, its end value held
(:func:`split_row`; a continued slope would run away: near the boundary the quiet membrane
rises steeply into the spike, and values beyond a row's boundary are still read when
interpolating between rows whose boundaries differ). The quiet side ends at the last quiet point of the bisection, so along a
row the quiet interpolation is exact up to the boundary; the firing side uses measured grid
cells only: just above the boundary the spike falls at the very end of the step and the
step ends mid-spike (state the table does not hold, see the artefact's ``state_check``). A row that never fires within the current range (a start voltage too low to fire in one
step) continues the line of the nearest two firing rows, kept above ``i_max``; one that
always fires, below ``i_min`` — so the decision is the circuit's and the spike's gradient
still points towards firing (:func:`_continue_boundary`).
"""
from __future__ import annotations

import numpy as np

#: how far outside the current range a never/always-firing row's boundary stays at least,
#: in spans of the range
OUTSIDE_MARGIN_SPANS = 0.01


def split_row(i_axis: np.ndarray, values: np.ndarray, fired: np.ndarray, boundary: dict | None,
              key: str) -> tuple[np.ndarray, np.ndarray]:
    """One grid row → (quiet row, fired row) of ``key`` (``v_end_V`` or ``energy_J``).

    ``boundary``: ``{'quiet_A', 'fired_A', 'quiet': {key: ...}, 'fired': {key: ...}}`` from the
    bisection (the last quiet and the first firing current), or ``None`` for a row that
    never or always fires (then both rows are the measured row)."""
    quiet_row, fired_row = values.astype(float).copy(), values.astype(float).copy()
    if boundary is None:
        return quiet_row, fired_row
    qa, fa = boundary["quiet_A"], boundary["fired_A"]
    qv, fv = boundary["quiet"][key], boundary["fired"][key]
    q_idx = np.flatnonzero(~fired & (i_axis < qa))
    f_idx = np.flatnonzero(fired & (i_axis > fa))
    if not len(f_idx):
        f_idx = np.flatnonzero(fired)
    # quiet: measured quiet cells below the boundary, then the bisection's last quiet point, held
    quiet_row = np.interp(i_axis, np.append(i_axis[q_idx], qa), np.append(values[q_idx], qv))
    fired_row = np.interp(i_axis, i_axis[f_idx], values[f_idx]) if len(f_idx) else np.full(len(i_axis), fv)
    return quiet_row, fired_row


def bilinear(grid, v_axis, i_axis, v, i):
    """Bilinear interpolation of ``grid[len(v_axis), len(i_axis)]``, clamped to the axes (the
    same arithmetic as :func:`neurospice.training.neurons.interp2d`)."""
    v = np.clip(v, v_axis[0], v_axis[-1])
    i = np.clip(i, i_axis[0], i_axis[-1])
    iv = np.clip(np.searchsorted(v_axis, v, side="right"), 1, len(v_axis) - 1)
    ic = np.clip(np.searchsorted(i_axis, i, side="right"), 1, len(i_axis) - 1)
    tv = (v - v_axis[iv - 1]) / (v_axis[iv] - v_axis[iv - 1])
    tc = (i - i_axis[ic - 1]) / (i_axis[ic] - i_axis[ic - 1])
    return (grid[iv - 1, ic - 1] * (1 - tv) * (1 - tc) + grid[iv - 1, ic] * (1 - tv) * tc
            + grid[iv, ic - 1] * tv * (1 - tc) + grid[iv, ic] * tv * tc)


class TableModel:
    """The step map of the module docstring, from an artefact's ``model`` section."""

    def __init__(self, model: dict):
        self.v_axis = np.asarray(model["v_mem0_V"], float)
        self.i_axis = np.asarray(model["i_in_A"], float)
        self.boundary = np.asarray(model["boundary_A"], float)
        self.grids = {k: np.asarray(model[k], float) for k in
                      ("v_end_quiet_V", "v_end_fired_V", "energy_quiet_J", "energy_fired_J")}

    def clamp_current(self, i):
        return np.clip(i, self.i_axis[0], self.i_axis[-1])

    def firing_current(self, v):
        return np.interp(v, self.v_axis, self.boundary)

    def step(self, v, i):
        """``(spike, v_next, energy_J)`` for arrays of start voltages and currents."""
        v, i = np.asarray(v, float), self.clamp_current(np.asarray(i, float))
        z = (i > self.firing_current(v)).astype(float)
        g = {k: bilinear(g, self.v_axis, self.i_axis, v, i) for k, g in self.grids.items()}
        v_next = z * g["v_end_fired_V"] + (1 - z) * g["v_end_quiet_V"]
        energy = z * g["energy_fired_J"] + (1 - z) * g["energy_quiet_J"]
        return z, v_next, energy

    def run(self, v0, currents):
        """A sequence: ``currents [T, ...]`` from ``v0`` → (spikes, end voltages, energies) ``[T, ...]``."""
        v, zs, vs, es = np.asarray(v0, float), [], [], []
        for i in currents:
            z, v, e = self.step(v, i)
            zs.append(z); vs.append(v); es.append(e)
        return np.array(zs), np.array(vs), np.array(es)


def build_model(v_axis, i_axis, grid: dict, boundaries: list) -> dict:
    """The ``model`` section of an artefact from the measured grid (``v_end_V``, ``spike``,
    ``energy_J`` as ``[rows][cols]``) and the per-row boundary searches (each ``None`` for a
    row that never/always fires, with ``kind``, or the search's answer)."""
    v_axis, i_axis = np.asarray(v_axis, float), np.asarray(i_axis, float)
    spikes = np.asarray(grid["spike"], float) > 0.5
    out = {"v_mem0_V": v_axis.tolist(), "i_in_A": i_axis.tolist(), "boundary_A": [],
           "row_kind": []}
    rows = {k: [] for k in ("v_end_quiet_V", "v_end_fired_V", "energy_quiet_J", "energy_fired_J")}
    for r, b in enumerate(boundaries):
        kind = b["kind"]
        out["row_kind"].append(kind)
        out["boundary_A"].append(0.5 * (b["quiet_A"] + b["fired_A"]) if kind == "boundary" else None)
        for key, q, f in (("v_end_V", "v_end_quiet_V", "v_end_fired_V"),
                          ("energy_J", "energy_quiet_J", "energy_fired_J")):
            qr, fr = split_row(i_axis, np.asarray(grid[key][r], float), spikes[r],
                               b if kind == "boundary" else None, key)
            rows[q].append(qr.tolist())
            rows[f].append(fr.tolist())
    out.update(rows)
    out["boundary_A"] = _continue_boundary(v_axis, out["boundary_A"], out["row_kind"], i_axis[0], i_axis[-1])
    return out


def _continue_boundary(v_axis, boundary, kinds, i_min, i_max) -> list[float]:
    """Fill never/always rows: the line through the two nearest rows with a boundary,
    kept beyond the range on the right side (or just beyond it with fewer than two rows)."""
    have = [k for k, b in enumerate(boundary) if b is not None]
    margin = OUTSIDE_MARGIN_SPANS * (i_max - i_min)
    out = []
    for r, (b, kind) in enumerate(zip(boundary, kinds)):
        if b is not None:
            out.append(float(b))
            continue
        near = sorted(have, key=lambda k: abs(k - r))[:2]
        guess = (np.polyval(np.polyfit([v_axis[k] for k in near], [boundary[k] for k in near], 1), v_axis[r])
                 if len(near) == 2 else (i_max if kind == "never" else i_min))
        out.append(float(max(guess, i_max + margin) if kind == "never" else min(guess, i_min - margin)))
    return out
