"""A user's own neuron circuit: a SPICE subcircuit plus a small TOML description.

The neuron class this covers: analog neurons whose state is one membrane voltage (plus what
the circuit resets by itself), driven by a synaptic current. The TOML (reference in the
README, section "Bring your own neuron")::

    [neuron]
    netlist = "axon_hillock.sp"     # SPICE file holding the subcircuit (relative to the TOML)
    subckt = "axon_hillock"         # the subcircuit's name in that file
    technology = "generic"          # generic | sky130 | path of a model file to .include
    membrane = "in"                 # the state node: a pin, or an internal node of the subckt
    step_s = 100e-9                 # one time step of the network
    rest_V = 0.0                    # membrane voltage a neuron starts from (default 0)

    [pins]                          # a role for every pin of the .subckt line
    in = "input"                    # the synaptic current enters here
    out = "spike"                   # a spike is a rising crossing of [spike] level_V
    gnd = "ground"
    vdd = { dc_V = 1.8 }            # every other pin: a named DC source (supplies, biases)

    [spike]
    level_V = 0.9

    [ranges]
    input_A = [-2e-6, 2e-6]         # synaptic current range to characterize
    membrane_V = [-0.2, 1.0]        # membrane start voltages to characterize

The pin order is read from the ``.subckt`` line, never assumed. Devices: with ``generic`` the
subcircuit uses the models ``gnmos``/``gpmos`` (neurospice's illustrative 0.18 µm level-1
cards, :data:`GENERIC_MODEL_NAMES`), with ``sky130`` the PDK's core devices as subcircuits
(``X… d g s b sky130_fd_pr__nfet_01v8 w=1 l=0.15``, µm), with a model file whatever it
defines. Everything is checked when the description is read (:func:`load_neuron`), before
any simulation: each problem is a :class:`~neurospice.circuits.errors.ConfigError` naming the
file and what to fix.

One step of the neuron in ngspice (:func:`instance`): the membrane starts at ``v0`` (``.ic``;
every other node from the operating point with it held), an ideal current source drives the
input pin with a constant current for ``step_s`` (or a step-wise constant sequence), each
other pin is tied to its DC source or ground.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError

#: model names a netlist for the ``generic`` technology uses (cards made from the corner's
#: parameters in ``netlists/generic_180nm.lib``)
GENERIC_MODEL_NAMES = ("gnmos", "gpmos")
#: device subcircuits the ``sky130`` technology provides (its slim core-device library)
SKY130_DEVICE_NAMES = ("sky130_fd_pr__nfet_01v8", "sky130_fd_pr__pfet_01v8", "sky130_fd_pr__pfet_01v8_hvt")
ROLES = ("input", "spike", "ground", "membrane")
#: default grid sizes (membrane rows × input columns); ``--quick`` uses the coarse ones
GRID_POINTS = {"full": (49, 81), "quick": (13, 21)}
#: SPICE magnitude suffixes (case-insensitive; ``meg`` before ``m``)
_SUFFIX = {"t": 1e12, "g": 1e9, "meg": 1e6, "k": 1e3, "m": 1e-3, "u": 1e-6, "n": 1e-9,
           "p": 1e-12, "f": 1e-15, "a": 1e-18}


def spice_number(text: str) -> float:
    """``'1.5u'`` → 1.5e-6 (SPICE suffixes; trailing unit letters ignored, as SPICE does)."""
    m = re.fullmatch(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)(meg|[tgkmunpfa])?[a-z]*\s*",
                     str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"not a SPICE number: {text!r}")
    return float(m.group(1)) * _SUFFIX.get((m.group(2) or "").lower(), 1.0)


def logical_lines(text: str) -> list[str]:
    """SPICE lines with ``+`` continuations joined and comments (``*`` lines, ``;``/``$`` tails) dropped."""
    out: list[str] = []
    for raw in text.splitlines():
        line = re.split(r"\s[;$]", raw, maxsplit=1)[0].rstrip()
        s = line.strip()
        if not s or s.startswith("*"):
            continue
        if s.startswith("+") and out:
            out[-1] += " " + s[1:].strip()
        else:
            out.append(s)
    return out


@dataclass(frozen=True)
class Subcircuit:
    """One ``.subckt`` of a SPICE file: its pins in order, its parameters and its body lines."""
    name: str
    pins: tuple[str, ...]
    body: tuple[str, ...]


def subcircuits(text: str) -> dict[str, Subcircuit]:
    """Every top-level ``.subckt`` of ``text`` by lower-case name (nested ones stay in the body)."""
    found, stack = {}, []
    for line in logical_lines(text):
        words = line.split()
        head = words[0].lower()
        if head == ".subckt":
            if len(words) < 2:
                raise ValueError(f".subckt line without a name: {line!r}")
            pins = tuple(w for w in words[2:] if "=" not in w and w.lower() != "params:")
            stack.append((words[1], pins, []))
        elif head == ".ends" and stack:
            name, pins, body = stack.pop()
            if stack:
                stack[-1][2].extend([f".subckt {name} {' '.join(pins)}", *body, ".ends"])
            else:
                found[name.lower()] = Subcircuit(name, pins, tuple(body))
        elif stack:
            stack[-1][2].append(line)
    return found


def defined_models(text: str) -> set[str]:
    """Names of ``.model`` cards and ``.subckt`` definitions in ``text`` (lower case)."""
    names = set()
    for line in logical_lines(text):
        w = line.split()
        if w[0].lower() in (".model", ".subckt") and len(w) > 1:
            names.add(w[1].lower())
    return names


def models_used(body) -> set[str]:
    """Model and subcircuit names the body's transistors, diodes and instances refer to."""
    used = set()
    for line in body:
        w = [x for x in line.split() if "=" not in x]
        kind = w[0][0].lower()
        if kind == "m" and len(w) >= 6:
            used.add(w[5].lower())
        elif kind == "d" and len(w) >= 4:
            used.add(w[3].lower())
        elif kind == "q" and len(w) >= 5:
            used.add(w[4].lower())
        elif kind == "x" and len(w) >= 2:
            used.add(w[-1].lower())
    return used


