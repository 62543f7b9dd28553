"""The engine against independent references: analytic RC response, typed errors."""
import math

import numpy as np
import pytest

from neurospice.circuits.engine import analysis_seconds, classify_log, elapsed_seconds, run_netlist
from neurospice.circuits.errors import ConvergenceError, NetlistError, SimulationTimeout
from neurospice.circuits.rawfile import read_raw

RC = """* rc step
V1 in 0 PWL(0 0 1p 1)
R1 in out 1k
C1 out 0 1p
.tran 1p 5n
.end
"""


def test_rc_step_matches_analytic():
    plot = run_netlist(RC, circuit="rc").plot
    t, v = plot["time"], plot["v(out)"]
    assert plot.units["time"] == "s" and plot.units["v(out)"] == "V"
    tau = 1e3 * 1e-12
    sel = t > 0.05e-9
    analytic = 1 - np.exp(-(t[sel] - 1e-12) / tau)
    assert np.max(np.abs(v[sel] - analytic)) < 5e-3
    assert np.interp(tau + 1e-12, t, v) == pytest.approx(1 - math.exp(-1), abs=2e-3)


def test_bad_netlist_is_named_error():
    bad = "* bad\nX1 a b nosuchsubckt\nR1 a 0 1k\n.tran 1n 10n\n.end\n"
    with pytest.raises(NetlistError) as err:
        run_netlist(bad, circuit="broken-row")
    assert "broken-row" in str(err.value) and "nosuchsubckt" in str(err.value).lower()


def test_singular_circuit_is_convergence_error():
    loop = "* two sources fight\nV1 a 0 1\nV2 a 0 2\nR1 a 0 1k\n.op\n.end\n"
    with pytest.raises(ConvergenceError) as err:
        run_netlist(loop, circuit="fighting-sources", point={"v": 2})
    assert "fighting-sources" in str(err.value) and "singular" in str(err.value).lower()


def test_transient_nonconvergence_is_convergence_error():
    # a memcapacitor (a voltage-defined port) driven by an ideal source: a voltage loop
    from neurospice.circuits.memcap import memcap_library
    net = (f"* ideal drive\n{memcap_library()}\nV1 a 0 SIN(0 4 10e6)\n"
           "X1 a 0 q memcap x0=0.3\n.tran 0.1n 300n\n.end\n")
    with pytest.raises(ConvergenceError, match="(?i)timestep too small"):
        run_netlist(net, circuit="memcap-ideal-drive")


def test_timeout():
    slow = RC.replace(".tran 1p 5n", ".tran 1f 50u")
    with pytest.raises(SimulationTimeout):
        run_netlist(slow, circuit="slow", timeout_s=0.5)


def test_informational_lines_are_not_errors():
    classify_log("Note: No compatibility mode selected!\nWarning: m=xx on .subckt line\n"
                 "Circuit: * x\nUsing SPARSE 1.3 as Direct Linear Solver\n", "c")


def test_ascii_and_binary_raw_agree(tmp_path):
    import subprocess
    cir = tmp_path / "rc.cir"
    cir.write_text(RC)
    subprocess.run(["ngspice", "-b", "-r", str(tmp_path / "b.raw"), str(cir)], check=True,
                   capture_output=True, cwd=tmp_path)
    (tmp_path / ".spiceinit").write_text("set filetype=ascii\n")
    subprocess.run(["ngspice", "-b", "-r", str(tmp_path / "a.raw"), str(cir)], check=True,
                   capture_output=True, cwd=tmp_path, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    a, b = read_raw(tmp_path / "a.raw")[0], read_raw(tmp_path / "b.raw")[0]
    assert np.allclose(a["v(out)"], b["v(out)"], atol=1e-9)


def test_ngspice_analysis_time_is_parsed():
    """A real run: ngspice's own "Total analysis time" lands on the result, within the wall time
    and within ngspice's own elapsed time; the raw-file read is timed too."""
    long_rc = RC.replace(".tran 1p 5n", ".tran 1p 20n")
    res = run_netlist(long_rc, circuit="rc-timed")
    assert isinstance(res.analysis_s, float) and 0 < res.analysis_s <= res.wall_s
    assert res.ngspice_s is not None and res.analysis_s <= res.ngspice_s <= res.wall_s
    assert res.parse_s is not None and res.parse_s >= 0 and res.read_s > 0


def test_analysis_time_lines():
    log = ("No. of Data Rows : 20032\n\nTotal analysis time (seconds) = 0.059\n\n"
           "Total elapsed time (seconds) = 0.066 \n\nTotal DRAM available = 24105.047 MB.\n")
    assert analysis_seconds(log) == pytest.approx(0.059)
    assert elapsed_seconds(log) == pytest.approx(0.066)
    assert analysis_seconds("Total analysis time (seconds) = 0\n") == 0.0
    assert analysis_seconds("Circuit: rc\nerror: no such thing\n") is None   # not printed: None
    assert elapsed_seconds("") is None
