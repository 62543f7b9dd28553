"""Netlist templates and model cards shipped with neurospice (data package)."""
from pathlib import Path

NETLIST_DIR = Path(__file__).resolve().parent


def path(name: str) -> Path:
    """Path of a shipped netlist file, e.g. ``path('memcap.sp')``."""
    p = NETLIST_DIR / name
    if not p.exists():
        raise FileNotFoundError(f"no shipped netlist {name!r} in {NETLIST_DIR}")
    return p
