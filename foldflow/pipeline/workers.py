"""Resident Ray actors: MSA workers (databases in memory) and model workers (params + programs).

They hold the science objects and add nothing but timing and placement facts.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import ray

from foldflow.config import ModelConfig, MsaConfig
from foldflow.features import build_features, msa_depth
from foldflow.models.base import Prediction
from foldflow.msa.alignment import Alignment
from foldflow.targets import Target


@dataclass
class StageTimes:
    """Wall-clock (epoch) start and end of each stage a target went through."""

    spans: dict[str, tuple[float, float]] = field(default_factory=dict)

    def seconds(self) -> dict[str, float]:
        return {stage: end - start for stage, (start, end) in self.spans.items()}


@dataclass
class PreparedTarget:
    """What the MSA stage hands back to the driver (features travel separately as an object ref)."""

    alignments: list[Alignment]
    msa_source: str  # "search" or "precomputed"
    msa_depths: dict[str, int]
    feature_msa_depth: int
    times: StageTimes


@dataclass
class PredictedTarget:
    predictions: list[Prediction]
    times: StageTimes
    model_timings: dict[str, float]


def worker_info(**extra) -> dict:
    context = ray.get_runtime_context()
    return {"pid": os.getpid(), "node_id": context.get_node_id(), **extra}


@ray.remote
class MsaWorker:
    """Loads the sequence databases once and prepares features for many targets."""

    def __init__(self, config: MsaConfig):
        from foldflow.msa.jackhmmer import ResidentDatabases

        self.config = config
        self.max_hits = {db.name: db.max_hits for db in config.databases if db.max_hits}
        self.databases = None if config.require_precomputed else ResidentDatabases(config)

    def info(self) -> dict:
        loaded = self.databases.databases if self.databases else []
        return worker_info(load_seconds=sum(db.load_seconds for db in loaded),
                           residues=sum(db.residues for db in loaded))

    def _alignments(self, target: Target) -> tuple[list[Alignment], str]:
        from foldflow.msa.precomputed import load_precomputed

        if self.config.precomputed_dir is not None:
            found = load_precomputed(self.config.precomputed_dir, target.id, target.sequence, self.max_hits)
            if found:
                return found, "precomputed"
            if self.config.require_precomputed:
                raise FileNotFoundError(
                    f"target '{target.id}': no precomputed MSA under {self.config.precomputed_dir}")
        return self.databases.search(target.id, target.sequence), "search"

    @ray.method(num_returns=2)
    def prepare(self, target: Target):
        times = StageTimes()
        start = time.time()
        alignments, source = self._alignments(target)
        searched = time.time()
        features = build_features(target.sequence, target.description, alignments, self.config.deduplicate)
        times.spans = {"msa": (start, searched), "features": (searched, time.time())}
        prepared = PreparedTarget(
            alignments=alignments, msa_source=source,
            msa_depths={a.database: a.depth for a in alignments},
            feature_msa_depth=msa_depth(features), times=times)
        return prepared, features


@ray.remote
class ModelWorker:
    """Keeps every configured model's parameters and compiled programs resident."""

    def __init__(self, config: ModelConfig):
        from foldflow.models.alphafold2 import AlphaFold2, enable_compilation_cache

        enable_compilation_cache(config.cache_dir / "jax")
        self.models = [AlphaFold2(name, config) for name in config.names]
        self.seed = config.prediction_seed

    def info(self) -> dict:
        return worker_info(
            load_seconds={m.name: m.load_seconds for m in self.models},
            initialised={m.name: m.initialised for m in self.models},
            compiles={m.name: m.compiles for m in self.models})

    def predict(self, features: dict) -> PredictedTarget:
        start = time.time()
        predictions = [model.predict(features, self.seed) for model in self.models]
        timings = {k: v for p in predictions for k, v in p.timings.items()}
        return PredictedTarget(predictions, StageTimes({"model": (start, time.time())}), timings)
