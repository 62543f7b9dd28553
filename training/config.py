"""Training configuration: plain dataclasses without torch, so the CLI can read their defaults
(the one place they are written) without importing torch at start-up. Each checks its fields
when made (``__post_init__``, rules from :mod:`neurospice.validate`): the CLI and the Python API
refuse the same values before anything is trained or written."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from neurospice import validate as v


def config_from_saved(cls, saved: dict):
    """The config a checkpoint saved; a field it lacks (added later) takes the value those older
    runs were trained with (``cls.SAVED_WITHOUT``), not today's default."""
    return cls(**{**getattr(cls, "SAVED_WITHOUT", {}), **saved})


def _check_common(cfg, datasets_extra: tuple[str, ...] = ()) -> None:
    """The fields every family's training config has."""
    v.dataset("dataset", cfg.dataset, datasets_extra)
    v.whole("epochs", cfg.epochs, lo=1)
    v.whole("hidden", cfg.hidden, lo=1)
    v.whole("batch", cfg.batch, lo=1)
    v.number("lr", cfg.lr, lo=0, lo_open=True)
    v.whole("seed", cfg.seed, lo=0)
    v.device("device", cfg.device)
    v.whole("limit", cfg.limit, lo=1, optional=True)


@dataclass
class MemcapTrainConfig:
    dataset: str = "digits"
    mode: str = "aware"
    curve: str = "runs/memcap/memcap_diff.json"
    epochs: int = 15
    hidden: int = 256
    #: time steps per sample (10 ns each); 16 rather than 8: fewer tied spike counts
    #: (MNIST aware, 15 epochs: test 0.941 at 8 steps, 0.959 at 16)
    steps: int = 16
    encoding: str = "regular"        #: rate | regular | latency (see datasets.encode)
    max_rate: float = 0.25           #: spikes per step of a white pixel (rate, regular)
    augment_px: int | None = None    #: random shifts up to ± this many pixels; None: side/14
    batch: int = 64
    lr: float = 1e-2
    levels: int = 16
    program_sigma: float = 0.0
    offset_sigma_V: float = 0.0      #: comparator offset mismatch per neuron (σ, V), a new draw per chip
    seed: int = 1
    val_fraction: float = 0.1
    device: str = "cpu"
    limit: int | None = None         #: use only this many training samples (smoke runs)
    init_from: str | None = None     #: start from this checkpoint's weights (e.g. an ideal run)

    def __post_init__(self):
        _check_common(self)
        v.choice("mode", self.mode, ("aware", "naive", "ideal"))
        v.whole("steps", self.steps, lo=1)
        v.choice("encoding", self.encoding, ("rate", "regular", "latency"))
        v.number("max_rate", self.max_rate, lo=0, hi=1, lo_open=True)
        v.whole("augment_px", self.augment_px, lo=0, optional=True)
        v.whole("levels", self.levels, lo=2)
        v.number("program_sigma", self.program_sigma, lo=0)
        v.number("offset_sigma_V", self.offset_sigma_V, lo=0)
        v.number("val_fraction", self.val_fraction, lo=0, hi=1, lo_open=True, hi_open=True)
        if self.init_from is not None:
            v.existing_file("init_from", self.init_from)


#: SFQ's default shift range: one pixel per this many pixels of the image side, rounded (±1 on
#: 28×28 MNIST, none on 8×8 digits, where a pixel is an eighth of the digit; README *Training
#: with SFQ neurons* has both measurements)
SHIFT_SIDE_PX = 28


@dataclass
class SFQTrainConfig:
    """``neurospice train sfq`` (defaults: the one place they are written)."""
    #: what a checkpoint saved before these fields existed was trained with
    SAVED_WITHOUT: ClassVar[dict] = {"outputs_per_class": 1, "augment_px": 0}
    dataset: str = "digits"
    artefact: str = "runs/sfq/sfq.json"   #: `characterize sfq` output (made on first use if missing)
    epochs: int = 20
    hidden: int = 256
    steps: int = 8                   #: time steps per sample
    max_rate: float = 1.0            #: pulses per step of a white pixel (regular encoding)
    #: output neurons per class; a class's vote is the sum of its neurons' pulses
    outputs_per_class: int = 8
    augment_px: int | None = None    #: random shifts up to ± this many pixels (None: see SHIFT_SIDE_PX)
    batch: int = 64
    lr: float = 0.01                 #: synapse scores
    lr_threshold: float = 0.05       #: thresholds and the readout scale
    seed: int = 1
    device: str = "cpu"
    limit: int | None = None

    def __post_init__(self):
        _check_common(self)
        v.whole("steps", self.steps, lo=1)
        v.number("max_rate", self.max_rate, lo=0, hi=1, lo_open=True)
        v.number("lr_threshold", self.lr_threshold, lo=0, lo_open=True)
        v.whole("outputs_per_class", self.outputs_per_class, lo=1)
        v.whole("augment_px", self.augment_px, lo=0, optional=True)


