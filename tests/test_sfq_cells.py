"""SFQ cells and the counting neuron in ngspice against their truth tables (each bench states
the pulses a correct cell must produce), at nominal bias and at ±20 % global bias; a bias that
drives junctions into the voltage state is reported, never counted."""
import pytest

from neurospice.characterize import sfq_benches as S
from neurospice.circuits import sfq_cells as C
from neurospice.circuits.errors import NetlistError


@pytest.mark.parametrize("name", sorted(S.CELL_BENCHES))
@pytest.mark.parametrize("bias", [0.8, 1.0, 1.2])
def test_cell_truth_table(name, bias):
    bench = S.CELL_BENCHES[name]()
    run = S.run_bench(bench, bias)
    assert not run.early
    for probe, n in bench.expect.items():
        assert len(run.pulses[probe]) == n, (probe, run.pulses[probe])
    assert S.check(bench, run)


def test_dff_holds_one_quantum_and_reads_destructively():
    """D, read → 1; read again → 0; D, D (second escapes), read → 1: exactly two outputs, in
    the windows after the first and third reads."""
    bench = S.bench_dff()
    run = S.run_bench(bench)
    (w1, w3) = bench.windows["O_J1"]
    t1, t3 = run.pulses["O_J1"]
    assert w1[0] <= t1 <= w1[1] and w3[0] <= t3 <= w3[1]


@pytest.mark.parametrize("counting", [0, 1, 2])
def test_programmed_neuron_transfer(monkeypatch, counting):
    """One 4-stage netlist programmed on chip (fix all, free ``counting`` stages) to threshold
    T = 2**counting; after the flush input (one spike), n further inputs round-robin over the
    16 excitatory lines give floor(n / T) more spikes (integrate, fire at threshold, reset).
    Two idle inhibit gates stand for the chain (the full 16-gate neuron counts through its
    idle gates in ``test_sfq_inhibition``'s full-size table and in ``characterize sfq``)."""
    monkeypatch.setattr(S, "NEURON_INHIBITORY", 2)
    bench = S.bench_neuron(counting)
    run = S.run_bench(bench)
    n = len(bench.input_times)
    threshold = 2 ** counting
    assert S.neuron_transfer(bench, run, n) == [0] + [1 + k // threshold for k in range(n)]


def test_bias_that_never_settles_is_an_error():
    bench = S.bench_jtl()
    run = S.run_bench(bench, 1.8)            # 0.7·1.8 > 1: junctions biased above I_c
    assert run.early and not S.check(bench, run)
    with pytest.raises(S.BiasError, match="never settles"):
        S.require_settled(bench, run)


def test_builder_errors():
    with pytest.raises(NetlistError, match="overlap"):
        C.dc_drive("d", "n", [0.0, 10e-12])
    with pytest.raises(NetlistError, match="two inputs"):
        C.merger_tree("t", ["a"], "o")
    with pytest.raises(NetlistError, match="bias scale"):
        C.jtl("j", "a", "b", 2, bias_scale=0.0)
