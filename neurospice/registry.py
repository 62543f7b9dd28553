"""The family registry: every neuron family is one :class:`Family` object, registered by name.

The CLI (``characterize``, ``train``, ``verify``, ``export``, ``compare``), the comparison,
its report and the NIR export iterate this registry; none of them knows a family by name.
A family's code lives in the stage folders (``circuits/``, ``characterize/``, ``training/``);
its :class:`Family` subclass ties those pieces together.

Where families come from: the Python entry-point group :data:`ENTRY_POINT_GROUP` (the
built-in families are declared there in neurospice's own ``pyproject.toml``; another
package adds its family the same way, no edit here), and :func:`register` for a family
defined at run time (a test, a notebook)::

    [project.entry-points."neurospice.families"]
    mylab = "mylab.neuron:MyFamily"       # a Family subclass, an instance, or a factory

Contract of a family (everything optional except ``name``): a method that a family does not
override raises :class:`FamilyError` naming the family and what it lacks, and the verbs that
need it do not list it (``characterize_targets() == {}``: not in ``characterize``;
``trainable`` false: not in ``train``; ``comparable`` false: not in ``compare``).
"""
from __future__ import annotations

import argparse
from importlib import metadata

from neurospice.circuits.errors import NeurospiceError

ENTRY_POINT_GROUP = "neurospice.families"
#: time steps of constant drive per point of the report's transfer figure (:meth:`Family.transfer`)
TRANSFER_STEPS = 64


class FamilyError(NeurospiceError):
    """An unknown family, or a family asked for something it does not provide."""


class Family:
    """One neuron family. Subclass, set the attributes, override what the family provides."""

    #: registry key: the word users type (``neurospice train NAME``)
    name: str = ""
    #: one line for ``--help`` and the report
    summary: str = ""
    #: position in listings and in ``compare``'s default order (smaller first)
    order: int = 100
    #: matplotlib colour of the family in the report's figures
    color: str = "tab:orange"
    #: the report draws the transfer curve as steps (integer-valued neurons)
    transfer_steps: bool = False
    #: what one relative spread σ means for this family (report and compare JSON)
    variation: str = ""
    #: how a chip fails under that spread, one sentence (report)
    failure_model: str = ""
    #: ``train NAME`` exists
    trainable: bool = False
    #: the family takes part in ``compare`` (:meth:`compare_row`)
    comparable: bool = False
    #: checkpoint ``format`` strings of files written before checkpoints named their family
    legacy_checkpoint_formats: tuple[str, ...] = ()
    #: ``verify --whole-network``: every layer in the simulator, each driven by the previous
    #: layer's circuit spikes (the family's ``verify`` reads ``args.whole_network``)
    verifies_whole_network: bool = False

    def with_argument(self, argument: str) -> "Family":
        """The family for ``NAME:ARGUMENT`` (e.g. ``custom:my_neuron.toml``): a family that
        needs a description returns an instance configured by it."""
        raise FamilyError(f"family {self.name!r} takes no argument (got {self.name}:{argument})")

    # -- characterize ---------------------------------------------------------------------
    def characterize_targets(self) -> dict[str, str]:
        """``{target: help}``: what ``neurospice characterize TARGET`` offers for this family."""
        return {}

    def add_characterize_options(self, parser: argparse.ArgumentParser, target: str) -> None:
        """Options of ``characterize TARGET`` beyond the shared ``--out/--workers/--json``."""

    def characterize(self, target: str, args: argparse.Namespace) -> dict:
        raise self._lacks("characterization")

    # -- train ----------------------------------------------------------------------------
    def add_train_options(self, parser: argparse.ArgumentParser) -> None:
        """Options of ``train NAME`` beyond the shared ``--out/--fresh/--json``."""

    def train(self, args: argparse.Namespace) -> dict:
        raise self._lacks("training")

    # -- verify (re-simulation of a trained network in ngspice) ---------------------------
    def add_verify_options(self, parser: argparse.ArgumentParser) -> None:
        """Options ``verify`` offers for this family's checkpoints (use :func:`add_option`:
        the verify parser is shared by every family)."""

    def verify(self, checkpoint, args: argparse.Namespace) -> dict:
        raise self._lacks("a circuit to verify against")

    # -- export ---------------------------------------------------------------------------
    def nir_graph(self, checkpoint: dict) -> tuple[dict, list, dict]:
        """``(nodes, edges, metadata)`` of the checkpoint's network as NIR nodes; metadata
        holds at least ``dt_s`` and ``steps`` (see :mod:`neurospice.training.nir_export`)."""
        raise self._lacks("a NIR export")

    def nir_reference(self, checkpoint: dict, samples: int | None = None) -> dict:
        """What the exported graph must reproduce: ``{inputs [T, N, n_in], outputs {name:
        [T, N, n_out]}, labels}`` on the checkpoint's test samples (``outputs["model"]``: the
        network as neurospice runs it; more names where the NIR nodes are an approximation,
        e.g. ``"linearized"``; optional ``outputs_per_class``: consecutive output neurons that
        form one class, default 1). See :mod:`neurospice.training.nir_interop`."""
        raise self._lacks("NIR-expressible neuron to check in another simulator")

    # -- compare --------------------------------------------------------------------------
    def compare_settings(self, config) -> dict:
        """Every setting that decides this family's comparison numbers (the cache key)."""
        return {}

    def compare_row(self, config, out, progress: bool = False) -> dict:
        """Characterize → train → verify → robustness for ``compare``; one result dict with
        the keys :mod:`neurospice.training.compare` documents (energies in joules)."""
        raise self._lacks("a comparison run")

    def describe_failures(self, result: dict) -> str:
        """How a chip of this family fails under its spread, for the report (one sentence)."""
        return self.failure_model or "—"

    def transfer(self, result: dict, drives):
        """``(drive, output spikes per step)`` of this family's neuron for the report's
        transfer figure: a constant drive for :data:`TRANSFER_STEPS` steps, ``drives`` in units
        of the neuron's threshold per step."""
        return None

    # -- helpers --------------------------------------------------------------------------
    def _lacks(self, what: str) -> FamilyError:
        return FamilyError(f"family {self.name!r} has no {what}")

    def __repr__(self) -> str:
        return f"<neuron family {self.name!r}>"