@dataclass
class QCLIFTrainConfig:
    """``neurospice train qclif`` (defaults: the one place they are written)."""
    dataset: str = "digits"          #: digits | mnist[:PATH] | idx:DIR (row by row) | dvs:DIR
    task: str = "classify"           #: classify | context (CLIF's context task, binary answer)
    neuron: str = "qclif"            #: qclif (integer, quantization-aware) | clif (float32)
    bits: int = 8
    hidden: int = 128
    epochs: int = 12
    batch: int = 64
    lr: float = 5e-3
    pixel_threshold: float = 0.5     #: a pixel above it is an input spike in its row's step
    seed: int = 1
    device: str = "cpu"
    limit: int | None = None

    def __post_init__(self):
        _check_common(self, datasets_extra=("dvs",))
        v.choice("task", self.task, ("classify", "context"))
        v.choice("neuron", self.neuron, ("qclif", "clif"))
        from neurospice.circuits.qclif import QCLIFConfig
        QCLIFConfig.for_bits(v.whole("bits", self.bits))      # the widths the circuit supports
        v.number("pixel_threshold", self.pixel_threshold, lo=0, hi=1, hi_open=True)


@dataclass
class CustomTrainConfig:
    """``neurospice train custom`` (defaults: the one place they are written)."""
    neuron: str | None = None        #: the neuron's TOML (characterized on first use)
    artefact: str | None = None      #: a `characterize custom` artefact (default: the neuron's, made if missing)
    dataset: str = "digits"
    mode: str = "aware"              #: aware (table neuron) | naive (ideal-trained, table-evaluated) | ideal
    epochs: int = 20
    hidden: int = 128
    steps: int = 16                  #: time steps per sample (the neuron's step_s each)
    encoding: str = "regular"        #: rate | regular | latency (see datasets.encode)
    max_rate: float = 0.5            #: spikes per step of a white pixel (rate, regular)
    augment_px: int | None = 0       #: random shifts up to ± this many pixels (None: side/14; off by
                                     #: default: it cost this family accuracy on digits, see README)
    batch: int = 64
    lr: float = 1e-2
    levels: int = 0                  #: quantization levels of |w| per synapse current (0: analog)
    current_sigma: float = 0.0       #: relative spread of each synapse's current (one draw per chip)
    seed: int = 1
    val_fraction: float = 0.1
    device: str = "cpu"
    limit: int | None = None
    quick: bool = False              #: characterize on first use with the coarse grid
    init_from: str | None = None     #: start from this checkpoint's weights (e.g. variation-aware fine-tuning)

    def __post_init__(self):
        _check_common(self)
        if self.neuron is None and self.artefact is None:
            raise v.ConfigError("give the neuron's description (--neuron FILE.toml) or its artefact (--artefact FILE)")
        if self.neuron is not None:
            v.existing_file("neuron", self.neuron)
        if self.artefact is not None and self.neuron is None:
            v.existing_file("artefact", self.artefact)
        v.choice("mode", self.mode, ("aware", "naive", "ideal"))
        v.whole("steps", self.steps, lo=1)
        v.choice("encoding", self.encoding, ("rate", "regular", "latency"))
        v.number("max_rate", self.max_rate, lo=0, hi=1, lo_open=True)
        v.whole("augment_px", self.augment_px, lo=0, optional=True)
        if v.whole("levels", self.levels, lo=0) == 1:
            raise v.ConfigError("levels must be 0 (analog) or at least 2, got 1")
        if self.init_from is not None:
            v.existing_file("init_from", self.init_from)
        v.number("current_sigma", self.current_sigma, lo=0)
        v.number("val_fraction", self.val_fraction, lo=0, hi=1, lo_open=True, hi_open=True)
