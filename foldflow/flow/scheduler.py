"""The scheduler: executes a :class:`~foldflow.flow.workflow.Workflow` over pools it is given.

It only schedules: admission (at most ``max_in_flight`` targets between
admission and their last step), dispatch to free workers (preferring a
worker that has done similar work: its affinity, e.g. a compiled bucket),
retries, pool growth and shrinking, cancellation, and the run records. The
pools and their :class:`Backend` (Ray actors, or in-process stand-ins) come
from the caller, so the loop has fast tests without Ray.

Durability: every step looks its results up in the store before working
(in :mod:`foldflow.stages`); the scheduler records each target's state and
result in the run book, so a resumed run skips finished targets. A worker
that is lost (its process or node died) makes the target start again, at
most ``max_attempts`` times; any other error fails that target alone.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from foldflow.flow.pools import WorkerPool
from foldflow.runs import RunBook
from foldflow.flow.workers import StepJob
from foldflow.stages import Placed
from foldflow.targets import Target
from foldflow.flow.workflow import StepSpec, Workflow

log = logging.getLogger("foldflow")
POLL_SECONDS = 1.0


class Backend(Protocol):
    """How a pool's workers are called: Ray actors, or plain objects in this process."""

    def call(self, worker: Any, method: str, args: tuple) -> tuple[Any, Any]:
        """Start ``worker.method(*args)``; handles of its (record, payload)."""

    def ready(self, handles: list, timeout: float) -> list:
        """Handles that are done, waiting at most ``timeout`` seconds for one."""

    def get(self, handle: Any) -> Any:
        """The value (raises the call's error)."""

    def is_lost(self, error: Exception) -> bool:
        """The worker (or its node) died: the work may succeed elsewhere."""

    def error_text(self, error: Exception) -> str: ...


@dataclass
class _TargetRun:
    target: Target
    attempts: int = 0
    generation: int = 0  # bumped on retry: results of an earlier attempt are dropped
    records: dict[tuple[str, str | None], Placed] = field(default_factory=dict)
    payloads: dict[str, Any] = field(default_factory=dict)
    pending: set = field(default_factory=set)  # (step, item) submitted or queued, not yet done


@dataclass
class _Call:
    run: _TargetRun
    generation: int
    step: StepSpec
    item: str | None
    worker: Any
    payload: Any