def body_nodes(body) -> set[str]:
    """Node names the body's element lines connect (lower case; first tokens after the name)."""
    arity = {"r": 2, "c": 2, "l": 2, "v": 2, "i": 2, "d": 2, "m": 4, "q": 3, "e": 4, "g": 4,
             "f": 2, "h": 2, "b": 2, "s": 4, "w": 2, "j": 3}
    nodes = set()
    for line in body:
        w = line.split()
        kind = w[0][0].lower()
        if kind == "x":
            nodes.update(x.lower() for x in w[1:-1] if "=" not in x)
        elif kind in arity:
            nodes.update(x.lower() for x in w[1:1 + arity[kind]])
    return nodes


@dataclass(frozen=True)
class NeuronSpec:
    """A user's neuron, read and checked (see the module docstring); everything a simulation
    needs, the netlist text included, so a spec written into an artefact or checkpoint is
    self-contained."""
    name: str
    subckt: str
    netlist_text: str
    pins: tuple[str, ...]
    roles: dict                     #: pin → 'input' | 'spike' | 'ground' | 'membrane' | volts (DC source)
    membrane: str                   #: the membrane node: a pin, or an internal node of the subckt
    technology: str                 #: 'generic' | 'sky130' | path of a model file
    step_s: float
    spike_level_V: float
    input_A: tuple[float, float]
    membrane_V: tuple[float, float]
    rest_V: float = 0.0
    source: str = ""                #: the TOML path, or 'pyspice'
    grid: dict = field(default_factory=dict)   #: optional {'membrane_points', 'input_points'}

    @property
    def netlist_sha256(self) -> str:
        return hashlib.sha256(self.netlist_text.encode()).hexdigest()

    def pin_of(self, role: str) -> str:
        return next(p for p, r in self.roles.items() if r == role)

    @property
    def dc_sources(self) -> dict[str, float]:
        """``{pin: volts}`` of the pins tied to DC sources."""
        return {p: float(r) for p, r in self.roles.items() if not isinstance(r, str)}

    @property
    def membrane_is_pin(self) -> bool:
        return self.membrane.lower() in (p.lower() for p in self.pins)

    def grid_points(self, quick: bool) -> tuple[int, int]:
        rows, cols = GRID_POINTS["quick" if quick else "full"]
        if not quick:
            rows = int(self.grid.get("membrane_points", rows))
            cols = int(self.grid.get("input_points", cols))
        return rows, cols

    def to_dict(self) -> dict:
        d = asdict(self)
        d["roles"] = {p: r for p, r in self.roles.items()}
        return d

    def identity(self) -> str:
        """SHA-256 of everything that decides the neuron's numbers (all but where it was read
        from): equal for the same description read from a file, a PySpice object or an artefact."""
        import json
        body = {k: v for k, v in self.to_dict().items() if k != "source"}
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()

    @classmethod
    def from_dict(cls, d: dict) -> "NeuronSpec":
        d = dict(d)
        for k in ("pins", "input_A", "membrane_V"):
            d[k] = tuple(d[k])
        return cls(**d)


