"""Resident Ray actors: MSA workers (databases in memory) and model workers (params + programs).

They hold the science objects and add nothing but timing and placement facts.
"""

from __future__ import annotations

import os
import pickle
import time
from dataclasses import dataclass, field

import ray

from foldflow.config import DatabaseConfig, ModelConfig, MsaConfig
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
    worker_pid: int
    node_id: str


@dataclass
class PredictedTarget:
    predictions: list[Prediction]
    computed: dict[str, int]
    times: StageTimes
    bucket: int  # length the features were padded to
    compiles: CompileStats  # what XLA compiled (or loaded from its disk cache) for this target
    params_load_seconds: float  # parameters loaded during this call (0 when every model was resident)
    worker_pid: int
    node_id: str


def _where() -> dict:
    return {"worker_pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}


def worker_info(**extra) -> dict:
    """Where an actor runs and the memory it holds (resident set size), with stage-specific facts."""
    import psutil

    return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
            "rss_mb": psutil.Process().memory_info().rss / 2**20, **extra}


@ray.remote
class ShardWorker:
    """Holds one shard of one database in memory and searches it with the HMMs it is sent."""

    def __init__(self, database: DatabaseConfig, index: int, count: int, config: MsaConfig):
        from foldflow.msa.sharded import load_shard

        self.config = config
        self.shard = load_shard(database, index, count)

    def info(self) -> dict:
        shard = self.shard
        return worker_info(database=shard.database.name, shard=f"{shard.index + 1}/{shard.count}",
                           sequences=len(shard.sequences), residues=shard.residues,
                           load_seconds=shard.load_seconds)

    def search(self, hmm: bytes) -> bytes:
        """HMM in, hits out, both pickled here: Ray's cloudpickle cannot pickle pyhmmer's objects."""
        from foldflow.msa.sharded import search_shard

        return pickle.dumps(search_shard(self.shard, pickle.loads(hmm), self.config))


def start_shard_workers(config: MsaConfig, placement: dict) -> dict[str, list]:
    """Shard actors per database when ``config.shards`` > 1 (none otherwise), placed like MSA actors."""
    if config.shards == 1:
        return {}
    options = {**placement, "num_cpus": config.shard_actor_cpus, "max_restarts": 3, "max_task_retries": 1}
    return {db.name: [ShardWorker.options(**options).remote(db, i, config.shards, config)
                      for i in range(config.shards)]
            for db in config.databases}


@ray.remote
class MsaWorker:
    """Holds the sequence databases (loaded on first search, or as shard actors) and prepares features."""

    def __init__(self, config: MsaConfig, store_uri: str, shard_workers: dict[str, list]):
        from foldflow.msa.jackhmmer import ResidentDatabases

        self.config = config
        self.max_hits = {db.name: db.max_hits for db in config.databases if db.max_hits}
        self.databases = ResidentDatabases(config)
        self.shard_workers = shard_workers
        self.cache = StepCache(Store(store_uri))

    def warm(self) -> None:
        """Load every database this actor searches (the shard actors hold theirs)."""
        if not self.shard_workers:
            for db in self.config.databases:
                self.databases.database(db.name)

    def _search(self, target: Target, database: DatabaseConfig) -> Alignment:
        if not self.shard_workers:
            return self.databases.search_one(target.id, target.sequence, database.name)
        from foldflow.msa.sharded import sharded_jackhmmer

        shards = self.shard_workers[database.name]

        def search_shards(hmm):
            query = pickle.dumps(hmm)
            return [pickle.loads(hits) for hits in ray.get([shard.search.remote(query) for shard in shards])]

        return sharded_jackhmmer(target.id, target.sequence, database, self.config, search_shards)

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
        alignments = [self.cache.alignment(key, lambda db=db: self._search(target, db))
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
            computed=self.cache.take_counts(), times=times, **_where())
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
        self.load_seconds_unreported = 0.0

    def _model(self, name: str):
        from foldflow.models import load_model

        if name not in self.models:
            self.models[name] = load_model(name, self.config)
            self.load_seconds_unreported += self.models[name].load_seconds
        return self.models[name]

    def warm(self) -> None:
        """Load every configured model's parameters now, while the MSA pool prepares the first features."""
        for name in self.config.names:
            self._model(name)

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
        load_seconds, self.load_seconds_unreported = self.load_seconds_unreported, 0.0
        return PredictedTarget(predictions, self.cache.take_counts(), StageTimes({"model": (start, time.time())}),
                               pad_to, compiles, load_seconds, **_where())
