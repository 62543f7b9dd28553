"""CLI helpers the families share: the training options every family has, worded once, and
a config dataclass from parsed options."""
from __future__ import annotations

import sys

#: option → (type, help) for the training options every family offers; defaults come from
#: the family's config dataclass (the one place they are written)
COMMON_TRAIN_OPTIONS = {
    "dataset": (str, "digits | mnist[:PATH] | idx:DIR"),
    "epochs": (int, "training epochs"),
    "hidden": (int, "hidden neurons"),
    "lr": (float, "learning rate (Adam)"),
    "seed": (int, "random seed (initial weights, shuffling, split)"),
    "device": (str, "cpu | cuda"),
    "limit": (int, "use only N training samples (smoke runs)"),
}


def add_common_train_options(parser, config_cls, help_overrides: dict | None = None) -> None:
    """``--dataset --epochs --hidden --lr --seed --device --limit`` with ``config_cls``'s defaults."""
    for name, (kind, text) in COMMON_TRAIN_OPTIONS.items():
        text = (help_overrides or {}).get(name, text)
        parser.add_argument(f"--{name}", type=kind, default=getattr(config_cls, name),
                            help=f"{text} (default %(default)s)")


def config_from_args(cls, args, names):
    """``cls`` from the options the user gave (``None``: the config's default)."""
    return cls(**{k: getattr(args, k) for k in names if getattr(args, k, None) is not None})


def _given(value, default):
    """An option's value, or ``default`` where the user gave none (0 is a value, not 'none')."""
    return default if value is None else value


def progress_of(args) -> bool:
    """Progress bars only for a person at a terminal (never with ``--json``)."""
    return not getattr(args, "json", False) and sys.stderr.isatty()