# -- reading and checking -----------------------------------------------------------------
def _bad(where: str, msg: str) -> ConfigError:
    return ConfigError(f"{where}: {msg}")


def load_neuron(path) -> NeuronSpec:
    """Read and check a neuron description (TOML) and its netlist; :class:`ConfigError`
    naming the file and what to fix on any problem."""
    import tomllib
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"neuron description {path} not found (give the TOML file of your neuron)")
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _bad(str(path), f"not valid TOML: {exc}") from None
    where = str(path)
    neuron = _table(doc, "neuron", where)
    netlist = neuron.get("netlist")
    if not isinstance(netlist, str) or not netlist:
        raise _bad(where, "[neuron] netlist: name the SPICE file that holds the subcircuit")
    net_path = (path.parent / netlist) if not Path(netlist).is_absolute() else Path(netlist)
    if not net_path.is_file():
        raise _bad(where, f"[neuron] netlist: file {net_path} not found")
    try:
        text = net_path.read_text()
    except UnicodeDecodeError:
        raise _bad(where, f"[neuron] netlist: {net_path} is not a text file") from None
    tech = neuron.get("technology", "generic")
    if isinstance(tech, str) and tech not in ("generic", "sky130") and not Path(tech).is_absolute():
        candidate = path.parent / tech
        tech = str(candidate) if candidate.exists() else tech
    return make_spec(text, where=where, source=str(path), name=neuron.get("name"),
                     subckt=neuron.get("subckt"), technology=tech, membrane=neuron.get("membrane"),
                     step_s=neuron.get("step_s"), rest_V=neuron.get("rest_V", 0.0),
                     pins=_table(doc, "pins", where), spike=_table(doc, "spike", where),
                     ranges=_table(doc, "ranges", where), grid=doc.get("grid", {}))


def neuron_from_pyspice(subcircuit, **description) -> NeuronSpec:
    """The same neuron given as a PySpice ``SubCircuit`` (its printed SPICE is what is
    characterized); ``description`` holds the TOML's fields: ``technology, membrane, step_s,
    rest_V, pins, spike, ranges`` (dicts as in the TOML), optional ``name``, ``grid``."""
    text = str(subcircuit)
    name = getattr(subcircuit, "name", None) or description.get("subckt")
    return make_spec(text, where=f"PySpice SubCircuit {name!r}", source="pyspice",
                     subckt=name, **description)


def _table(doc: dict, key: str, where: str) -> dict:
    t = doc.get(key)
    if not isinstance(t, dict):
        raise _bad(where, f"missing table [{key}]")
    return t


