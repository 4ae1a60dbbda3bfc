"""Ray actors: one actor class for every pool (a worker of :mod:`foldflow.flow.workers`, placed by Ray), their backend, and the shard actors that hold one slice of one database for the sharded MSA engine.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import ray

from foldflow.config import DatabaseConfig, MsaConfig
from foldflow.errors import error_line
from foldflow.flow.workers import Resident, Worker, process_info
from foldflow.stages import Placement

LOST_WORKER = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError,
               ray.exceptions.ObjectLostError, ray.exceptions.OwnerDiedError)
ACTOR_OPTIONS = {"max_restarts": 3, "max_task_retries": 1}


def _ray_placement() -> Placement:
    import os

    return Placement(os.getpid(), ray.get_runtime_context().get_node_id())


class RayBackend:
    """Runs step functions on actors; each call returns (record, payload) as two object refs."""

    def call(self, worker: Any, function: Callable, args: tuple) -> tuple[Any, Any]:
        return worker.run.options(num_returns=2).remote(function, *args)

    def ready(self, handles: list, timeout: float) -> list:
        done, _ = ray.wait(handles, num_returns=1, timeout=timeout)
        return done

    def get(self, handle: Any) -> Any:
        return ray.get(handle)

    def is_lost(self, error: Exception) -> bool:
        return isinstance(error, LOST_WORKER)

    def error_text(self, error: Exception) -> str:
        cause = error.cause if isinstance(error, ray.exceptions.RayTaskError) and error.cause else error
        return error_line(cause)


@ray.remote
class ShardWorker:
    """Holds one shard of one database in memory and searches it with the HMMs it is sent."""

    def __init__(self, database: DatabaseConfig, index: int, count: int, config: MsaConfig):
        from foldflow.msa.sharded import load_shard

        self.config = config
        self.shard = load_shard(database, index, count)

    def info(self) -> dict:
        shard = self.shard
        return {**process_info(), "node_id": ray.get_runtime_context().get_node_id(),
                "database": shard.database.name, "shard": f"{shard.index + 1}/{shard.count}",
                "sequences": len(shard.sequences), "residues": shard.residues, "load_seconds": shard.load_seconds}

    def search(self, hmm: bytes) -> bytes:
        """HMM in, hits out, both pickled here: Ray's cloudpickle cannot pickle pyhmmer's objects."""
        from foldflow.msa.sharded import search_shard

        return pickle.dumps(search_shard(self.shard, pickle.loads(hmm), self.config))


def start_shard_workers(config: MsaConfig, placement: dict, pairing: bool) -> dict[str, list]:
    """Shard actors per database for the sharded engine (none for other engines), placed like MSA actors;
    the UniProt pairing database's only when the batch has complexes (``pairing``)."""
    sharded = [db for db in config.searched_databases(pairing) if config.engine_of(db) == "pyhmmer_sharded"]
    options = {**placement, "num_cpus": config.shard_actor_cpus, **ACTOR_OPTIONS}
    return {db.name: [ShardWorker.options(**options).remote(db, i, config.shards, config)
                      for i in range(config.shards)]
            for db in sharded}


class ShardFanOut:
    """Searches every shard actor of a database with one HMM (picklable: it travels to MSA actors)."""

    def __init__(self, shard_workers: dict[str, list]):
        self.shard_workers = shard_workers

    def __call__(self, database: str, hmm) -> list:
        query = pickle.dumps(hmm)
        shards = self.shard_workers[database]
        return [pickle.loads(hits) for hits in ray.get([shard.search.remote(query) for shard in shards])]


@ray.remote
class StageActor:
    """A pool's actor: a :class:`~foldflow.flow.workers.Worker` holding what ``resident()`` builds (loaded in
    this actor's process), with Ray's placement on every record it makes."""

    def __init__(self, resident: Callable[[], Resident]):
        self.worker = Worker(resident())
        self.worker.placement = _ray_placement

    def warm(self) -> None:
        self.worker.warm()

    def info(self) -> dict:
        return self.worker.info()

    def run(self, function: Callable, *args):
        """Run a step's function (the workflow's declaration) on this worker's resident objects."""
        return self.worker.run(function, *args)
