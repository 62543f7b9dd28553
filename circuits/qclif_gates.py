"""The qCLIF neuron's gate-level netlist, generated from :class:`~neurospice.circuits.qclif.QCLIFConfig`
out of real ``sky130_fd_sc_hd`` cells: AND gates for the synapse ports, carry-save rows and
ripple-carry adders of ``fa_1``/``ha_1``, ``mux2_1`` barrel shifter, saturation logic,
``dfrtp_1`` registers; with its transistor count and cell area.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import NetlistError, TechnologyError
from .qclif import QCLIFConfig

ZERO, ONE = "0", "vdd"     #: constant nets (ground and the supply)
CELL_PREFIX = "sky130_fd_sc_hd__"
#: Pin order of the cells used (outputs last), as in the cells' SPICE netlists.
_CELL_PINS = {
    "fa_1": ("A", "B", "CIN", "COUT", "SUM"), "ha_1": ("A", "B", "COUT", "SUM"),
    "and2_1": ("A", "B", "X"), "or2_1": ("A", "B", "X"), "or4_1": ("A", "B", "C", "D", "X"),
    "nor2_1": ("A", "B", "Y"), "inv_1": ("A", "Y"), "xnor2_1": ("A", "B", "Y"),
    "mux2_1": ("A0", "A1", "S", "X"), "o21a_1": ("A1", "A2", "B1", "X"),
    "a21o_1": ("A1", "A2", "B1", "X"), "nand2_1": ("A", "B", "Y"),
    "dfrtp_1": ("CLK", "D", "RESET_B", "Q"), "buf_1": ("A", "X"), "clkbuf_4": ("A", "X"),
}
_N_OUT = {"fa_1": 2, "ha_1": 2}


class GateNetlist:
    """Standard-cell instances with constant propagation on ``ZERO``/``ONE`` inputs."""

    def __init__(self):
        self.instances: list[tuple[str, str, tuple[str, ...]]] = []
        self._n = 0

    def net(self, tag: str) -> str:
        self._n += 1
        return f"n{self._n}_{tag}"

    def cell(self, kind: str, *inputs: str, tag: str = "") -> tuple[str, ...] | str:
        pins = _CELL_PINS[kind]
        n_out = _N_OUT.get(kind, 1)
        if len(inputs) != len(pins) - n_out:
            raise NetlistError("qclif", f"cell {kind} takes {len(pins) - n_out} inputs")
        outs = tuple(self.net(f"{tag or kind}") for _ in range(n_out))
        self._n += 1
        self.instances.append((f"X{self._n}_{kind}", kind, (*inputs, *outs)))
        return outs if n_out > 1 else outs[0]

    # -- logic with constant folding ---------------------------------------------------
    def inv(self, a):
        return ONE if a == ZERO else ZERO if a == ONE else self.cell("inv_1", a)

    def and2(self, a, b):
        if ZERO in (a, b):
            return ZERO
        if a == ONE:
            return b
        if b == ONE:
            return a
        return self.cell("and2_1", a, b)

    def or2(self, a, b):
        if ONE in (a, b):
            return ONE
        if a == ZERO:
            return b
        if b == ZERO:
            return a
        return self.cell("or2_1", a, b)

    def or_all(self, bits):
        bits = [b for b in bits if b != ZERO]
        if ONE in bits:
            return ONE
        if not bits:
            return ZERO
        while len(bits) > 1:
            nxt = []
            for k in range(0, len(bits), 4):
                grp = bits[k:k + 4]
                if len(grp) == 4:
                    nxt.append(self.cell("or4_1", *grp))
                elif len(grp) >= 2:
                    nxt.append(self.or_all_pairs(grp))
                else:
                    nxt.append(grp[0])
            bits = nxt
        return bits[0]

    def or_all_pairs(self, grp):
        out = grp[0]
        for b in grp[1:]:
            out = self.or2(out, b)
        return out

    def full_add(self, a, b, c):
        """(sum, carry) of three bits, folding constants into simpler cells."""
        consts = [x for x in (a, b, c) if x in (ZERO, ONE)]
        vars_ = [x for x in (a, b, c) if x not in (ZERO, ONE)]
        ones = consts.count(ONE)
        if len(vars_) == 3:
            cout, s = self.cell("fa_1", a, b, c)
            return s, cout
        if len(vars_) == 2:
            if ones == 0:
                cout, s = self.cell("ha_1", *vars_)
                return s, cout
            return self.cell("xnor2_1", *vars_), self.or2(*vars_)
        if len(vars_) == 1:
            v = vars_[0]
            return ({0: v, 1: self.inv(v), 2: v}[ones], {0: ZERO, 1: v, 2: ONE}[ones])
        return (ONE if ones % 2 else ZERO), (ONE if ones >= 2 else ZERO)

    def csa(self, a, b, c):
        """Carry-save row: three D-bit words -> (sum word, carry word shifted left, mod 2^D)."""
        s, cy = zip(*(self.full_add(x, y, z) for x, y, z in zip(a, b, c)))
        return list(s), [ZERO, *cy[:-1]]

    def ripple(self, a, b, cin=ZERO):
        """Ripple-carry sum of two D-bit words (mod 2^D)."""
        out, carry = [], cin
        for x, y in zip(a, b):
            s, carry = self.full_add(x, y, carry)
            out.append(s)
        return out

    def mux(self, a0, a1, s):
        if a0 == a1:
            return a0
        return self.cell("mux2_1", a0, a1, s)

    # -- emission -----------------------------------------------------------------------
    def kinds(self) -> set[str]:
        return {kind for _, kind, _ in self.instances}

    def lines(self) -> list[str]:
        out = []
        for name, kind, pins in self.instances:    # inputs, power (VGND VNB VPB VPWR), outputs
            n_in = len(_CELL_PINS[kind]) - _N_OUT.get(kind, 1)
            out.append(f"{name} {' '.join(pins[:n_in])} 0 0 vdd vdd {' '.join(pins[n_in:])} "
                       f"{CELL_PREFIX}{kind}")
        return out


#: each sky130_fd_sc_hd cell as XSPICE digital primitives (d_and, d_xor, d_dff, ...): the
#: cell's Boolean function (from its liberty description), so ngspice's event-driven logic
#: simulator runs the same generated netlist gate by gate. ``{o}``: the cell's output nets,
#: ``{i}``: inputs, ``{n}``: a prefix for internal nets.
_XSPICE_CELLS = {
    "buf_1": ["d_buffer {i0} {o0}"], "clkbuf_4": ["d_buffer {i0} {o0}"], "inv_1": ["d_inverter {i0} {o0}"],
    "and2_1": ["d_and [{i0} {i1}] {o0}"], "or2_1": ["d_or [{i0} {i1}] {o0}"],
    "or4_1": ["d_or [{i0} {i1} {i2} {i3}] {o0}"], "nor2_1": ["d_nor [{i0} {i1}] {o0}"],
    "nand2_1": ["d_nand [{i0} {i1}] {o0}"], "xnor2_1": ["d_xnor [{i0} {i1}] {o0}"],
    # X = S ? A1 : A0
    "mux2_1": ["d_inverter {i2} {n}s", "d_and [{i0} {n}s] {n}a", "d_and [{i1} {i2}] {n}b",
               "d_or [{n}a {n}b] {o0}"],
    "o21a_1": ["d_or [{i0} {i1}] {n}a", "d_and [{n}a {i2}] {o0}"],          # (A1 | A2) & B1
    "a21o_1": ["d_and [{i0} {i1}] {n}a", "d_or [{n}a {i2}] {o0}"],          # (A1 & A2) | B1
    # COUT = majority(A, B, CIN), SUM = A ^ B ^ CIN
    "fa_1": ["d_and [{i0} {i1}] {n}a", "d_and [{i0} {i2}] {n}b", "d_and [{i1} {i2}] {n}c",
             "d_or [{n}a {n}b {n}c] {o0}", "d_xor [{i0} {i1} {i2}] {o1}"],
    "ha_1": ["d_and [{i0} {i1}] {o0}", "d_xor [{i0} {i1}] {o1}"],
    # rising-edge D flip-flop, asynchronous active-low reset (d_dff: data clk set reset out nout)
    "dfrtp_1": ["d_inverter {i2} {n}r", "d_dff {i1} {i0} null {n}r {o0} null"],
}


def xspice_lines(gates: "GateNetlist") -> list[str]:
    """The gate netlist as XSPICE digital instances (constants: digital nets ``d_0``/``d_vdd``)."""
    out = []
    for name, kind, pins in gates.instances:
        if kind not in _XSPICE_CELLS:
            raise NetlistError("qclif", f"no XSPICE form for cell {kind}")
        n_in = len(_CELL_PINS[kind]) - _N_OUT.get(kind, 1)
        pins = ["d_0" if p == ZERO else "d_vdd" if p == ONE else p for p in pins]
        fmt = {f"i{k}": p for k, p in enumerate(pins[:n_in])} | {
            f"o{k}": p for k, p in enumerate(pins[n_in:])} | {"n": f"{name}_"}
        for j, prim in enumerate(_XSPICE_CELLS[kind]):
            model, rest = prim.split(" ", 1)
            out.append(f"a{name}_{j} {rest.format(**fmt)} x{model}")
    return out


def _sext(bits, width):
    return list(bits) + [bits[-1]] * (width - len(bits))


def _zext(bits, width):
    return list(bits) + [ZERO] * (width - len(bits))


def _const(value, width):
    return [ONE if (value >> i) & 1 else ZERO for i in range(width)]


@dataclass
class QCLIFCircuit:
    """The generated neuron: its cell instances and the names of its ports and registers."""

    cfg: QCLIFConfig
    gates: GateNetlist
    inputs: dict[str, list[str]]       #: bus_a, bus_s, c, w_a, x, w_s -> input nets (LSB first)
    registers: dict[str, list[str]]    #: va, v, z -> register Q nets (LSB first)
    d_nets: list[str]                  #: every register's D net (for settle-time measurement)

    def cell_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, kind, _ in self.gates.instances:
            out[kind] = out.get(kind, 0) + 1
        return dict(sorted(out.items()))


def build_circuit(cfg: QCLIFConfig = QCLIFConfig()) -> QCLIFCircuit:
    """The qCLIF neuron as sky130_fd_sc_hd instances (see module docstring for the datapath)."""
    g = GateNetlist()
    B, W, D = cfg.bits, cfg.bus_bits, cfg.datapath_bits
    # Inputs arrive through buffers (standing for the upstream registers' drivers).
    raw = {"bus_a": W, "bus_s": W, "c": 1, "w_a": B, "x": 1, "w_s": B}
    inputs = {name: [f"in_{name}{i}" for i in range(n)] for name, n in raw.items()}
    buf = {name: [g.cell("buf_1", net, tag=f"b{name}{i}") for i, net in enumerate(nets)]
           for name, nets in inputs.items()}
    clk = g.cell("clkbuf_4", "clk_in", tag="clk")
    # Register outputs (Q nets) exist before their logic: name them now.
    q = {"va": [f"q_va{i}" for i in range(B)], "v": [f"q_v{i}" for i in range(B)], "z": ["q_z0"]}

    # -- apical: Va' = clip(Va + bus_a + c·w_a − d, 0, 2^B − 1) ---------------------------
    port_a = [g.and2(buf["c"][0], w) for w in buf["w_a"]]
    s, cy = g.csa(_zext(q["va"], D), _sext(buf["bus_a"], D), _sext(port_a, D))
    s, cy = g.csa(s, cy, _const((-cfg.apical_decay) % 2 ** D, D))
    acc_a = g.ripple(s, cy)
    neg = acc_a[D - 1]
    over = g.or_all(acc_a[B:D - 1])
    nneg = g.inv(neg)
    d_va = [g.cell("o21a_1", acc_a[i], over, nneg) for i in range(B)]

    # -- modulation: shift k from the registered apical value's leading one ---------------
    b_hi, b_mid, b_lo = q["va"][B - 1], q["va"][B - 2], q["va"][B - 3]
    sel2 = g.cell("nor2_1", b_hi, b_mid)                          # k ≥ 2
    sel1 = g.cell("nor2_1", b_hi, g.and2(g.inv(b_mid), b_lo))     # k odd
    gate = g.or_all(q["va"])

    # -- soma ---------------------------------------------------------------------------
    port_s = [g.and2(buf["x"][0], w) for w in buf["w_s"]]
    s_s = g.ripple(_sext(buf["bus_s"], D), _sext(port_s, D))
    sh1 = [g.mux(s_s[i], s_s[min(i + 1, D - 1)], sel1) for i in range(D)]
    sh2 = [g.mux(sh1[i], sh1[min(i + 2, D - 1)], sel2) for i in range(D)]
    contrib = [g.and2(bit, gate) for bit in sh2]
    v_ext = _sext(q["v"], D)
    leak = _sext(q["v"][cfg.soma_leak_shift:], D)                 # V >> k_s
    leak_n = [g.inv(bit) for bit in leak[:B - cfg.soma_leak_shift]]
    leak_n = _sext(leak_n, D)                                     # ~(V >> k_s); +1 below
    z_theta = [ZERO] * (B - 2) + [q["z"][0]] * (D - B + 2)        # −z·θ, θ = 2^(B−2)
    s, cy = g.csa(v_ext, leak_n, contrib)
    s, cy = g.csa(s, cy, z_theta)
    acc = g.ripple(s, cy, cin=ONE)
    sign = acc[D - 1]
    upper = acc[B - 1:D - 1]
    nsign = g.inv(sign)
    pos_over = g.and2(nsign, g.or_all(upper))
    # negative overflow: sign set and not all upper bits set
    all_upper = upper[0]
    for bit in upper[1:]:
        all_upper = g.and2(all_upper, bit)
    not_neg_over = g.cell("nand2_1", sign, g.inv(all_upper))
    d_v = [g.cell("a21o_1", acc[i], not_neg_over, pos_over) for i in range(B - 1)] + [sign]
    d_z = g.and2(nsign, g.or_all(acc[B - 2:D - 1]))

    # -- registers ----------------------------------------------------------------------
    d_nets = []
    for name, ds in (("va", d_va), ("v", d_v), ("z", [d_z])):
        for qn, dn in zip(q[name], ds):
            if dn in (ZERO, ONE):
                raise NetlistError("qclif", f"register {qn} would be constant; check the widths")
            g.instances.append((f"Xreg_{qn}", "dfrtp_1", (clk, dn, "rst_n", qn)))
            d_nets.append(dn)
    return QCLIFCircuit(cfg, g, inputs, q, d_nets)


# --------------------------------------------------------------------------------------------
# Cell facts read from the PDK files
# --------------------------------------------------------------------------------------------
def transistor_count(tech, kinds) -> dict[str, int]:
    """Transistors per cell kind, counted in the cells' own SPICE netlists."""
    out = {}
    for kind in kinds:
        text = Path(tech.cell_file(kind)).read_text()
        out[kind] = sum(1 for line in text.splitlines() if re.match(r"^[XM]\d", line.strip()))
    return out


def cell_area_um2(tech, kind: str) -> float:
    """Placement area of a cell: ``SIZE x BY y`` from the cell's LEF, in µm²."""
    spice = Path(tech.cell_file(kind))
    lef = spice.with_suffix(".lef")
    if not lef.exists():
        raise TechnologyError(f"no LEF for {kind} at {lef}; run 'neurospice fetch-pdk' again "
                              "(newer versions also unpack the standard cells' LEF files)")
    m = re.search(r"SIZE\s+([\d.]+)\s+BY\s+([\d.]+)", lef.read_text())
    if not m:
        raise TechnologyError(f"{lef}: no SIZE statement")
    return float(m.group(1)) * float(m.group(2))
