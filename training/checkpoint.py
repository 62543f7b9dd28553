"""Checkpoints of every family: one format, versioned, naming its family.

A checkpoint is a ``torch.save`` dict ``{format, version, family, config, sizes, state,
epoch, history, optimizer, ...}`` written atomically; ``epoch`` counts finished epochs.
:func:`read_checkpoint` checks format and version (and the family, where the caller says
which) and raises :class:`CheckpointError` naming the file and what is wrong; files written
before checkpoints named their family are read through the families'
``legacy_checkpoint_formats``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from neurospice import registry
from neurospice.circuits.errors import NeurospiceError
from neurospice.files import atomic_torch_save

CHECKPOINT_FORMAT = "neurospice.checkpoint"
CHECKPOINT_VERSION = 2


class CheckpointError(NeurospiceError):
    """A checkpoint file is missing, corrupt, of another format, version or family."""


def save_checkpoint(path, family: str, **body) -> Path:
    """Write ``{format, version, family, **body}`` atomically to ``path``."""
    ck = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "family": family, **body}
    return atomic_torch_save(path, ck)


def read_torch_file(path) -> object:
    """``torch.load`` a checkpoint file on the CPU; a missing or damaged file raises
    :class:`CheckpointError` naming the cause."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged zip/pickle
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch file: "
                              f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _legacy_family(ck: dict) -> str | None:
    if "family" in ck or ck.get("version") == CHECKPOINT_VERSION:   # every version 2 names it
        return None
    for fam in registry.families():
        if ck.get("format") in fam.legacy_checkpoint_formats:
            return fam.name
    return None


def read_checkpoint(path, family: str | None = None) -> dict:
    """The checkpoint dict at ``path`` (its ``family`` filled in for legacy files);
    with ``family``, refuse a checkpoint of another family. Besides format and version it
    checks what every reader takes from a checkpoint: ``family`` a name, ``config`` a dict,
    ``state`` (where present) a dict."""
    ck = read_torch_file(path)
    if not isinstance(ck, dict):
        raise CheckpointError(f"{path} is not a neurospice checkpoint (it holds a "
                              f"{type(ck).__name__}, not a dict)")
    legacy = _legacy_family(ck)
    if legacy:
        ck = {**ck, "family": legacy}
    elif ck.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a neurospice checkpoint "
                              f"(format {_short(ck.get('format'))})")
    elif ck.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {_short(ck.get('version'))}, this "
                              f"neurospice reads {CHECKPOINT_VERSION}")
    if not isinstance(ck.get("family"), str) or not ck["family"]:
        raise CheckpointError(f"{path}: damaged checkpoint (family {_short(ck.get('family'))} "
                              "is not a name)")
    if not isinstance(ck.get("config"), dict):
        raise CheckpointError(f"{path}: damaged checkpoint ('config' is "
                              f"{'missing' if 'config' not in ck else type(ck['config']).__name__})")
    if "state" in ck and not isinstance(ck["state"], dict):
        raise CheckpointError(f"{path}: damaged checkpoint ('state' is {type(ck['state']).__name__})")
    if family is not None and ck.get("family") != family:
        raise CheckpointError(f"{path} is a {ck.get('family')!r} checkpoint, not {family!r}")
    return ck


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def require_same_sizes(init: dict, model, path) -> None:
    """:class:`CheckpointError` unless checkpoint ``init`` (read from ``path``) has ``model``'s
    layer sizes."""
    if init["sizes"] != model.sizes:
        raise CheckpointError(f"{path}: layer sizes {init['sizes']} do not match {model.sizes}")


def load_initial_weights(model, path, family: str) -> None:
    """Start ``model`` from the weights of the ``family`` checkpoint at ``path`` (``init_from``):
    the ``weights.*`` entries only — the neuron buffers (tables) belong to the new run's neuron
    kind; :class:`CheckpointError` when the layer sizes differ."""
    init = read_checkpoint(path, family)
    require_same_sizes(init, model, path)
    model.load_state_dict({k: v for k, v in init["state"].items() if k.startswith("weights.")}, strict=False)


def checkpoint_family(path) -> tuple[registry.Family, dict]:
    """The registered family a checkpoint file names, and the checkpoint."""
    ck = read_checkpoint(path)
    try:
        return registry.get(ck["family"]), ck
    except registry.FamilyError as exc:
        raise CheckpointError(f"{path}: {exc} (is the package that provides it installed?)") from None