class Scheduler:
    def __init__(self, workflow: Workflow, pools: dict[str, WorkerPool], backends: dict[str, Backend],
                 book: RunBook, run_id: str, max_in_flight: int, max_attempts: int,
                 on_result: Callable[[Any], None] = lambda result: None,
                 on_step: Callable[[str, str, str | None, str], None] = lambda target, step, item, state: None):
        self.workflow = workflow
        self.pools = pools
        self.backends = backends
        self.book = book
        self.run_id = run_id
        self.max_in_flight = max_in_flight
        self.max_attempts = max_attempts
        self.on_result = on_result
        self.on_step = on_step  # (target id, step, item, state): queued, running, done, cached or failed
        self.waiting: dict[str, deque[tuple[_TargetRun, StepSpec, str | None]]] = {p: deque() for p in pools}
        self.calls: dict[Any, _Call] = {}  # record handle -> call
        self.warm: dict[tuple[str, Any], set[Hashable]] = {}  # (pool, worker) -> affinities done
        self.workers_seen: dict[str, dict[int, str]] = {name: {} for name in pools}
        self.cancelled = False

    # -- run ----------------------------------------------------------------------------------------
    def run(self, targets: Iterable[Target]) -> list:
        """Every target through the workflow; returns the final step's records (and failures)."""
        self.book.set_state(self.run_id, "running", workers={name: [] for name in self.pools})
        queue = deque(_TargetRun(t) for t in targets)
        active: list[_TargetRun] = []
        results: list = []
        next_poll = 0.0
        while queue or active:
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + POLL_SECONDS
                if self.book.cancel_requested(self.run_id):
                    self._cancel([r.target for r in (*queue, *active)])
                    break
                self._scale(bool(queue) and len(active) < self.max_in_flight)
            while queue and len(active) < self.max_in_flight:
                run = queue.popleft()
                active.append(run)
                self._start(run)
            self._dispatch()
            for handle in self._done():
                finished = self._complete(handle)
                if finished is not None:
                    run, result = finished
                    active.remove(run)
                    results.append(result)
        return results

    def _start(self, run: _TargetRun) -> None:
        run.attempts += 1
        run.generation += 1
        run.records.clear()
        run.payloads.clear()
        run.pending.clear()
        for step in self.workflow.roots:
            self._enqueue(run, step)

    def _enqueue(self, run: _TargetRun, step: StepSpec) -> None:
        for item in self.workflow.items(step, run.target):
            run.pending.add((step.name, item))
            self.waiting[step.pool].append((run, step, item))
            self.on_step(run.target.id, step.name, item, "queued")

    # -- dispatch -----------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Give waiting work to free workers, pool by pool in the workflow's order."""
        for name in self.workflow.pools:
            pool, waiting = self.pools[name], self.waiting[name]
            while waiting and (free := pool.free()):
                worker, (run, step, item) = self._pick(name, free, waiting)
                pool.acquire(worker)
                self._submit(name, worker, run, step, item)

    def _pick(self, pool: str, free: list, waiting: deque) -> tuple[Any, tuple]:
        """A free worker and waiting work, preferring work whose affinity the worker has."""
        for worker in free:
            done = self.warm.get((pool, worker), ())
            for work in waiting:
                affinity = self.workflow.affinity(work[1], work[0].target, work[2])
                if affinity is not None and affinity in done:
                    waiting.remove(work)
                    return worker, work
        cold = [w for w in free if not self.warm.get((pool, w))]
        return (cold[0] if cold else free[0]), waiting.popleft()

    def _submit(self, pool: str, worker: Any, run: _TargetRun, step: StepSpec, item: str | None) -> None:
        inputs = {}
        for name in step.inputs:
            records = [run.records[(name, i)] for i in self.workflow.items(self.workflow.step(name), run.target)]
            inputs[name] = records if self.workflow.step(name).per == "model" else records[0]
        payloads = tuple(run.payloads[name] for name in step.payloads)
        job = StepJob(run.target, item, inputs, run.attempts)
        record, payload = self.backends[pool].call(worker, step.name, (job, *payloads))
        self.calls[record] = _Call(run, run.generation, step, item, worker, payload)
        self._set(run, step.status)
        self.on_step(run.target.id, step.name, item, "running")

    # -- completion ---------------------------------------------------------------------------------
    def _done(self) -> list:
        """Finished calls: any that are done now, else wait (up to the poll interval) for one."""
        by_pool: dict[str, list] = {}
        for handle, call in self.calls.items():
            by_pool.setdefault(call.step.pool, []).append(handle)
        for pool, handles in by_pool.items():
            done = self.backends[pool].ready(handles, 0)
            if done:
                return done
        for pool, handles in by_pool.items():
            return self.backends[pool].ready(handles, POLL_SECONDS)
        return []

    def _complete(self, handle: Any) -> tuple[_TargetRun, Any] | None:
        """Record one finished call; returns (run, result) when its target is finished."""
        call = self.calls.pop(handle)
        pool, run = call.step.pool, call.run
        self.pools[pool].release(call.worker)
        backend = self.backends[pool]
        try:
            placed: Placed = backend.get(handle)
        except Exception as error:  # one target's failure never stops the batch
            if call.generation != run.generation or not run.pending:
                return None
            return self._failed(run, error, backend)
        if call.generation != run.generation or not run.pending:
            return None  # an earlier attempt's result, or a target already finished
        self._saw(pool, placed)
        run.records[(call.step.name, call.item)] = placed
        run.payloads.setdefault(call.step.name, call.payload)
        run.pending.discard((call.step.name, call.item))
        computed = getattr(placed.record, "computed", None)
        self.on_step(run.target.id, call.step.name, call.item,
                     "cached" if computed is not None and not any(computed.values()) else "done")
        affinity = self.workflow.affinity(call.step, run.target, call.item)
        if affinity is not None:
            self.warm.setdefault((pool, call.worker), set()).add(affinity)
        if call.step is self.workflow.final:
            run.pending.clear()
            return run, self._finish(run, placed.record)
        for dependent in self.workflow.dependents(call.step.name):
            needed = [(name, i) for name in (*dependent.inputs, *dependent.after)
                      for i in self.workflow.items(self.workflow.step(name), run.target)]
            started = any(key[0] == dependent.name for key in (*run.pending, *run.records))
            if not started and all(key in run.records for key in needed):
                self._enqueue(run, dependent)
        return None

    def _failed(self, run: _TargetRun, error: Exception, backend: Backend) -> tuple[_TargetRun, Any] | None:
        text = backend.error_text(error)
        if backend.is_lost(error) and run.attempts < self.max_attempts:
            log.warning("target '%s': %s; retrying (attempt %d of %d)", run.target.id, text,
                        run.attempts + 1, self.max_attempts)
            self._drop_waiting(run)
            self._start(run)
            return None
        self._drop_waiting(run)
        for step, item in run.pending:
            self.on_step(run.target.id, step, item, "failed")
        run.pending.clear()
        return run, self._finish(run, self.workflow.on_failure(run.target, text, run.records, run.attempts))

    def _drop_waiting(self, run: _TargetRun) -> None:
        for waiting in self.waiting.values():
            for work in [w for w in waiting if w[0] is run]:
                waiting.remove(work)

    def _finish(self, run: _TargetRun, result: Any) -> Any:
        self._set(run, result.status, error=result.error, result=result.to_record())
        self.on_result(result)
        return result

    # -- records, scaling, cancel -------------------------------------------------------------------
    def _set(self, run: _TargetRun, status: str, **info) -> None:
        self.book.set_target(self.run_id, run.target.id, status, attempts=run.attempts, **info)

    def _saw(self, pool: str, placed: Placed) -> None:
        """Record which worker processes run (pids, nodes), so `runs status` and operators find them."""
        pid, node = placed.placement.pid, placed.placement.node
        if self.workers_seen[pool].get(pid) != node:
            self.workers_seen[pool][pid] = node
            self.book.set_state(self.run_id, "running", workers={
                name: [{"pid": p, "node_id": n} for p, n in seen.items()]
                for name, seen in self.workers_seen.items()})

    def _scale(self, admitting: bool) -> None:
        for name, pool in self.pools.items():
            pool.poll_started()
            root = any(step.pool == name for step in self.workflow.roots)
            pool.grow(work_waiting=bool(self.waiting[name]) or (root and admitting))
            for removed in pool.shrink():
                self.warm.pop((name, removed), None)

    def _cancel(self, unfinished: list[Target]) -> None:
        """Stop running work now; finished targets keep their outputs and records."""
        self.cancelled = True
        for pool in self.pools.values():
            pool.stop_all()
        for target in unfinished:
            self.book.set_target(self.run_id, target.id, "cancelled")
