"""The rules every option and config field is checked by, one function per kind of rule.

The config dataclasses (training, compare, sweeps, qCLIF widths) call these in
``__post_init__``, and the CLI builds those same objects from its options, so a rule is
written once and the CLI and the Python API refuse the same values with the same words —
before any simulation, training or file write.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from neurospice.circuits.errors import ConfigError

#: absolute zero: no temperature below it
ABSOLUTE_ZERO_C = -273.15


def whole(name: str, value, lo: int | None = None, hi: int | None = None, optional: bool = False):
    """An integer (bools refused) within ``[lo, hi]``; ``None`` allowed when ``optional``."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{name} must be {_range(lo, hi)}, got {value}")
    return value


def number(name: str, value, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, hi_open: bool = False, optional: bool = False):
    """A finite real number within ``lo``/``hi`` (open ends where said)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    bad = ((lo is not None and (value <= lo if lo_open else value < lo))
           or (hi is not None and (value >= hi if hi_open else value > hi)))
    if bad:
        raise ConfigError(f"{name} must be {_range(lo, hi, lo_open, hi_open)}, got {value:g}")
    return float(value)


def choice(name: str, value, choices):
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def temperature_C(name: str, value):
    return number(name, value, lo=ABSOLUTE_ZERO_C, lo_open=True)


def device(name: str, value: str):
    if not re.fullmatch(r"cpu|cuda(:\d+)?", str(value)):
        raise ConfigError(f"{name} must be cpu, cuda or cuda:N, got {value!r}")
    return value


def existing_file(name: str, value):
    if not Path(value).is_file():
        raise ConfigError(f"{name}: no file {value}")
    return value


def dataset(name: str, spec: str, extra: tuple[str, ...] = ()):
    """``digits`` | ``mnist[:PATH]`` | ``idx:DIR`` (+ ``extra`` kinds such as ``dvs``), the
    path of a given PATH/DIR existing."""
    kind, _, arg = str(spec).partition(":")
    kinds = ("digits", "mnist", "idx", *extra)
    if kind not in kinds:
        raise ConfigError(f"{name}: unknown dataset {spec!r}; use digits, mnist[:PATH], idx:DIR"
                          + "".join(f" or {k}:DIR" for k in extra))
    if kind == "digits" and arg:
        raise ConfigError(f"{name}: digits takes no path, got {spec!r}")
    if kind in ("idx", *extra) and not arg:
        raise ConfigError(f"{name}: {kind} needs a folder: {kind}:DIR")
    if arg and not Path(arg).exists():
        raise ConfigError(f"{name}: {arg} does not exist")
    return spec


def _range(lo, hi, lo_open=False, hi_open=False) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '≥'} {lo:g}"
    return f"{'<' if hi_open else '≤'} {hi:g}"
