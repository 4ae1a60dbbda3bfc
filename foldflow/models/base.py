"""The interface every structure model implements, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class Prediction:
    """One model's prediction for one target, sliced to the target's residues."""

    model_name: str
    aatype: np.ndarray  # [L] int
    residue_index: np.ndarray  # [L] int, 0-based
    atom_positions: np.ndarray  # [L, 37, 3] float32
    atom_mask: np.ndarray  # [L, 37]
    plddt: np.ndarray  # [L] float, 0-100
    ranking_confidence: float
    ptm: float | None = None
    pae: np.ndarray | None = None  # [L, L] Angstrom
    max_pae: float | None = None
    recycles: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def mean_plddt(self) -> float:
        return float(np.mean(self.plddt))


@dataclass
class CompileStats:
    """What XLA did in one stretch of code: programs compiled, loaded from the disk cache, seconds."""

    compiles: int = 0  # programs built by XLA (persistent-cache misses)
    cache_hits: int = 0  # programs loaded from the persistent compilation cache
    seconds: float = 0.0  # backend compile time, cache loads included

    def add(self, other: CompileStats) -> None:
        self.compiles += other.compiles
        self.cache_hits += other.cache_hits
        self.seconds += other.seconds


class Model(Protocol):
    """A loaded model that keeps parameters and compiled programs resident."""

    name: str
    uses_random_params: bool
    load_seconds: float  # reading (or creating) the parameters
    initialised: bool  # parameters were created now (random init), not read
    compiles: int  # input shapes compiled so far

    def predict(self, features: dict[str, np.ndarray], seed: int) -> Prediction: ...
