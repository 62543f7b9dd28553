"""Training configuration: a plain dataclass without torch, so the CLI can read its defaults
(the one place they are written) without importing torch at start-up."""
from __future__ import annotations

from dataclasses import dataclass


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

    def model_fields(self) -> dict:
        keys = ("dataset", "mode", "hidden", "steps", "encoding", "max_rate", "levels", "seed")
        return {k: getattr(self, k) for k in keys}


@dataclass
class SFQTrainConfig:
    """``neurospice train sfq`` (defaults: the one place they are written)."""
    dataset: str = "digits"
    artefact: str = "runs/sfq/sfq.json"   #: `characterize sfq` output (made on first use if missing)
    epochs: int = 15
    hidden: int = 128
    steps: int = 8                   #: time steps per sample
    max_rate: float = 1.0            #: pulses per step of a white pixel (regular encoding)
    batch: int = 64
    lr: float = 0.05
    seed: int = 1
    device: str = "cpu"
    limit: int | None = None


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
