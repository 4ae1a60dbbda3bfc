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


class StepFailed(Exception):
    """One item of a batched call raised (the others' results stand): its error line, and whether it was
    a worker it called that was lost (e.g. a shard actor)."""

    def __init__(self, line: str, lost: bool):
        super().__init__(line, lost)  # both in args: an exception is pickled as its class and args
        self.line, self.lost = line, lost


class RayBackend:
    """Runs step functions on actors, a batch of items per actor call; each item's (record, payload) comes
    back as two object refs of their own."""

    def call(self, worker: Any, function: Callable, items: list[tuple], payloads: bool) -> list[tuple[Any, Any]]:
        """The items' jobs travel as one pickle (Python's own: far quicker than Ray's cloudpickle per object);
        their payloads (object refs) as arguments of their own, so Ray hands the actor their values. Each
        item's record comes back as an object of its own, and its payload too when ``payloads``."""
        jobs = pickle.dumps([job for job, *_ in items], protocol=pickle.HIGHEST_PROTOCOL)
        refs = worker.run_batch.options(num_returns=len(items) * (2 if payloads else 1)).remote(
            function, jobs, [len(args) for _, *args in items], payloads, *(p for _, *args in items for p in args))
        refs = refs if isinstance(refs, list) else [refs]
        return list(zip(refs[0::2], refs[1::2])) if payloads else [(ref, None) for ref in refs]

    def ready(self, handles: list, timeout: float) -> list:
        done, _ = ray.wait(handles, num_returns=len(handles), timeout=0)
        if not done and timeout > 0:
            done, _ = ray.wait(handles, num_returns=1, timeout=timeout)
        return done

    def outcomes(self, handles: list) -> list[tuple[Any, Exception | None]]:
        try:
            values = ray.get(handles)
        except Exception:  # a lost worker's items: each one's own error
            return [self._outcome(handle) for handle in handles]
        return [self._split(value) for value in values]

    def _outcome(self, handle: Any) -> tuple[Any, Exception | None]:
        try:
            return self._split(ray.get(handle))
        except Exception as error:
            return None, error

    @staticmethod
    def _split(value: Any) -> tuple[Any, Exception | None]:
        """An item's (record, None), or (None, its StepFailed)."""
        return (None, value) if isinstance(value, StepFailed) else (value, None)

    def is_lost(self, error: Exception) -> bool:
        return isinstance(error, LOST_WORKER) or (isinstance(error, StepFailed) and error.lost)

    def error_text(self, error: Exception) -> str:
        if isinstance(error, StepFailed):
            return error.line
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

    def run_batch(self, function: Callable, jobs: bytes, counts: list[int], with_payloads: bool, *payloads):
        """Run a step's function (the workflow's declaration) on this worker's resident objects for each job
        (pickled together; ``counts``: how many of ``payloads`` are each job's); [record, payload, record,
        payload, ...] (without ``with_payloads``: the records), a failed job's record a :class:`StepFailed`."""
        returns, start = [], 0
        for job, count in zip(pickle.loads(jobs), counts):
            try:
                record, payload = self.worker.run(function, job, *payloads[start:start + count])
            except Exception as error:
                record, payload = StepFailed(error_line(error), isinstance(error, LOST_WORKER)), None
            returns += [record, payload] if with_payloads else [record]
            start += count
        return returns if len(returns) > 1 else returns[0]