_FAMILIES: dict[str, Family] = {}
_LOADED = False


def _instance(obj) -> Family:
    fam = obj() if isinstance(obj, type) or (callable(obj) and not isinstance(obj, Family)) else obj
    if not isinstance(fam, Family):
        raise FamilyError(f"{obj!r} is not a neurospice Family")
    if not fam.name or ":" in fam.name or "," in fam.name or fam.name != fam.name.strip():
        raise FamilyError(f"{obj!r}: a family needs a name without ':', ',' or spaces, got {fam.name!r}")
    return fam


def register(family, replace: bool = False) -> Family:
    """Add a family (a :class:`Family` subclass, instance or factory); returns the instance.
    A second family under a taken name is refused unless ``replace``."""
    _load_entry_points()
    fam = _instance(family)
    if fam.name in _FAMILIES and not replace and type(_FAMILIES[fam.name]) is not type(fam):
        raise FamilyError(f"a family named {fam.name!r} is already registered "
                          f"({type(_FAMILIES[fam.name]).__module__})")
    _FAMILIES[fam.name] = fam
    return fam


def unregister(name: str) -> None:
    _FAMILIES.pop(name, None)


def _load_entry_points() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    seen = set()
    # every distribution on the path, not only the first of each name: a stale
    # ``*.egg-info`` in the working folder must not hide the installed package's families
    eps = [ep for dist in metadata.distributions() for ep in dist.entry_points
           if ep.group == ENTRY_POINT_GROUP]
    for ep in eps:
        if (ep.name, ep.value) in seen:
            continue
        seen.add((ep.name, ep.value))
        try:
            fam = _instance(ep.load())
        except Exception as exc:  # a broken plug-in must not take the CLI down: say which
            import warnings
            warnings.warn(f"neurospice: family plug-in {ep.name!r} ({ep.value}) failed to load: "
                          f"{type(exc).__name__}: {exc}", stacklevel=2)
            continue
        _FAMILIES.setdefault(fam.name, fam)


def families() -> list[Family]:
    """Every registered family, in :attr:`Family.order`, then by name."""
    _load_entry_points()
    return sorted(_FAMILIES.values(), key=lambda f: (f.order, f.name))


def names(**having) -> list[str]:
    """Names of the families whose attributes equal ``having`` (e.g. ``trainable=True``)."""
    return [f.name for f in families() if all(getattr(f, k) == v for k, v in having.items())]


def get(name: str) -> Family:
    """The family called ``name`` (``NAME:ARGUMENT``: that family's
    :meth:`Family.with_argument`); :class:`FamilyError` listing the known ones otherwise."""
    _load_entry_points()
    base, sep, argument = name.partition(":")
    if sep and base in _FAMILIES:
        return _FAMILIES[base].with_argument(argument)
    try:
        return _FAMILIES[name]
    except KeyError:
        raise FamilyError(f"unknown neuron family {name!r}; known: {', '.join(names()) or 'none'}") from None


def characterize_targets() -> dict[str, tuple[Family, str]]:
    """``{target: (family, help)}`` over every family."""
    out = {}
    for fam in families():
        for target, text in fam.characterize_targets().items():
            out.setdefault(target, (fam, text))
    return out


def add_option(parser: argparse.ArgumentParser, *flags, **kw) -> None:
    """``parser.add_argument`` unless another family already added that option (shared
    parsers such as ``verify``'s): the first family's definition stands."""
    taken = {s for a in parser._actions for s in a.option_strings}
    if not taken.intersection(flags):
        parser.add_argument(*flags, **kw)
