"""The scheduler: executes a :class:`~foldflow.flow.workflow.Workflow` over pools it is given.

It only schedules: admission (at most ``max_in_flight`` targets between
admission and their last step), dispatch to free workers (preferring a
worker that has done similar work: its affinity, e.g. a compiled bucket;
items of a quick step go several to a call, so the driver's cost of a call is
shared: as many as take a worker about ``BATCH_SECONDS``; while more targets
wait for admission, a quick step's items wait up to ``LINGER_SECONDS`` for others),
shared work (a step item whose share key is queued or running already, such
as a chain two complexes in flight have in common, runs once and its record
goes to every target waiting for it), retries, pool growth and shrinking,
cancellation, and the run records. The
pools and their :class:`Backend` (Ray actors, or in-process stand-ins) come
from the caller, so the loop has fast tests without Ray.

Durability: every step looks its results up in the store before working
(in :mod:`foldflow.stages`); the scheduler records each target's state and
result in the run book (written once per poll interval), so a resumed run skips finished targets. A worker
that is lost (its process or node died) makes the target start again, at
most ``max_attempts`` times; any other error fails that target alone.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from foldflow.flow.pools import WorkerPool
from foldflow.runs import RunBook
from foldflow.flow.workers import StepJob
from foldflow.stages import Placed
from foldflow.targets import Target
from foldflow.flow.workflow import StepSpec, Workflow

log = logging.getLogger("foldflow")
POLL_SECONDS = 1.0
BATCH_SECONDS = 1.0  # a call takes items of one step until they would keep its worker this long (measured)
MAX_BATCH = 64
LINGER_SECONDS = 0.25  # while targets wait for admission, a quick step's items wait this long to share a call


class Backend(Protocol):
    """How a pool's workers are called: Ray actors, or plain objects in this process."""

    def call(self, worker: Any, function: Callable, items: list[tuple], payloads: bool) -> list[tuple[Any, Any]]:
        """Start ``worker.run(function, *args)`` for each ``args`` of ``items`` (a step's function on the
        worker's resident objects), all in one call where the worker is remote; handles of each one's
        (record, payload), the payload's None unless ``payloads`` (a later step takes them). One item's error
        is that item's alone."""

    def ready(self, handles: list, timeout: float) -> list:
        """Every handle that is done, waiting at most ``timeout`` seconds for one."""

    def outcomes(self, handles: list) -> list[tuple[Any, Exception | None]]:
        """Each finished handle's (value, None), or (None, the error its item raised), fetched together."""

    def is_lost(self, error: Exception) -> bool:
        """The worker (or its node) died: the work may succeed elsewhere."""

    def error_text(self, error: Exception) -> str: ...


@dataclass
class _TargetRun:
    target: Target
    attempts: int = 0
    generation: int = 0  # bumped on retry: results of an earlier attempt are dropped
    records: dict[tuple[str, str | None], Placed] = field(default_factory=dict)
    payloads: dict[tuple[str, str | None], Any] = field(default_factory=dict)
    pending: set = field(default_factory=set)  # (step, item) submitted, queued or shared, not yet done

    def live(self, generation: int, step: str, item: str | None) -> bool:
        return generation == self.generation and (step, item) in self.pending


