"""The behavioural RCSJ Josephson junction in ngspice against independent physics:
small-signal plasma frequency, the analytic RSJ voltage, flux quantization of an SFQ pulse,
and JTL propagation delay against a separate ODE integration of the same circuit."""
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from neurospice.characterize import sfq_benches as S
from neurospice.circuits import sfq
from neurospice.circuits.engine import run_netlist
from neurospice.circuits.errors import NetlistError

PHI0 = sfq.PHI0_WB
UNIT = sfq.JJModel()
PULSE_A, PULSE_WIDTH_S = 500e-6, 3e-12     #: trigger pulse (triangle) into the JTL's first node


def _crossings(t, y, level):
    """Times where ``y`` first rises through each of ``level`` (linear interpolation)."""
    i = np.flatnonzero((y[:-1] < level) & (y[1:] >= level))
    return t[i] + (level - y[i]) * (t[i + 1] - t[i]) / (y[i + 1] - y[i])


def _sim(lines, stop_s, step_s, jjs, subgap_only=False):
    return run_netlist(sfq.transient_netlist("sfq test", lines, jjs, stop_s, step_s, subgap_only=subgap_only),
                       circuit="sfq-test").plot


def test_plasma_frequency():
    """Unbiased, unshunted junction released from φ = 0.05 rad rings at f_p (damping by R0 is
    negligible: 1/(2·R0·C) is 2 % of ω_p, shifting the frequency by 0.02 %)."""
    j = sfq.JJ("J1", "a", "0", 1.0, beta_c=None)
    p = _sim([*j.lines(), ".ic V(ph_J1)=0.05 V(a)=0"], 40e-12, 0.01e-12, [j])
    t, ph = p["time"], p["v(ph_j1)"]
    ups = _crossings(t, ph, 0.0)
    f = 1 / np.mean(np.diff(ups))
    f_p = math.sqrt(2 * math.pi * UNIT.ic_A / (PHI0 * UNIT.c_F)) / (2 * math.pi)
    assert len(ups) >= 8
    assert abs(f / f_p - 1) < 0.02


@pytest.mark.parametrize("ratio", [1.2, 2.0])
def test_rsj_mean_voltage(ratio):
    """Overdamped (β_c = 0.02) junction at I > I_c: ⟨V⟩ = R·sqrt(I² − I_c²), R the total
    damping resistance (shunt ∥ R0), averaged over whole 2π periods."""
    beta_c = 0.02
    j = sfq.JJ("J1", "a", "0", 1.0, beta_c=beta_c)
    r = 1 / (1 / j_shunt(j) + 1 / UNIT.r0_ohm)
    i_bias = ratio * UNIT.ic_A
    p = _sim([*j.lines(), f"Ib 0 a PWL(0 0 10p {i_bias:g})"], 500e-12, 0.05e-12, [j])
    t, ph, v = p["time"], p["v(ph_j1)"], p["v(a)"]
    turns = np.floor(ph / (2 * math.pi))
    first = turns[np.searchsorted(t, 100e-12)] + 1
    i0, i1 = np.flatnonzero(turns >= first)[0], np.flatnonzero(turns >= turns[-1])[0]
    v_mean = np.trapezoid(v[i0:i1 + 1], t[i0:i1 + 1]) / (t[i1] - t[i0])
    assert turns[-1] - first >= 10
    assert abs(v_mean / (r * math.sqrt(i_bias ** 2 - UNIT.ic_A ** 2)) - 1) < 0.02


def j_shunt(j):
    return UNIT.scaled(j.area).shunt_for_beta_c(j.beta_c)


def _jtl_circuit(stages=6, t_pulse=20e-12):
    cell = sfq.jtl("T", "in", "out", stages=stages)
    return cell, [*cell.netlist_lines(), sfq.pulse_source("p", "in", [t_pulse], PULSE_A, PULSE_WIDTH_S)]


def test_sfq_pulse_carries_one_flux_quantum():
    """∫V dt over one pulse (from before the trigger to after) is Φ0, at every JTL stage."""
    cell, lines = _jtl_circuit()
    p = _sim(lines, 80e-12, 0.02e-12, cell.jjs)
    t = p["time"]
    sel = t >= 15e-12
    for j in cell.jjs:
        flux = np.trapezoid(p[f"v({j.a})"][sel], t[sel])
        assert abs(flux / PHI0 - 1) < 0.01, j.name


