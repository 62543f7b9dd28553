"""Technologies: generic corners behave physically; the slim sky130 library equals the full one."""
import numpy as np
import pytest

from neurospice.characterize.sweep import PointCache, Sweep, run_sweep
from neurospice.circuits.engine import run_netlist
from neurospice.circuits.errors import TechnologyError
from neurospice.circuits.technology import generic, get_technology, sky130
from neurospice.characterize import memcap_recipes  # noqa: F401  (registers 'memcap')


def _tphl(tech_name, corner, tmp_path):
    sw = Sweep("inverter", {"load_fF": [10.0]}, technology=tech_name, corners=[corner])
    res = run_sweep(sw, cache=PointCache(tmp_path / corner), progress=False)
    assert not res.failed, res.failed[0].reason
    return res.ok[0].result["tphl_s"]


def test_generic_corners_order_delay(tmp_path):
    ff, tt, ss = (_tphl("generic", c, tmp_path) for c in ("ff", "tt", "ss"))
    assert 0 < ff < tt < ss


def test_unknown_corner_and_technology():
    with pytest.raises(TechnologyError):
        generic("xx")
    with pytest.raises(TechnologyError):
        get_technology("gaas")


INV = """* inv
{lib}
.include "{cell}"
VDD vdd 0 1.8
VIN a 0 PULSE(0 1.8 1n 50p 50p 2n 4n)
X1 a 0 0 vdd vdd y sky130_fd_sc_hd__inv_1
C1 y 0 5f
.tran 1p 6n
.end
"""


@pytest.mark.sky130
@pytest.mark.slow
def test_sky130_slim_equals_full_library():
    slim, full = sky130("tt"), sky130("tt", full_library=True)
    cell = slim.cell_file("inv_1")
    a = run_netlist(INV.format(lib=slim.header(), cell=cell), spiceinit=slim.spiceinit).plot
    b = run_netlist(INV.format(lib=full.header(), cell=cell), spiceinit=full.spiceinit,
                    timeout_s=600).plot
    t = np.linspace(0, 6e-9, 3000)
    assert np.max(np.abs(np.interp(t, a["time"], a["v(y)"]) - np.interp(t, b["time"], b["v(y)"]))) < 1e-6


@pytest.mark.sky130
def test_sky130_corners_order_delay(tmp_path):
    ff, tt, ss = (_tphl("sky130", c, tmp_path) for c in ("ff", "tt", "ss"))
    assert 0 < ff < tt < ss
    assert 5e-12 < tt < 200e-12  # an inv_1 into 10 fF at 1.8 V: tens of ps


@pytest.mark.sky130
def test_sky130_memcap_neuron_fires_and_mismatch_varies(tmp_path):
    sw = Sweep("memcap", {"c_active_fF": [40.0, 320.0], "v_mem0_V": [0.0], "fan_in": [8]},
               technology="sky130")
    res = run_sweep(sw, cache=PointCache(tmp_path / "nom"), progress=False)
    assert [r.result["spike"] for r in res.results] == [0, 1]
    mc = run_sweep(Sweep("memcap", {"c_active_fF": [40.0], "v_mem0_V": [0.0], "fan_in": [8]},
                         technology="sky130", mc_samples=3, seed=7),
                   cache=PointCache(tmp_path / "mc"), progress=False)
    v = [r.result["v_mem_end_V"] for r in mc.results]
    assert len(set(v)) == 3 and max(v) - min(v) < 0.1


RIPPLE = """* 4-bit ripple carry: carry in toggles, every stage propagates
{lib}
.include "{cell}"
VDD vdd 0 1.8
VC c0 0 PULSE(0 1.8 1n 50p 50p 3n 6n)
{stages}
C1 c4 0 5f
.tran 2p 12n
.end
"""


@pytest.mark.sky130
def test_sky130_without_body_resistance_is_close_to_the_pdk_model():
    """rbodymod=0 (the fast option for large digital netlists) against the PDK's rbodymod=1:
    carry-chain delay within 10 % and supply energy within 5 %."""
    from neurospice.circuits.technology import sky130 as tech_of
    stages = "\n".join(f"X{k} vdd 0 c{k} 0 0 vdd vdd c{k + 1} s{k} sky130_fd_sc_hd__fa_1"
                       for k in range(4))   # A=1, B=0: each stage passes the carry on
    out = {}
    for body in (True, False):
        t = tech_of("tt", body_resistance=body)
        p = run_netlist(RIPPLE.format(lib=t.header(), cell=t.cell_file("fa_1"), stages=stages),
                        spiceinit=t.spiceinit).plot
        time, c4 = p["time"], p["v(c4)"]
        rise = time[np.argmax((time > 1e-9) & (c4 > 0.9))]
        energy = np.trapezoid(-p["i(vdd)"] * 1.8, time)
        out[body] = (rise - 1.025e-9, energy)
    (d1, e1), (d0, e0) = out[True], out[False]
    assert tech_of("tt", body_resistance=False).label == "sky130/tt/rb0"
    assert 0 < d1 and abs(d0 / d1 - 1) < 0.10, (d1, d0)
    assert abs(e0 / e1 - 1) < 0.05, (e1, e0)
