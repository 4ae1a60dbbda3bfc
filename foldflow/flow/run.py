"""One run through the declared workflow, on any pools: the run's unfinished targets scheduled, its
progress shown and its records kept. The pools come from the caller: Ray actors (:mod:`foldflow.pipeline.run`)
or the stage workers in this process (:mod:`foldflow.flow.local`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from foldflow.config import RunConfig
from foldflow.flow.pools import WorkerPool
from foldflow.flow.scheduler import Backend, Scheduler
from foldflow.flow.workflow import prediction_workflow
from foldflow.progress import RunProgress
from foldflow.results import TargetResult
from foldflow.runs import RunBook, RunManifest
from foldflow.targets import Target


class Pools(Protocol):
    """A run's pools (by the workflow's pool names) and how each is called."""

    pools: dict[str, WorkerPool]
    backends: dict[str, Backend]

    def stats(self) -> dict[str, Any]:
        """What the run records of its workers when it finishes (load seconds, memory, compiles)."""


def execute(manifest: RunManifest, config: RunConfig, book: RunBook,
            open_pools: Callable[[list[Target]], AbstractContextManager[Pools]]) -> tuple[list[TargetResult], bool]:
    """Predict the run's unfinished targets on the pools ``open_pools(todo)`` gives; returns (results of every
    finished target, cancelled). A target already recorded as ok whose output folder exists is not run again.
    Failures are recorded per target, never raised."""
    finished, todo = book.split_finished(manifest)
    if config.pipeline.longest_first:
        todo.sort(key=lambda t: t.length, reverse=True)
    cancelled, workers = False, {}
    if todo:
        workflow = prediction_workflow(config)
        with open_pools(todo) as pools:
            progress = RunProgress(config.pipeline.progress, manifest.run_id,
                                   {step.name: sum(len(workflow.items(step, t)) for t in todo)
                                    for step in workflow.steps}, labels=workflow.labels)

            def report(result: TargetResult) -> None:
                if result.status != "ok":
                    progress.target_failed(result.target_id, result.error)
                progress.target_finished(result.target_id)

            try:
                scheduler = Scheduler(workflow, pools.pools, pools.backends, book, manifest.run_id,
                                      config.pipeline.max_in_flight, config.pipeline.max_attempts,
                                      on_result=report, on_step=progress.step)
                finished.update((r.target_id, r) for r in scheduler.run(todo))
                cancelled = scheduler.cancelled
                workers = {"workers": scheduler.workers(), **({} if cancelled else pools.stats())}
            finally:
                progress.close()
    book.set_state(manifest.run_id, "cancelled" if cancelled else "finished", **workers)
    return [finished[t.id] for t in manifest.target_objects() if t.id in finished], cancelled