@dataclass(frozen=True)
class _Sharer:
    """A target waiting for another target's call of the same work (a step's share key)."""

    run: _TargetRun
    generation: int
    item: str | None  # the same work may be another item of this target (e.g. its chain B, another's A)


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
        # Share key of each step item queued or running -> the other targets that wait for its result.
        self.sharing: dict[Hashable, list[_Sharer]] = {}
        self.warm: dict[tuple[str, Any], set[Hashable]] = {}  # (pool, worker) -> affinities done
        self.item_seconds: dict[str, float] = {}  # step -> a worker's recent seconds per item (its records')
        self.dispatched: dict[str, float] = {}  # pool -> when its waiting work last went to a worker
        self.backlog = False  # targets wait for admission: more work is coming
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
                self.book.flush(self.run_id)
                if self.book.cancel_requested(self.run_id):
                    self._cancel([r.target for r in (*queue, *active)])
                    break
                self._scale(bool(queue) and len(active) < self.max_in_flight)
            while queue and len(active) < self.max_in_flight:
                run = queue.popleft()
                active.append(run)
                self._start(run)
            self.backlog = bool(queue)
            lingering = self._dispatch()
            for handle, placed, error in self._done(LINGER_SECONDS if lingering else POLL_SECONDS):
                for run, result in self._complete(handle, placed, error):
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

    def _enqueue(self, run: _TargetRun, step: StepSpec, items: Iterable[str | None] | None = None) -> None:
        """Queue the step's items (all, or ``items``); an item whose share key is queued or running already
        waits for that call instead."""
        for item in self.workflow.items(step, run.target) if items is None else items:
            run.pending.add((step.name, item))
            self.on_step(run.target.id, step.name, item, "queued")
            key = self.workflow.share_key(step, run.target, item)
            if key in self.sharing:
                self.sharing[key].append(_Sharer(run, run.generation, item))
                continue
            if key is not None:
                self.sharing[key] = []
            self.waiting[step.pool].append((run, step, item))

    # -- dispatch -----------------------------------------------------------------------------------
    def _dispatch(self) -> bool:
        """Give waiting work to free workers, pool by pool in the workflow's order; whether some waits on
        purpose (:meth:`_lingers`)."""
        lingering = False
        for name in self.workflow.pools:
            pool, waiting = self.pools[name], self.waiting[name]
            if waiting and self._lingers(name, waiting):
                lingering = True
                continue
            if waiting and pool.free():
                self.dispatched[name] = time.monotonic()
            while waiting and (free := pool.free()):
                worker, first = self._pick(name, free, waiting)
                batch = [first, *self._batch_mates(first, waiting, len(free))]
                for _ in batch:
                    pool.acquire(worker)
                self._submit(name, worker, batch)
        return lingering

    def _lingers(self, pool: str, waiting: deque) -> bool:
        """Whether the pool's waiting work waits for more (a fuller call): while targets wait for admission,
        for at most ``LINGER_SECONDS`` since the pool's last dispatch, when it is of a quick step and fewer
        items wait than one call takes."""
        full = self._call_size(waiting[0][1])
        if not self.backlog or full == 1:
            return False
        return len(waiting) < full and time.monotonic() - self.dispatched.get(pool, 0.0) < LINGER_SECONDS

    def _call_size(self, step: StepSpec) -> int:
        """How many of the step's items one call takes: as many as keep a worker about ``BATCH_SECONDS`` (at
        most ``MAX_BATCH``); one for a step not measured yet."""
        seconds = self.item_seconds.get(step.name)
        if seconds is None or seconds >= BATCH_SECONDS:
            return 1
        return min(int(BATCH_SECONDS / max(seconds, 1e-6)), MAX_BATCH)

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

    def _batch_mates(self, first: tuple, waiting: deque, free_workers: int) -> list[tuple]:
        """Waiting items of ``first``'s step (and affinity) that go in its call: none for a step whose items
        take a worker ``BATCH_SECONDS`` or more (or not yet measured), else a share of those waiting."""
        step = first[1]
        size = self._call_size(step)
        if size == 1:
            return []
        affinity = self.workflow.affinity(step, first[0].target, first[2])
        alike = [w for w in waiting if w[1] is step and self.workflow.affinity(step, w[0].target, w[2]) == affinity]
        share = -(-(len(alike) + 1) // free_workers)  # the waiting items spread over the free workers
        mates = alike[:min(share, size) - 1]
        for work in mates:
            waiting.remove(work)
        return mates

    def _submit(self, pool: str, worker: Any, batch: list[tuple[_TargetRun, StepSpec, str | None]]) -> None:
        """One call of ``worker`` for a batch of one step's items."""
        step = batch[0][1]
        items = []
        for run, _, item in batch:
            inputs = {}
            for name in step.inputs:
                needed = self.workflow.needs(step, item, name, run.target)
                one = self.workflow.step(name).per == "target" or needed == [(name, item)]
                inputs[name] = run.records[needed[0]] if one else {key[1]: run.records[key] for key in needed}
            payloads = tuple(run.payloads[key] for name in step.payloads
                             for key in self.workflow.needs(step, item, name, run.target))
            items.append((StepJob(run.target, item, inputs, run.attempts), *payloads))
        handles = self.backends[pool].call(worker, step.run, items, self.workflow.passes_payload(step))
        for (run, _, item), (record, payload) in zip(batch, handles):
            self.calls[record] = _Call(run, run.generation, step, item, worker, payload)
            self._set(run, step.status)
            self.on_step(run.target.id, step.name, item, "running")

    # -- completion ---------------------------------------------------------------------------------
    def _done(self, timeout: float) -> list[tuple[Any, Any, Exception | None]]:
        """Finished calls, (handle, value, error): all that are done now, else wait (up to ``timeout`` seconds)
        for one."""
        by_backend: dict[int, tuple[Backend, list]] = {}
        for handle, call in self.calls.items():
            backend = self.backends[call.step.pool]
            by_backend.setdefault(id(backend), (backend, []))[1].append(handle)
        if not by_backend:  # nothing running: work waits for a worker to start, or lingers
            time.sleep(min(timeout, 0.05))
            return []
        done = [(backend, backend.ready(handles, 0)) for backend, handles in by_backend.values()]
        if not any(handles for _, handles in done):
            backend, handles = next(iter(by_backend.values()))  # (one backend in a run: Ray's, or this process's)
            done = [(backend, backend.ready(handles, timeout))]
        return [(handle, *outcome) for backend, handles in done if handles
                for handle, outcome in zip(handles, backend.outcomes(handles))]

    def _complete(self, handle: Any, placed: Placed | None, error: Exception | None) -> list[tuple[_TargetRun, Any]]:
        """Record one finished call (its record, or the error it raised) for its target and every target
        sharing it; returns (run, result) of each target that is finished."""
        call = self.calls.pop(handle)
        pool, run, step, item = call.step.pool, call.run, call.step, call.item
        self.pools[pool].release(call.worker)
        key = self.workflow.share_key(step, run.target, item)
        sharers = [s for s in self.sharing.pop(key, []) if s.run.live(s.generation, step.name, s.item)]
        backend = self.backends[pool]
        if error is not None:  # one target's failure never stops the batch
            finished = []
            if run.live(call.generation, step.name, item):
                finished += self._failed(run, error, backend)
            if sharers and backend.is_lost(error):  # the work may succeed elsewhere: the first sharer runs it
                for sharer in sharers:
                    self._enqueue(sharer.run, step, [sharer.item])
            else:
                for sharer in sharers:
                    finished += self._failed(sharer.run, error, backend)
            return finished
        self._saw(pool, placed)
        previous = self.item_seconds.get(step.name, placed.seconds)
        self.item_seconds[step.name] = 0.8 * previous + 0.2 * placed.seconds
        receivers = [(run, item, placed)] if run.live(call.generation, step.name, item) else []
        receivers += [(s.run, s.item, replace(placed, shared=True)) for s in sharers]
        finished = []
        for target_run, its_item, record in receivers:
            result = self._record(target_run, call, its_item, record)
            if result is not None:
                finished.append((target_run, result))
        return finished

    def _record(self, run: _TargetRun, call: _Call, item: str | None, placed: Placed) -> Any:
        """Enter the record of ``call`` as ``run``'s ``item`` of its step, and queue what it unblocks; the
        target's result when the step was its last."""
        step = call.step
        run.records[(step.name, item)] = placed
        run.payloads[(step.name, item)] = call.payload
        run.pending.discard((step.name, item))
        computed = getattr(placed.record, "computed", None)
        self.on_step(run.target.id, step.name, item,
                     "cached" if placed.shared or (computed is not None and not any(computed.values())) else "done")
        affinity = self.workflow.affinity(step, run.target, item)
        if affinity is not None and not placed.shared:
            self.warm.setdefault((step.pool, call.worker), set()).add(affinity)
        if step is self.workflow.final:
            run.pending.clear()
            return self._finish(run, placed.record)
        for dependent in self.workflow.dependents(step.name):
            ready = [i for i in self.workflow.items(dependent, run.target)
                     if (dependent.name, i) not in run.pending and (dependent.name, i) not in run.records
                     and all(key in run.records for name in (*dependent.inputs, *dependent.after)
                             for key in self.workflow.needs(dependent, i, name, run.target))]
            if ready:
                self._enqueue(run, dependent, ready)
        return None

    def _failed(self, run: _TargetRun, error: Exception, backend: Backend) -> list[tuple[_TargetRun, Any]]:
        text = backend.error_text(error)
        if backend.is_lost(error) and run.attempts < self.max_attempts:
            log.warning("target '%s': %s; retrying (attempt %d of %d)", run.target.id, text,
                        run.attempts + 1, self.max_attempts)
            self._drop_waiting(run)
            self._start(run)
            return []
        self._drop_waiting(run)
        for step, item in run.pending:
            self.on_step(run.target.id, step, item, "failed")
        run.pending.clear()
        return [(run, self._finish(run, self.workflow.on_failure(run.target, text, run.records, run.attempts)))]

    def _drop_waiting(self, run: _TargetRun) -> None:
        """Take the run's queued work off the queues; queued work other targets share passes to the first
        of them that still waits for it, in the same place in the queue."""
        for waiting in self.waiting.values():
            for work in [w for w in waiting if w[0] is run]:
                index = waiting.index(work)
                waiting.remove(work)
                _, step, item = work
                key = self.workflow.share_key(step, run.target, item)
                sharers = [s for s in self.sharing.pop(key, []) if s.run.live(s.generation, step.name, s.item)]
                if sharers:
                    self.sharing[key] = sharers[1:]
                    waiting.insert(index, (sharers[0].run, step, sharers[0].item))

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
            self.book.set_state(self.run_id, "running", workers=self.workers())

    def workers(self) -> dict[str, list[dict]]:
        """Each pool's worker processes seen so far (pid and node)."""
        return {name: [{"pid": p, "node_id": n} for p, n in seen.items()] for name, seen in self.workers_seen.items()}

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