def _jtl_ode(cell, t_pulse, t_stop):
    """The same JTL integrated directly (scipy): per node, C·dV/dt = I_bias + I_pulse − I_c·sin φ
    − G(V)·V − V/R_sh ± inductor currents, with dφ/dt = 2π·V/Φ0."""
    n = len(cell.jjs)
    m = UNIT.scaled(sfq.JTL_AREA)
    r_sh = m.shunt_for_beta_c(1.0)
    i_b = sfq.JTL_BIAS_FRACTION * m.ic_A
    k = 2 * math.pi / PHI0

    def pulse(t):
        x = (t - t_pulse) / (PULSE_WIDTH_S / 2)
        return PULSE_A * max(0.0, 1 - abs(x - 1)) if 0 <= x <= 2 else 0.0

    def rhs(t, y):
        ph, v = y[:n], y[n:]
        g = 1 / m.r0_ohm + (1 / m.rn_ohm - 1 / m.r0_ohm) * 0.5 * (1 + np.tanh((np.abs(v) - m.v_gap_V) / sfq.V_TRANSITION_V))
        i_l = (ph[:-1] - ph[1:]) / (k * sfq.JTL_L_H)      # current node k → k+1
        i = np.full(n, i_b) - m.ic_A * np.sin(ph) - g * v - v / r_sh
        i[0] += pulse(t)
        i[:-1] -= i_l
        i[1:] += i_l
        return np.concatenate([k * v, i / m.c_F])

    sol = solve_ivp(rhs, (0, t_stop), np.zeros(2 * n), method="LSODA", rtol=1e-9, atol=1e-12,
                    max_step=0.02e-12, dense_output=False, t_eval=np.arange(0, t_stop, 0.005e-12))
    return sol.t, sol.y[:n]


@pytest.mark.parametrize("step_s, subgap_only", [(0.02e-12, False), (S.STEP_S, False), (S.STEP_S, True)])
def test_jtl_delay_matches_independent_ode(step_s, subgap_only):
    """Per-stage slip times against the ODE (full junction model): at a fine fixed step, and at
    the benches' maximum step (a third of the plasma period) with ngspice's error control
    choosing the steps — with the full deck and with the sub-gap deck the benches run."""
    cell, lines = _jtl_circuit()
    p = _sim(lines, 60e-12, step_s, cell.jjs, subgap_only)
    t_ode, ph_ode = _jtl_ode(cell, 20e-12, 60e-12)
    spice = [_crossings(p["time"], p[f"v(ph_{j.name})"], math.pi)[0] for j in cell.jjs]
    ode = [_crossings(t_ode, ph_ode[i], math.pi)[0] for i in range(len(cell.jjs))]
    d_spice, d_ode = spice[-1] - spice[0], ode[-1] - ode[0]
    assert 3e-12 < d_ode < 15e-12                      # a few ps for 5 stage hops
    assert abs(d_spice / d_ode - 1) < 0.02
    assert np.max(np.abs(np.subtract(spice, ode))) < 0.05e-12  # every stage, from the trigger
    assert np.all(np.diff(spice) > 0)                  # the pulse moves forward stage by stage


def test_bad_junction_and_timestep_errors():
    with pytest.raises(NetlistError, match="area"):
        sfq.JJ("J0", "a", "0", 0.0).lines()
    with pytest.raises(NetlistError, match="cannot resolve SFQ pulses"):
        sfq.check_timestep(1.1e-12, [UNIT.scaled(2.5)])     # a third of the 3.0 ps plasma period
    sfq.check_timestep(1e-12, [UNIT.scaled(2.5)])
    with pytest.raises(NetlistError, match="cannot resolve SFQ pulses"):   # the builder checks too
        sfq.transient_netlist("coarse", [], [sfq.JJ("J1", "a", "0", 2.5)], 10e-12, 2e-12)


def test_subgap_deck_matches_the_full_junction_model():
    """The sub-gap deck (quasiparticle branch as R0) against the full tanh model on a JTL pulse:
    every junction below the gap, the same slip times (the dropped current is < 2e-8 of V/R0)."""
    cell, lines = _jtl_circuit()
    runs = [_sim(lines, 60e-12, 0.05e-12, cell.jjs, sub) for sub in (False, True)]
    assert "Bqp" not in sfq.jj_models(cell.jjs, subgap_only=True)
    assert sfq.above_subgap(runs[1], cell.jjs) == []
    for j in cell.jjs:
        full, sub = (_crossings(p["time"], p[f"v(ph_{j.name})"], math.pi)[0] for p in runs)
        assert abs(full - sub) < 1e-15, j.name


def test_a_junction_above_the_gap_is_resimulated_with_the_full_model():
    """An unshunted junction driven at 3·I_c runs on its normal branch: the full model's mean
    voltage is ≈ I·Rn (4.8 mV; the supercurrent averages out at a Josephson frequency far above
    the plasma frequency), the sub-gap deck's would be ≈ I·R0 (46 mV measured). ``run_bench`` notices the
    junction above the gap and re-runs the full deck."""
    i_A = 3 * UNIT.ic_A
    j = sfq.JJ("J1", "a", "0", 1.0, beta_c=None)
    bench = S.Bench("above_gap", lambda scale: ([sfq.Cell("one", [], [j])],
                                                [f"Ib 0 a PWL(0 0 10p {i_A:g})"]), 60e-12, {})
    run = S.run_bench(bench)
    assert run.full_quasiparticle_model
    t, v = run.plot["time"], run.plot["v(a)"]
    sel = t > 30e-12
    v_mean = np.trapezoid(v[sel], t[sel]) / (t[sel][-1] - t[sel][0])
    assert abs(v_mean / (i_A * UNIT.rn_ohm) - 1) < 0.25
    quiet = S.Bench("below_gap", lambda scale: ([sfq.Cell("one", [], [j])],
                                                [f"Ib 0 a PWL(0 0 10p {0.5 * UNIT.ic_A:g})"]), 30e-12, {})
    assert not S.run_bench(quiet).full_quasiparticle_model
