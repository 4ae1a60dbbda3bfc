"""The in-process backend: a pool's workers are plain objects called in this process.

A run with ``pipeline.runner: in_process`` runs every pool this way (:func:`execute_in_process`), and the
scheduler's fast tests use it for their stand-in pools.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from foldflow.config import RunConfig
from foldflow.errors import error_line
from foldflow.flow.pools import WorkerPool
from foldflow.flow.run import execute
from foldflow.flow.workers import Worker
from foldflow.flow.workflow import PoolSpec, pool_specs
from foldflow.models.predictions import models_needed
from foldflow.results import TargetResult
from foldflow.runs import RunBook, RunManifest
from foldflow.stages import run_chains
from foldflow.targets import Target


@dataclass(eq=False)
class Done:
    """A finished in-process call: its value, or the error it raised."""

    value: Any = None
    error: Exception | None = None


class WorkerLost(RuntimeError):
    """An in-process stand-in for a worker whose process died (tests of retries)."""


class LocalBackend:
    def call(self, worker: Worker, function: Callable, items: list[tuple], payloads: bool) -> list[tuple[Done, Done]]:
        return [self.call_one(worker, function, args) for args in items]

    def call_one(self, worker: Worker, function: Callable, args: tuple) -> tuple[Done, Done]:
        args = tuple(self.get(a) if isinstance(a, Done) else a for a in args)  # payloads of earlier steps
        try:
            record, payload = worker.run(function, *args)
        except Exception as error:  # delivered when the scheduler reads the result, as on Ray
            return Done(error=error), Done()
        return Done(record), Done(payload)

    def ready(self, handles: list, timeout: float) -> list:
        return list(handles)

    def get(self, handle: Done) -> Any:
        if handle.error is not None:
            raise handle.error
        return handle.value

    def outcomes(self, handles: list[Done]) -> list[tuple[Any, Exception | None]]:
        return [(handle.value, handle.error) for handle in handles]

    def is_lost(self, error: Exception) -> bool:
        return isinstance(error, WorkerLost)

    def error_text(self, error: Exception) -> str:
        return error_line(error)


def start_local(worker: Any) -> tuple[Any, None]:
    """A pool's ``start_worker`` result for an in-process worker (running at once)."""
    return worker, None


def start_worker(spec: PoolSpec) -> tuple[Worker, None]:
    """A pool's ``start_worker`` for a worker in this process: built (its resident objects loaded) now."""
    return start_local(Worker(spec.resident()))


class LocalPools:
    """A run's pools in this process (:func:`~foldflow.flow.workflow.pool_specs`), one worker each, called one
    step at a time."""

    def __init__(self, specs: dict[str, PoolSpec]):
        backend = LocalBackend()
        self.backends = {name: backend for name in specs}
        self.pools = {name: WorkerPool(spec.label, partial(start_worker, spec), backend, 1, 1, 1, 0)
                      for name, spec in specs.items()}

    def stats(self) -> dict:
        return {}


def execute_in_process(manifest: RunManifest, config: RunConfig, book: RunBook) -> tuple[list[TargetResult], bool]:
    """A run in this process, without Ray: the same workflow, scheduler and records as on Ray (cancel,
    progress, step statuses and retries included), each pool one stage worker here. For tests, debugging,
    and a notebook user who wants a few targets now; its outputs are the same bytes as the Ray pipeline's."""

    @contextmanager
    def open_pools(todo: list[Target]) -> Iterator[LocalPools]:
        models = models_needed(config.model, {t.is_complex for t in todo})
        yield LocalPools(pool_specs(config, Path(manifest.out_dir), models, run_chains(todo)))

    return execute(manifest, config, book, open_pools)
