"""The driver loop: targets flow MSA pool -> (features as object refs) -> model pool -> writer.

At most ``max_in_flight`` targets are between submission and written output,
so memory does not grow with the batch; MSA work for later targets runs while
the model pool works on earlier ones. Both pools grow while work waits for
them and shrink when their actors idle (see :mod:`foldflow.pipeline.pools`).
Every state change is recorded in the run book, so ``foldflow runs status``
shows where the run stands and a resumed run knows what is finished.

Failures: an actor that dies (or loses its node) is restarted by Ray and its
in-flight call is retried once (``max_task_retries``); if a target still
loses its actor, the driver resubmits it, up to ``max_attempts`` in all. Any
other error fails that target alone, with its reason.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import ray

from foldflow.config import RunConfig
from foldflow.outputs import TargetResult, write_target
from foldflow.pipeline.pools import ActorPool, check_placeable, placement_options
from foldflow.pipeline.workers import (ModelWorker, MsaWorker, PredictedTarget, PreparedTarget,
                                       start_shard_workers)
from foldflow.runs import RunBook
from foldflow.targets import Target

log = logging.getLogger("foldflow")

# Calls queued per actor, so it never waits for the driver between targets.
_MSA_CALLS_PER_WORKER = 2
_MODEL_CALLS_PER_WORKER = 2
_POLL_SECONDS = 1.0
_ACTOR_OPTIONS = {"max_restarts": 3, "max_task_retries": 1}
_LOST_ACTOR = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError,
               ray.exceptions.ObjectLostError, ray.exceptions.OwnerDiedError)


@dataclass
class _InMsa:
    target: Target
    features: ray.ObjectRef
    worker: ray.actor.ActorHandle


@dataclass
class _Prepared:
    target: Target
    prepared: PreparedTarget
    features: ray.ObjectRef


@dataclass
class _InModel:
    target: Target
    prepared: PreparedTarget
    worker: ray.actor.ActorHandle


def _error_text(error: Exception) -> str:
    cause = error.cause if isinstance(error, ray.exceptions.RayTaskError) and error.cause else error
    return f"{type(cause).__name__}: {cause}".splitlines()[0]


class BatchDriver:
    """Runs one batch of targets of one run through resident actor pools."""

    def __init__(self, config: RunConfig, out_dir: Path, store_uri: str, book: RunBook, run_id: str,
                 on_result: Callable[[TargetResult], None] = lambda result: None, fixed_nodes: bool = False):
        """``fixed_nodes``: the Ray's nodes never change (a local Ray): a stage that no node can
        hold is an error now, instead of actors that wait forever for a node to appear."""
        self.config = config
        self.out_dir = out_dir
        self.book = book
        self.run_id = run_id
        self.on_result = on_result
        p = config.pipeline
        msa_placement = placement_options(p.msa_actor_cpus, 0, p.msa_actor_resources, p.msa_actor_labels,
                                          p.msa_actor_memory_gb)
        model_placement = placement_options(p.model_actor_cpus, p.model_actor_gpus, p.model_actor_resources,
                                            p.model_actor_labels)
        if fixed_nodes:
            nodes = ray.nodes()
            check_placeable("MSA", msa_placement, nodes)
            check_placeable("model", model_placement, nodes)
        self.shard_workers = start_shard_workers(config.msa, msa_placement)

        def start_msa_worker():
            worker = MsaWorker.options(**msa_placement, **_ACTOR_OPTIONS).remote(
                config.msa, store_uri, self.shard_workers)
            worker.warm.remote()  # load the databases now, before the first features are needed
            return worker

        def start_model_worker():
            worker = ModelWorker.options(**model_placement, **_ACTOR_OPTIONS).remote(config.model, store_uri)
            worker.warm.remote()  # parameters load while the first MSAs are searched
            return worker

        self.msa_pool = ActorPool("MSA", start_msa_worker, p.msa_actors, p.msa_actors_max or p.msa_actors,
                                  _MSA_CALLS_PER_WORKER, p.idle_timeout_s)
        self.model_pool = ActorPool("model", start_model_worker, p.model_actors,
                                    p.model_actors_max or p.model_actors, _MODEL_CALLS_PER_WORKER,
                                    p.idle_timeout_s)
        self.attempts: dict[str, int] = {}
        self.warm_buckets: dict = {}
        self.workers_seen: dict[str, dict[int, str]] = {"msa": {}, "model": {}}
        self.model_stats: dict[int, dict] = {}
        self.cancelled = False

    def _set(self, target: Target, status: str, **info) -> None:
        self.book.set_target(self.run_id, target.id, status, attempts=self.attempts.get(target.id, 0), **info)

    def _saw_worker(self, stage: str, pid: int, node_id: str) -> None:
        """Record which actor processes run (pids, nodes), so `runs status` and operators can find them."""
        if self.workers_seen[stage].get(pid) != node_id:
            self.workers_seen[stage][pid] = node_id
            self.book.set_state(self.run_id, "running", workers={
                stage: [{"pid": pid, "node_id": node} for pid, node in seen.items()]
                for stage, seen in self.workers_seen.items()})

    def run(self, targets: list[Target]) -> list[TargetResult]:
        self.book.set_state(self.run_id, "running", workers={"msa": [], "model": []})
        if self.config.pipeline.longest_first:
            targets = sorted(targets, key=lambda t: t.length, reverse=True)
        queue = deque(targets)
        in_msa: dict[ray.ObjectRef, _InMsa] = {}
        prepared: deque[_Prepared] = deque()
        in_model: dict[ray.ObjectRef, _InModel] = {}
        results: list[TargetResult] = []
        limit = self.config.pipeline.max_in_flight
        next_poll = 0.0

        def retry_or_fail(target: Target, error: Exception, stage_result: PreparedTarget | None = None) -> None:
            if isinstance(error, _LOST_ACTOR) and self.attempts[target.id] < self.config.pipeline.max_attempts:
                log.warning("target '%s': %s; retrying (attempt %d of %d)", target.id, _error_text(error),
                            self.attempts[target.id] + 1, self.config.pipeline.max_attempts)
                queue.appendleft(target)
            else:
                results.append(self._failed(target, error, stage_result))

        def submit_msa_work() -> None:
            while queue and len(in_msa) + len(prepared) + len(in_model) < limit:
                free = self.msa_pool.free()
                if not free:
                    return
                worker, target = free[0], queue.popleft()
                self.msa_pool.acquire(worker)
                self.attempts[target.id] = self.attempts.get(target.id, 0) + 1
                prepared_ref, features_ref = worker.prepare.remote(target)
                in_msa[prepared_ref] = _InMsa(target, features_ref, worker)
                self._set(target, "msa")

        def submit_model_work() -> None:
            while prepared and (free := self.model_pool.free()):
                worker, item = self._pick_model_work(free, prepared)
                self.model_pool.acquire(worker)
                ref = worker.predict.remote(item.features, item.prepared.features_key)
                in_model[ref] = _InModel(item.target, item.prepared, worker)
                self._set(item.target, "model")

        while queue or in_msa or prepared or in_model:
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + _POLL_SECONDS
                if self.book.cancel_requested(self.run_id):
                    self._cancel([*queue, *(j.target for j in in_msa.values()), *(j.target for j in prepared),
                                  *(j.target for j in in_model.values())])
                    break
                self.msa_pool.grow(work_waiting=bool(queue) and len(in_msa) + len(prepared) + len(in_model) < limit)
                self.model_pool.grow(work_waiting=bool(prepared))
                for removed in self.model_pool.shrink():
                    self.warm_buckets.pop(removed, None)
                self.msa_pool.shrink()
            submit_msa_work()
            submit_model_work()
            done, _ = ray.wait(list(in_msa) + list(in_model), num_returns=1, timeout=_POLL_SECONDS)
            if not done:
                continue
            (ref,) = done
            if ref in in_msa:
                job = in_msa.pop(ref)
                self.msa_pool.release(job.worker)
                try:
                    item = ray.get(ref)
                except Exception as error:  # one target's failure never stops the batch
                    retry_or_fail(job.target, error)
                    continue
                self._saw_worker("msa", item.worker_pid, item.node_id)
                prepared.append(_Prepared(job.target, item, job.features))
                continue
            job = in_model.pop(ref)
            self.model_pool.release(job.worker)
            try:
                predicted = ray.get(ref)
            except Exception as error:
                retry_or_fail(job.target, error, job.prepared)
                continue
            self._saw_worker("model", predicted.worker_pid, predicted.node_id)
            self.warm_buckets.setdefault(job.worker, set()).add(predicted.bucket)
            submit_model_work()  # keep the model busy while this target's outputs are written
            try:
                results.append(self._write(job.target, job.prepared, predicted))
            except Exception as error:
                results.append(self._failed(job.target, error, job.prepared))
        return results

    def _pick_model_work(self, free: list, prepared: deque[_Prepared]) -> tuple:
        """A free model actor and a prepared target, preferring a bucket the actor has compiled."""
        for worker in free:
            for item in prepared:
                if self.config.model.bucket_for(item.target.length) in self.warm_buckets.get(worker, ()):
                    prepared.remove(item)
                    return worker, item
        cold = [w for w in free if not self.warm_buckets.get(w)]
        return (cold[0] if cold else free[0]), prepared.popleft()

    def model_worker_stats(self) -> list[dict]:
        """Per model actor still in the pool: params load seconds, compiled shapes, XLA compiles and seconds."""
        return ray.get([w.info.remote() for w in self.model_pool.actors])

    def msa_worker_stats(self) -> list[dict]:
        """Per MSA actor still in the pool: database load seconds, residues held, RSS."""
        return ray.get([w.info.remote() for w in self.msa_pool.actors])

    def shard_worker_stats(self) -> list[dict]:
        """Per shard actor: database, shard, sequences and residues held, load seconds, RSS."""
        return ray.get([w.info.remote() for shards in self.shard_workers.values() for w in shards])

    def pool_stats(self) -> dict:
        return {pool.name: {"started": pool.started, "removed": pool.removed, "now": len(pool.actors)}
                for pool in (self.msa_pool, self.model_pool)}

    def close(self) -> None:
        """Stop every actor of this run now (on a shared Ray, e.g. from a notebook, they would
        otherwise hold their CPUs, GPUs and nodes until Python happens to collect the driver)."""
        self.msa_pool.kill_all()
        self.model_pool.kill_all()
        for shard in (w for workers in self.shard_workers.values() for w in workers):
            ray.kill(shard, no_restart=True)

    def _cancel(self, unfinished: list[Target]) -> None:
        """Stop running work now; finished targets keep their outputs and records."""
        self.cancelled = True
        self.close()
        for target in unfinished:
            self._set(target, "cancelled")

    def _finish(self, target: Target, result: TargetResult, **info) -> TargetResult:
        self._set(target, result.status, error=result.error, result=asdict(result), **info)
        self.on_result(result)
        return result

    def _failed(self, target: Target, error: Exception, prepared: PreparedTarget | None = None) -> TargetResult:
        return self._finish(target, TargetResult(
            target_id=target.id, length=target.length, status="failed", error=_error_text(error),
            sequence_hash=target.sequence_hash,
            msa_source=prepared.msa_source if prepared else None,
            msa_depths=prepared.msa_depths if prepared else {},
            timings=prepared.times.seconds() if prepared else {}))

    def _write(self, target: Target, prepared: PreparedTarget, predicted: PredictedTarget) -> TargetResult:
        start = time.time()
        spans = {**prepared.times.spans, **predicted.times.spans}
        model_timings = {k: v for p in predicted.predictions for k, v in p.timings.items()}
        timings = {**{k: e - s for k, (s, e) in spans.items()}, **model_timings,
                   "xla_compile": predicted.compiles.seconds, "params_load": predicted.params_load_seconds}
        folder = write_target(self.out_dir, target.id, prepared.alignments, predicted.predictions,
                              timings, self.config.model.uses_random_params, self.config.plots)
        best = max(predicted.predictions, key=lambda p: p.ranking_confidence)
        spans["output"] = (start, time.time())
        computed = {**prepared.computed, **predicted.computed}
        return self._finish(target, TargetResult(
            target_id=target.id, length=target.length, status="ok", sequence_hash=target.sequence_hash,
            msa_source=prepared.msa_source, msa_depths=prepared.msa_depths,
            feature_msa_depth=prepared.feature_msa_depth,
            best_model=best.model_name, mean_plddt=best.mean_plddt, ptm=best.ptm,
            msa_searches=computed.get("msa", 0), model_calls=computed.get("prediction", 0),
            cached=not computed, bucket=predicted.bucket, xla_compiles=predicted.compiles.compiles,
            xla_cache_hits=predicted.compiles.cache_hits, xla_compile_seconds=predicted.compiles.seconds,
            params_load_seconds=predicted.params_load_seconds, model_worker=predicted.worker_pid,
            msa_node=prepared.node_id, model_node=predicted.node_id,
            timings={k: e - s for k, (s, e) in spans.items()}, stage_spans=spans,
            output_dir=str(folder)))
