"""The interface every structure model implements, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from abc import ABC, abstractmethod
from importlib import metadata
from typing import ClassVar, Literal

import numpy as np

from foldflow.compute import Resources


@dataclass
class Prediction:
    """One model's prediction for one target, sliced to the target's residues."""

    model_name: str
    aatype: np.ndarray  # [L] int
    residue_index: np.ndarray  # [L] int, 0-based
    atom_positions: np.ndarray  # [L, 37, 3] float32
    atom_mask: np.ndarray  # [L, 37]
    plddt: np.ndarray  # [L] float, 0-100
    ranking_confidence: float  # AlphaFold's: mean pLDDT (monomer), 0.8 ipTM + 0.2 pTM (multimer)
    ptm: float | None = None
    iptm: float | None = None  # multimer models: interface pTM
    chain_index: np.ndarray | None = None  # [L] int, 0-based chain of each residue (None: one chain)
    pae: np.ndarray | None = None  # [L, L] Angstrom
    max_pae: float | None = None
    recycles: int = 0
    seed: int = 0  # the model's seed (process_features and predict), from the run seed
    msa_clusters: int | None = None  # MSA rows the model saw (clusters; padded to the setting)
    extra_msa_rows: int | None = None
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


class Model(ABC):
    """A loaded model that keeps parameters and compiled programs resident.

    A model declares its name, version (part of every prediction key), the targets it predicts (its
    family), the resources one worker holding it wants, whether it keeps state resident and what its
    parameters' fingerprint is; it maps one target's features to a :class:`Prediction`.
    """

    version: ClassVar[str]  # part of every prediction key
    family: ClassVar[Literal["monomer", "multimer"]] = "monomer"  # predicts monomers, or complexes (multimer)
    resources: ClassVar[Resources] = Resources()
    resident: ClassVar[bool] = True
    reads_params: ClassVar[bool] = True  # needs a params file under model.params_dir
    name: str
    uses_random_params: bool
    load_seconds: float = 0.0  # reading (or creating) the parameters
    initialised: bool = False  # parameters were created now (random init), not read
    compiles: int = 0  # input shapes compiled so far
    _load_reported: bool = False

    @classmethod
    def params_fingerprint(cls, name: str, settings) -> str:
        """What identifies the parameters ``name`` predicts with under ``settings`` (part of every prediction
        key): here, random initialisation from ``model.params_seed`` by this JAX."""
        return f"random:{name}:seed{settings.params_seed}:jax{metadata.version('jax')}"

    @classmethod
    def effective_settings(cls, name: str, settings) -> dict[str, int]:
        """Recycles and MSA depths this model runs with under ``settings`` (none for models without)."""
        return {}

    def take_load_seconds(self) -> float:
        """The parameters' load seconds, once: the first prediction of this model is charged with them."""
        if self._load_reported:
            return 0.0
        self._load_reported = True
        return self.load_seconds

    @abstractmethod
    def predict(self, features: dict[str, np.ndarray], seed: int, pad_to: int) -> Prediction:
        """One prediction from raw features, padded to ``pad_to`` residues and sliced back."""
