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
from foldflow.models.base import CompileStats, Prediction
from foldflow.msa.alignment import Alignment
from foldflow.steps import StepCache, alignment_content_key, features_key, prediction_key, search_key
from foldflow.store import Store
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
    features_key: str
    computed: dict[str, int]  # step kind -> results computed (not found in the store)
    times: StageTimes


@dataclass
class PredictedTarget:
    predictions: list[Prediction]
    computed: dict[str, int]
    times: StageTimes
    bucket: int  # length the features were padded to
    compiles: CompileStats  # what XLA compiled (or loaded from its disk cache) for this target


def worker_info(**extra) -> dict:
    context = ray.get_runtime_context()
    return {"pid": os.getpid(), "node_id": context.get_node_id(), **extra}


@ray.remote
class MsaWorker:
    """Holds the sequence databases (loaded on first search) and prepares features for many targets."""

    def __init__(self, config: MsaConfig, store_uri: str):
        from foldflow.msa.jackhmmer import ResidentDatabases

        self.config = config
        self.max_hits = {db.name: db.max_hits for db in config.databases if db.max_hits}
        self.databases = ResidentDatabases(config)
        self.cache = StepCache(Store(store_uri))

    def info(self) -> dict:
        loaded = self.databases.loaded
        return worker_info(load_seconds=sum(db.load_seconds for db in loaded),
                           residues=sum(db.residues for db in loaded))

    def _alignments(self, target: Target) -> tuple[list[Alignment], list[str], str]:
        """(alignments, their keys, source): precomputed files if the target has any, else search."""
        from foldflow.msa.precomputed import load_precomputed

        if self.config.precomputed_dir is not None:
            found = load_precomputed(self.config.precomputed_dir, target.id, target.sequence, self.max_hits)
            if found:
                return found, [alignment_content_key(a) for a in found], "precomputed"
            if self.config.require_precomputed:
                raise FileNotFoundError(
                    f"target '{target.id}': no precomputed MSA under {self.config.precomputed_dir}")
        keys = [search_key(target.id, target.sequence, db, self.config) for db in self.config.databases]
        alignments = [
            self.cache.alignment(key, lambda name=db.name: self.databases.search_one(target.id, target.sequence, name))
            for key, db in zip(keys, self.config.databases)]
        return alignments, keys, "search"

    @ray.method(num_returns=2)
    def prepare(self, target: Target):
        start = time.time()
        alignments, keys, source = self._alignments(target)
        searched = time.time()
        key = features_key(target.sequence, target.description, keys, self.config.deduplicate)
        features = self.cache.features(key, lambda: build_features(
            target.sequence, target.description, alignments, self.config.deduplicate))
        times = StageTimes({"msa": (start, searched), "features": (searched, time.time())})
        prepared = PreparedTarget(
            alignments=alignments, msa_source=source,
            msa_depths={a.database: a.depth for a in alignments},
            feature_msa_depth=msa_depth(features), features_key=key,
            computed=self.cache.take_counts(), times=times)
        return prepared, features


@ray.remote
class ModelWorker:
    """Keeps every configured model's parameters and compiled programs resident (loaded on first use)."""

    def __init__(self, config: ModelConfig, store_uri: str):
        from foldflow.models.alphafold2 import enable_compilation_cache

        enable_compilation_cache(config.cache_dir / "jax")
        self.config = config
        self.models: dict = {}
        self.cache = StepCache(Store(store_uri))
        self.compiles = CompileStats()

    def _model(self, name: str):
        from foldflow.models import load_model

        if name not in self.models:
            self.models[name] = load_model(name, self.config)
        return self.models[name]

    def info(self) -> dict:
        return worker_info(
            params_load_seconds={m.name: m.load_seconds for m in self.models.values()},
            params_initialised={m.name: m.initialised for m in self.models.values()},
            shapes_compiled={m.name: m.compiles for m in self.models.values()},
            xla=vars(self.compiles))

    def predict(self, features: dict, features_key: str) -> PredictedTarget:
        from foldflow.models.compile_stats import measure_compiles

        start = time.time()
        pad_to = self.config.bucket_for(int(features["seq_length"][0]))
        with measure_compiles() as compiles:
            predictions = [
                self.cache.prediction(
                    prediction_key(features_key, name, self.config, pad_to),
                    lambda name=name: self._model(name).predict(features, self.config.prediction_seed))
                for name in self.config.names]
        self.compiles.add(compiles)
        return PredictedTarget(predictions, self.cache.take_counts(), StageTimes({"model": (start, time.time())}),
                               pad_to, compiles)
