"""One run on Ray: start or join Ray, run the targets a run has not finished, record its state."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from foldflow.config import RunConfig
from foldflow.outputs import TargetResult
from foldflow.pipeline.driver import BatchDriver
from foldflow.pipeline.pools import UnplaceableStageError
from foldflow.pipeline.runtime import ray_session
from foldflow.runs import RunBook, RunManifest


def execute_run(manifest: RunManifest, config: RunConfig, book: RunBook) -> tuple[list[TargetResult], bool]:
    """Predict the run's unfinished targets; returns (results of every finished target, cancelled).

    A target already recorded as ok whose output folder exists is not run again.
    Failures are recorded per target, never raised.
    """
    out_dir = Path(manifest.out_dir)
    states = book.targets(manifest.run_id)
    targets = manifest.target_objects()
    finished = {t.id: book.finished_result(states[t.id]) for t in targets
                if states.get(t.id, {}).get("status") == "ok" and (out_dir / t.id).is_dir()}
    todo = [t for t in targets if t.id not in finished]
    cancelled, workers = False, {}
    if todo:
        with ray_session(config.pipeline.address) as fixed_nodes, tqdm(
                total=len(targets), initial=len(finished), desc=f"run {manifest.run_id}", unit="target",
                disable=not config.pipeline.progress) as bar:
            def report(result: TargetResult) -> None:
                bar.update()
                if result.status != "ok":
                    bar.write(f"target '{result.target_id}' failed: {result.error}")

            try:
                driver = BatchDriver(config, out_dir, config.store, book, manifest.run_id, on_result=report,
                                     fixed_nodes=fixed_nodes)
            except UnplaceableStageError as error:
                book.set_state(manifest.run_id, "failed", error=str(error))
                raise
            try:
                finished.update((r.target_id, r) for r in driver.run(todo))
                cancelled = driver.cancelled
                if not cancelled:
                    workers = {"msa_workers": driver.msa_worker_stats(),
                               "model_workers": driver.model_worker_stats(),
                               "shard_workers": driver.shard_worker_stats(), "pools": driver.pool_stats()}
            finally:
                driver.close()
    book.set_state(manifest.run_id, "cancelled" if cancelled else "finished", **workers)
    return [finished[t.id] for t in targets if t.id in finished], cancelled
