"""The driver loop: targets flow MSA pool -> (features as object refs) -> model pool -> writer.

At most ``max_in_flight`` targets are between submission and written output,
so memory does not grow with the batch; MSA work for later targets runs while
the model pool works on earlier ones.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ray

from foldflow.config import RunConfig
from foldflow.outputs import TargetResult, write_target
from foldflow.pipeline.workers import ModelWorker, MsaWorker, PredictedTarget, PreparedTarget
from foldflow.targets import Target

# Calls queued per MSA actor, so it never waits for the driver between targets.
_MSA_CALLS_PER_WORKER = 2


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
    """Runs one batch of targets through resident actor pools."""

    def __init__(self, config: RunConfig, out_dir: Path,
                 on_result: Callable[[TargetResult], None] = lambda result: None):
        self.config = config
        self.out_dir = out_dir
        self.on_result = on_result
        p = config.pipeline
        self.msa_workers = [
            MsaWorker.options(num_cpus=p.msa_actor_cpus).remote(config.msa) for _ in range(p.msa_actors)]
        self.model_workers = [
            ModelWorker.options(num_cpus=p.model_actor_cpus, num_gpus=p.model_actor_gpus).remote(config.model)
            for _ in range(p.model_actors)]

    def worker_info(self) -> dict[str, list[dict]]:
        return {"msa": ray.get([w.info.remote() for w in self.msa_workers]),
                "model": ray.get([w.info.remote() for w in self.model_workers])}

    def run(self, targets: list[Target]) -> list[TargetResult]:
        queue = deque(targets)
        in_msa: dict[ray.ObjectRef, _InMsa] = {}
        prepared: deque[_Prepared] = deque()
        in_model: dict[ray.ObjectRef, _InModel] = {}
        idle_models = list(self.model_workers)
        msa_load = {w: 0 for w in self.msa_workers}
        results: list[TargetResult] = []
        limit = self.config.pipeline.max_in_flight

        while queue or in_msa or prepared or in_model:
            while queue and len(in_msa) + len(prepared) + len(in_model) < limit:
                worker = min(msa_load, key=msa_load.get)
                if msa_load[worker] >= _MSA_CALLS_PER_WORKER:
                    break
                target = queue.popleft()
                prepared_ref, features_ref = worker.prepare.remote(target)
                in_msa[prepared_ref] = _InMsa(target, features_ref, worker)
                msa_load[worker] += 1
            while prepared and idle_models:
                item, worker = prepared.popleft(), idle_models.pop()
                in_model[worker.predict.remote(item.features)] = _InModel(item.target, item.prepared, worker)

            (done,), _ = ray.wait(list(in_msa) + list(in_model), num_returns=1)
            if done in in_msa:
                job = in_msa.pop(done)
                msa_load[job.worker] -= 1
                try:
                    prepared.append(_Prepared(job.target, ray.get(done), job.features))
                except Exception as error:  # one target's failure never stops the batch
                    results.append(self._failed(job.target, error))
            else:
                job = in_model.pop(done)
                idle_models.append(job.worker)
                try:
                    predicted = ray.get(done)
                    results.append(self._write(job.target, job.prepared, predicted))
                except Exception as error:
                    results.append(self._failed(job.target, error, job.prepared))
        return results

    def _finish(self, result: TargetResult) -> TargetResult:
        self.on_result(result)
        return result

    def _failed(self, target: Target, error: Exception, prepared: PreparedTarget | None = None) -> TargetResult:
        return self._finish(TargetResult(
            target_id=target.id, length=target.length, status="failed", error=_error_text(error),
            sequence_hash=target.sequence_hash,
            msa_source=prepared.msa_source if prepared else None,
            msa_depths=prepared.msa_depths if prepared else {},
            timings=prepared.times.seconds() if prepared else {}))

    def _write(self, target: Target, prepared: PreparedTarget, predicted: PredictedTarget) -> TargetResult:
        start = time.time()
        spans = {**prepared.times.spans, **predicted.times.spans}
        timings = {**{k: e - s for k, (s, e) in spans.items()}, **predicted.model_timings}
        folder = write_target(self.out_dir, target.id, prepared.alignments, predicted.predictions,
                              timings, self.config.model.uses_random_params)
        best = max(predicted.predictions, key=lambda p: p.ranking_confidence)
        spans["output"] = (start, time.time())
        return self._finish(TargetResult(
            target_id=target.id, length=target.length, status="ok", sequence_hash=target.sequence_hash,
            msa_source=prepared.msa_source, msa_depths=prepared.msa_depths, feature_msa_depth=prepared.feature_msa_depth,
            best_model=best.model_name, mean_plddt=best.mean_plddt, ptm=best.ptm,
            timings={k: e - s for k, (s, e) in spans.items()}, stage_spans=spans,
            output_dir=str(folder)))