def _pair(where: str, key: str, value, unit: str) -> tuple[float, float]:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value)):
        raise _bad(where, f"[ranges] {key} must be [low, high] in {unit}, got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if not lo < hi:
        raise _bad(where, f"[ranges] {key} = [{lo:g}, {hi:g}] is empty or inverted: give low < high ({unit})")
    return lo, hi


def _positive(where: str, key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise _bad(where, f"{key} must be a positive number, got {value!r}")
    return float(value)


def _real(where: str, key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(where, f"{key} must be a number, got {value!r}")
    return float(value)


def make_spec(text: str, *, where: str, source: str, subckt, technology, membrane, step_s,
              pins: dict, spike: dict, ranges: dict, rest_V=0.0, name=None, grid=None) -> NeuronSpec:
    """Check a description against its netlist text and build the :class:`NeuronSpec`."""
    if not isinstance(subckt, str) or not subckt:
        raise _bad(where, "[neuron] subckt: name the subcircuit to characterize")
    try:
        subs = subcircuits(text)
    except ValueError as exc:
        raise _bad(where, str(exc)) from None
    sub = subs.get(subckt.lower())
    if sub is None:
        have = ", ".join(s.name for s in subs.values()) or "none"
        raise _bad(where, f"subcircuit {subckt!r} is not in the netlist (it defines: {have})")
    if not isinstance(pins, dict):
        raise _bad(where, "[pins] must map each pin of the .subckt line to its role")
    roles, lower = {}, {p.lower(): p for p in sub.pins}
    for pin, role in pins.items():
        if pin.lower() not in lower:
            raise _bad(where, f"[pins] names pin {pin!r}, which subcircuit {sub.name} does not have "
                              f"(its pins, from the .subckt line: {' '.join(sub.pins)})")
        if isinstance(role, dict):
            if set(role) != {"dc_V"}:
                raise _bad(where, f"[pins] {pin}: a DC source is {{ dc_V = volts }}, got {role!r}")
            role = _real(where, f"[pins] {pin}.dc_V", role["dc_V"])
        elif role not in ROLES:
            raise _bad(where, f"[pins] {pin} = {role!r}: a role is one of {', '.join(ROLES)} "
                              "or { dc_V = volts }")
        roles[lower[pin.lower()]] = role
    missing = [p for p in sub.pins if p not in roles]
    if missing:
        raise _bad(where, f"[pins]: pin(s) {', '.join(missing)} of {sub.name} have no role; give each "
                          "one: input, spike, ground, membrane, or { dc_V = volts }")
    for role in ("input", "spike"):
        n = sum(r == role for r in roles.values())
        if n != 1:
            raise _bad(where, f"[pins]: exactly one pin must be the {role}, found {n}")
    mem_pins = [p for p, r in roles.items() if r == "membrane"]
    if len(mem_pins) > 1:
        raise _bad(where, "[pins]: at most one pin is the membrane")
    if membrane is None:
        if not mem_pins:
            raise _bad(where, "[neuron] membrane: name the membrane node (a pin or an internal node)")
        membrane = mem_pins[0]
    if not isinstance(membrane, str) or not membrane:
        raise _bad(where, f"[neuron] membrane must be a node name, got {membrane!r}")
    if mem_pins and membrane.lower() != mem_pins[0].lower():
        raise _bad(where, f"[neuron] membrane = {membrane!r} but [pins] makes {mem_pins[0]!r} the membrane")
    if membrane.lower() in lower:
        membrane = lower[membrane.lower()]
    elif "." not in membrane and membrane.lower() not in body_nodes(sub.body):
        raise _bad(where, f"[neuron] membrane: node {membrane!r} is neither a pin nor a node inside "
                          f"{sub.name}")
    for line in logical_lines(text):
        w = line.split()
        if w[0].lower() in (".include", ".lib") and len(w) > 1 and not Path(w[1].strip("'\"")).is_absolute():
            raise _bad(where, f"netlist line {line!r}: a relative path cannot be found from the "
                              "simulation folder; give an absolute path, or the model file as "
                              "[neuron] technology")
    tech = _check_technology(where, technology, text, sub)
    step = _positive(where, "[neuron] step_s", step_s)
    level = _real(where, "[spike] level_V", spike.get("level_V"))
    i_rng = _pair(where, "input_A", ranges.get("input_A"), "A")
    v_rng = _pair(where, "membrane_V", ranges.get("membrane_V"), "V")
    rest = _real(where, "[neuron] rest_V", rest_V)
    if not v_rng[0] <= rest <= v_rng[1]:
        raise _bad(where, f"[neuron] rest_V = {rest:g} V is outside [ranges] membrane_V "
                          f"[{v_rng[0]:g}, {v_rng[1]:g}]")
    grid = dict(grid or {})
    for k in grid:
        if k not in ("membrane_points", "input_points"):
            raise _bad(where, f"[grid] {k}: unknown (membrane_points, input_points)")
        if isinstance(grid[k], bool) or not isinstance(grid[k], int) or grid[k] < 3:
            raise _bad(where, f"[grid] {k} must be a whole number ≥ 3, got {grid[k]!r}")
    return NeuronSpec(name=str(name or sub.name), subckt=sub.name, netlist_text=text, pins=sub.pins,
                      roles=roles, membrane=membrane, technology=tech, step_s=step,
                      spike_level_V=level, input_A=i_rng, membrane_V=v_rng, rest_V=rest,
                      source=source, grid=grid)


def _check_technology(where: str, technology, text: str, sub: Subcircuit) -> str:
    if not isinstance(technology, str) or not technology:
        raise _bad(where, "[neuron] technology: generic, sky130 or the path of a model file")
    if technology == "generic":
        provided = set(GENERIC_MODEL_NAMES)
    elif technology == "sky130":
        provided = set(SKY130_DEVICE_NAMES)
    else:
        model_file = Path(technology)
        if not model_file.is_file():
            raise _bad(where, f"[neuron] technology {technology!r}: not generic or sky130, and no "
                              "model file there")
        provided = defined_models(model_file.read_text(errors="replace"))
    if technology == "sky130":
        for line in sub.body:
            w = line.split()
            if w[0][0].lower() == "m" and len(w) >= 6 and w[5].lower() in SKY130_DEVICE_NAMES:
                raise _bad(where, f"line {line!r}: sky130 devices are subcircuits; instantiate them with "
                                  f"X (X{w[0][1:]} d g s b {w[5]} w=… l=…, in µm)")
    own = defined_models(text)
    all_subs = subcircuits(text)
    used = models_used(sub.body)
    for name in list(used):          # models used by the file's other subcircuits, one level down
        if name in all_subs:
            used |= models_used(all_subs[name].body)
    lacking = sorted(used - own - provided)
    if lacking:
        raise _bad(where, f"model(s) {', '.join(lacking)} used by {sub.name} are not in technology "
                          f"{technology!r} (it provides {', '.join(sorted(provided)) or 'none'}) nor "
                          "defined in the netlist")
    return technology


# -- simulation decks -----------------------------------------------------------------------
#: top-level card kinds of a user's netlist that a deck keeps (everything else at top level —
#: instances, sources, analyses, ``.end`` — belongs to the user's own test bench, not the neuron)
KEPT_CARDS = (".model", ".param", ".func", ".global", ".include", ".lib", ".option", ".options", ".csparam")


def deck_library(text: str) -> str:
    """The part of a user's netlist a deck includes: its subcircuits and top-level model,
    parameter and include cards (continuations joined, comments dropped)."""
    out, depth, skip = [], 0, False
    for line in logical_lines(text):
        head = line.split()[0].lower()
        if head == ".control":
            skip = True
        if skip:
            skip = head != ".endc"
            continue
        if head == ".subckt":
            depth += 1
        if depth or head.startswith(KEPT_CARDS):
            out.append(line)
        if head == ".ends":
            depth = max(0, depth - 1)
    return "\n".join(out)


def generic_model_cards(common: str) -> list[str]:
    """``.model gnmos/gpmos`` cards from the generic corner's parameters (``gn_vto``...)."""
    return [f".model gnmos nmos {common} vto={{gn_vto}} kp={{gn_kp}}",
            f".model gpmos pmos {common} vto={{gp_vto}} kp={{gp_kp}}"]


def mismatched_subckt(spec: NeuronSpec, suffix: str, rng: np.random.Generator,
                      a_vt_mV_um: float, common: str) -> tuple[str, str]:
    """A copy of the neuron's subcircuit named ``<subckt>_<suffix>`` whose generic transistors
    each get their own model card with a threshold shift drawn from Pelgrom's law
    (σ = A_VT/√(W·L), W and L from the instance line). Returns (text, new name)."""
    sub = subcircuits(spec.netlist_text)[spec.subckt.lower()]
    name = f"{sub.name}_{suffix}"
    lines, cards = [f".subckt {name} {' '.join(sub.pins)}"], []
    for k, line in enumerate(sub.body):
        w = line.split()
        if w[0][0].lower() == "m" and len(w) >= 6 and w[5].lower() in GENERIC_MODEL_NAMES:
            params = {x.split("=")[0].lower(): x.split("=")[1] for x in w[6:] if "=" in x}
            area_um2 = spice_number(params.get("w", "1u")) * spice_number(params.get("l", "1u")) * 1e12
            shift = a_vt_mV_um * 1e-3 / math.sqrt(area_um2) * rng.standard_normal()
            pol, vto, kp = (("nmos", "gn_vto", "gn_kp") if w[5].lower() == "gnmos"
                            else ("pmos", "gp_vto", "gp_kp"))
            sign = 1 if pol == "nmos" else -1
            model = f"{w[5]}_{suffix}_{k}"
            cards.append(f".model {model} {pol} {common} vto={{{vto}+({sign * shift:.6g})}} kp={{{kp}}}")
            w[5] = model
            line = " ".join(w)
        lines.append(line)
    lines.append(f".ends {name}")
    return "\n".join(cards + lines), name


def membrane_vector(spec: NeuronSpec, tag: str) -> str:
    """The raw-file vector of the membrane of instance ``x<tag>``."""
    node = spec.membrane.lower()
    return f"v({tag}_{node})" if spec.membrane_is_pin else f"v(x{tag}.{node})"


def instance(spec: NeuronSpec, tag: str, currents_A, v0_V: float, subckt_name: str | None = None) -> str:
    """One neuron instance ``x<tag>``: DC sources on its source pins, the input current (one
    value per step, step-wise constant with edges of 0.1 % of a step), membrane ``.ic``."""
    nodes, lines = [], []
    for pin in spec.pins:
        role = spec.roles[pin]
        if role == "ground":
            nodes.append("0")
            continue
        node = f"{tag}_{pin.lower()}"
        nodes.append(node)
        if not isinstance(role, str):
            lines.append(f"V{tag}_{pin.lower()} {node} 0 DC {role:.12g}")
    i_node = f"{tag}_{spec.pin_of('input').lower()}"
    currents = [float(c) for c in np.atleast_1d(currents_A)]
    if len(currents) == 1:
        lines.append(f"I{tag}_in 0 {i_node} DC {currents[0]:.12g}")
    else:
        edge = spec.step_s * 1e-3
        pts = [f"0 {currents[0]:.12g}"]
        for k in range(1, len(currents)):
            t = k * spec.step_s
            pts += [f"{t:.12g} {currents[k - 1]:.12g}", f"{t + edge:.12g} {currents[k]:.12g}"]
        lines.append(f"I{tag}_in 0 {i_node} DC {currents[0]:.12g} PWL({' '.join(pts)})")
    lines.append(f"X{tag} {' '.join(nodes)} {subckt_name or spec.subckt}")
    mem = membrane_vector(spec, tag)
    lines.append(f".ic {mem}={v0_V:.12g}")
    return "\n".join(lines)


def saves(spec: NeuronSpec, tag: str) -> list[str]:
    out = [membrane_vector(spec, tag), f"v({tag}_{spec.pin_of('spike').lower()})",
           f"v({tag}_{spec.pin_of('input').lower()})"]
    out += [f"i(v{tag}_{pin.lower()})" for pin in spec.dc_sources]
    return out


def measure_steps(plot, spec: NeuronSpec, tag: str, currents_A) -> dict:
    """Per step of instance ``tag``: end-of-step membrane voltage, spike (a rising crossing
    of the spike level inside the step) and its time within the step, energy delivered by
    each DC source (``E = −∫V·I dt``: a delivering source's current is negative) and by the
    input current source (``∫v_in·i dt``, ``currents_A`` one value per step)."""
    currents = np.atleast_1d(np.asarray(currents_A, float))
    n_steps = len(currents)
    t = plot["time"]
    mem = plot[membrane_vector(spec, tag)]
    spk = plot[f"v({tag}_{spec.pin_of('spike').lower()})"]
    v_in = plot[f"v({tag}_{spec.pin_of('input').lower()})"]
    above = spk > spec.spike_level_V
    idx = np.flatnonzero(above[1:] & ~above[:-1])
    step = spec.step_s
    t_cross = t[idx] + (spec.spike_level_V - spk[idx]) * (t[idx + 1] - t[idx]) / (spk[idx + 1] - spk[idx])
    # the input source pushes i into its node: power into the circuit is v_in·i (step-wise)
    p_in = v_in * currents[np.minimum((t / step).astype(int), n_steps - 1)]
    p_src = {pin: -volts * plot[f"i(v{tag}_{pin.lower()})"] for pin, volts in spec.dc_sources.items()}
    out = {"v_end_V": [], "spike": [], "spike_time_s": [], "energy_J": [], "energy_input_J": [],
           "energy_by_source_J": {pin: [] for pin in p_src}}
    for k in range(n_steps):
        a, b = k * step, (k + 1) * step
        out["v_end_V"].append(float(np.interp(b, t, mem)))
        inside = t_cross[(t_cross > a + 1e-15) & (t_cross <= b)]
        out["spike"].append(int(len(inside) > 0))
        out["spike_time_s"].append(float(inside[0] - a) if len(inside) else None)
        sel = (t >= a) & (t <= b)
        tt = np.concatenate([[a], t[sel], [b]])
        e_src = {pin: float(np.trapezoid(np.interp(tt, t, p), tt)) for pin, p in p_src.items()}
        for pin, e in e_src.items():
            out["energy_by_source_J"][pin].append(e)
        out["energy_J"].append(sum(e_src.values()))
        out["energy_input_J"].append(float(np.trapezoid(np.interp(tt, t, p_in), tt)))
    return out
