"""The memcapacitive neuron's recipes (single-ended and differential), one step each."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from neurospice.circuits import memcap as mc
from neurospice.circuits.errors import NeurospiceError
from neurospice.circuits.technology import Technology

from .recipes import GENERIC_MISMATCH, mc_sample, pelgrom_shifts_V, register_recipe


@register_recipe
@dataclass
class MemcapRecipe:
    """One step of the memcapacitive neuron from a given membrane voltage.

    Axes: ``c_active_fF`` (total capacitance of the inputs that spike in this step),
    ``v_mem0_V`` (membrane voltage at the start of the step), optional ``fan_in``
    (synapses on the row; the idle ones load the membrane through their diodes'
    parasitics), optional ``vdd_V``. The active capacitance is realized as ``n``
    identical synapses of ``c_active/n`` each, every one within [C_min, C_max].
    """

    name: str = "memcap"
    version: int = 1

    @staticmethod
    def check_axes(axes: dict) -> None:
        from neurospice import validate as v
        for f in axes.get("fan_in", []):
            v.whole("fan_in", f, lo=1)
        for c in axes.get("c_active_fF", []):
            v.number("c_active_fF", c, lo=0)
        for vdd in axes.get("vdd_V", []):
            v.number("vdd_V", vdd, lo=0, lo_open=True)

    def design(self, point: dict, options: dict) -> mc.NeuronDesign:
        d = mc.NeuronDesign(**{k: v for k, v in options.get("design", {}).items()})
        if "vdd_V" in point:
            d = replace(d, vdd_V=float(point["vdd_V"]), v_spike_V=float(point["vdd_V"]))
        return d

    def build(self, point: dict, tag: str, tech: Technology, options: dict) -> mc.NeuronPoint:
        d = self.design(point, options)
        c_act = float(point["c_active_fF"]) * 1e-15
        fan_in = int(point.get("fan_in", 0))
        n_act = max(1, math.ceil(c_act / d.device.c_max_F - 1e-9)) if c_act > 0 else 0
        c_syn = c_act / n_act if n_act else d.device.c_min_F
        if n_act and c_syn < d.device.c_min_F:
            raise NeurospiceError(f"c_active_fF={point['c_active_fF']} is below one synapse's "
                                  f"C_min={d.device.c_min_F * 1e15:g} fF")
        n_idle = max(0, fan_in - n_act)
        caps, mult, spikes = [], [], []
        if n_act:
            caps.append(c_syn); mult.append(n_act); spikes.append(1)
        if n_idle:
            mid = 0.5 * (d.device.c_min_F + d.device.c_max_F)
            caps.append(mid); mult.append(n_idle); spikes.append(0)
        if not caps:  # no synapse at all: one idle minimum device keeps the topology
            caps, mult, spikes = [d.device.c_min_F], [1], [0]
        rng = mc_sample(point)
        c_scale, dvth = 1.0, None
        if rng is not None:
            caps = list(np.asarray(caps) * (1 + GENERIC_MISMATCH["memcap_sigma"]
                                            * rng.standard_normal(len(caps))))
            c_scale = 1 + GENERIC_MISMATCH["c_mem_sigma"] * rng.standard_normal()
            if tech.name == "generic-180nm":
                areas = {"diode": d.diode_w_um * d.diode_l_um, "prst": d.prst_w_um * d.l_um,
                         "leak": d.leak_w_um * d.leak_l_um, "comp_n": d.comp_wn_um * d.l_um,
                         "comp_p": d.comp_wp_um * d.l_um, "fire": d.fire_w_um * d.l_um,
                         "reset": d.reset_w_um * d.l_um}
                dvth = pelgrom_shifts_V(areas, rng)
        return mc.neuron_point(tag, tech, d, np.array([spikes]), caps, mult,
                               v_mem0_V=float(point.get("v_mem0_V", 0.0)), c_mem_scale=c_scale,
                               dvth_V=dvth)

    def analysis(self, piece, options) -> str:
        return mc.analysis_cards([piece])

    def assemble(self, tech, pieces, temperature_C, options) -> str:
        return mc.assemble(tech, pieces, temperature_C)

    def measure(self, plot, piece, point, options) -> dict:
        d = self.design(point, options)
        m = mc.measure(plot, piece, d)
        return {"v_mem_end_V": m["v_mem_end_V"][0], "spike": m["spikes"][0],
                "v_mem_peak_V": m["v_mem_max_V"], "energy_J": m["energy_J"]}


@register_recipe
@dataclass
class MemcapDiffRecipe:
    """The differential memcapacitive neuron (``memcap.DiffNeuronDesign``), one step.

    ``mode = "half"`` (axes ``c_active_fF``, ``v_mem0_V``, ``fan_in``): the positive membrane's
    response with firing disabled — the same half circuit serves both sides. The active
    capacitance is lumped as in :class:`MemcapRecipe`; the negative side sees C_min per row.
    ``mode = "boundary"`` (axes ``v_neg0_V``, ``dv_V``, ``fan_in``): no input, membranes held at
    ``v_neg0 + dv`` and ``v_neg0``: does the comparator fire? Gives the firing offset.
    """

    name: str = "memcap_diff"
    version: int = 1
    check_axes = staticmethod(MemcapRecipe.check_axes)

    def design(self, point: dict, options: dict) -> mc.DiffNeuronDesign:
        return mc.DiffNeuronDesign(**options.get("design", {}),
                                   fire_enabled=point.get("mode", "half") != "half")

    def build(self, point, tag, tech, options):
        d = self.design(point, options)
        fan_in = max(1, int(point.get("fan_in", 1)))
        cmin = d.device.c_min_F
        if point.get("mode", "half") == "boundary":
            vn = float(point["v_neg0_V"])
            return mc.diff_neuron_point(tag, tech, d, np.zeros((1, 1)), cmin, cmin, [fan_in],
                                        v_pos0_V=vn + float(point["dv_V"]), v_neg0_V=vn,
                                        dvth_V=self.comparator_mismatch(point, tech, d))
        c_act = float(point["c_active_fF"]) * 1e-15
        n_act = max(1, math.ceil(c_act / d.device.c_max_F - 1e-9)) if c_act > 0 else 0
        n_act = min(n_act, fan_in) if n_act else 0
        c_syn = c_act / n_act if n_act else cmin
        if n_act and c_syn < cmin:
            raise NeurospiceError(f"c_active_fF={point['c_active_fF']} is below one synapse's "
                                  f"C_min={cmin * 1e15:g} fF")
        mid = 0.5 * (cmin + d.device.c_max_F)
        caps_p, caps_n, mult, spikes = [], [], [], []
        if n_act:
            caps_p.append(c_syn); caps_n.append(cmin); mult.append(n_act); spikes.append(1)
        if fan_in - n_act > 0:
            caps_p.append(mid); caps_n.append(mid); mult.append(fan_in - n_act); spikes.append(0)
        return mc.diff_neuron_point(tag, tech, d, np.array([spikes]), caps_p, caps_n, mult,
                                    v_pos0_V=float(point["v_mem0_V"]))

    @staticmethod
    def comparator_mismatch(point: dict, tech: Technology, d: mc.DiffNeuronDesign) -> dict | None:
        """A Monte Carlo sample's threshold shifts (V) of the comparator's matched devices
        (generic technology: Pelgrom, σ = A_VT/√(W·L)); ``None`` for a nominal point and for
        sky130, whose model cards draw their own per-device mismatch."""
        rng = mc_sample(point)
        if rng is None or tech.name != "generic-180nm":
            return None
        areas = {"pair_p": d.pair_w_um * d.offset_ratio * d.pair_l_um, "pair_n": d.pair_w_um * d.pair_l_um,
                 "mirror_a": d.mirror_w_um * d.mirror_l_um, "mirror_b": d.mirror_w_um * d.mirror_l_um}
        return pelgrom_shifts_V(areas, rng)

    def analysis(self, piece, options) -> str:
        return mc.analysis_cards([piece])

    def assemble(self, tech, pieces, temperature_C, options) -> str:
        return mc.assemble(tech, pieces, temperature_C, title="neurospice memcap differential")

    def measure(self, plot, piece, point, options) -> dict:
        m = mc.measure_diff(plot, piece, self.design(point, options))
        return {"v_mem_end_V": m["v_p_end_V"][0], "v_mem_peak_V": m["v_p_peak_V"][0],
                "spike": m["spikes"][0], "energy_J": m["energy_J"]}
