"""Worker pools that follow the queue: grow while work waits, shrink workers idle past a timeout.

A pool's workers are Ray actors (:mod:`foldflow.pipeline`) or plain objects in this process
(:mod:`foldflow.flow.local`); on Ray, their resource requests (CPUs, GPUs, custom resources, node labels) are
what the autoscaler reads: an actor that no node can hold yet stays pending until the autoscaler starts a node
of the right type; an actor removed when idle lets the autoscaler release its node.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("foldflow")


class WorkerPool:
    """Between ``min_size`` and ``max_size`` workers of one stage, each taking ``capacity`` calls at a time.

    ``start_worker`` returns a new worker and the handle of its start-up call
    (it loads its resident state): until that call is done the worker is
    *pending* (on a cluster, often waiting for the autoscaler to add a node).
    A pool with a pending worker does not grow further: the pending worker
    takes the queued work when it starts.
    """

    def __init__(self, name: str, start_worker: Callable[[], tuple[Any, Any]], backend, min_size: int,
                 max_size: int, capacity: int, idle_timeout_s: float,
                 stop_worker: Callable[[Any], None] = lambda worker: None):
        self.name = name
        self.start_worker = start_worker
        self.stop_worker = stop_worker
        self.backend = backend
        self.min_size, self.max_size = min_size, max(max_size, min_size)
        self.capacity = capacity
        self.idle_timeout_s = idle_timeout_s
        self.load: dict[Any, int] = {}
        self.idle_since: dict[Any, float] = {}
        self.pending: dict[Any, Any] = {}  # worker -> its start-up call, until that is done
        self.started = self.removed = 0
        for _ in range(min_size):
            self._add()

    @property
    def workers(self) -> list:
        return list(self.load)

    def _add(self) -> Any:
        worker, started = self.start_worker()
        self.load[worker] = 0
        self.idle_since[worker] = time.monotonic()
        if started is not None:
            self.pending[worker] = started
        self.started += 1
        return worker

    def poll_started(self) -> None:
        """Move workers whose start-up call finished from pending to running."""
        if self.pending:
            done = set(self.backend.ready(list(self.pending.values()), 0))
            self.pending = {w: h for w, h in self.pending.items() if h not in done}

    def free(self) -> list:
        """Workers that can take another call (pending ones queue it), least loaded first."""
        return sorted((a for a, n in self.load.items() if n < self.capacity), key=self.load.get)

    def acquire(self, worker) -> None:
        self.load[worker] += 1
        self.idle_since.pop(worker, None)

    def release(self, worker) -> None:
        if worker in self.load:
            self.load[worker] -= 1
            if self.load[worker] == 0:
                self.idle_since[worker] = time.monotonic()

    def grow(self, work_waiting: bool) -> bool:
        """Add a worker when work waits, every worker is full, none is still starting, and the pool
        is below its maximum."""
        if work_waiting and not self.free() and not self.pending and len(self.load) < self.max_size:
            self._add()
            log.info("%s pool: work waiting, grew to %d workers", self.name, len(self.load))
            return True
        return False

    def shrink(self) -> list:
        """Remove workers idle past the timeout, down to the minimum; returns the removed ones."""
        now = time.monotonic()
        removed = []
        for worker, since in sorted(self.idle_since.items(), key=lambda item: item[1]):
            if len(self.load) <= self.min_size:
                break
            if self.load[worker] == 0 and now - since >= self.idle_timeout_s:
                self.stop_worker(worker)
                del self.load[worker], self.idle_since[worker]
                self.pending.pop(worker, None)
                removed.append(worker)
                self.removed += 1
                log.info("%s pool: idle worker removed, %d left", self.name, len(self.load))
        return removed

    def stop_all(self) -> None:
        for worker in self.load:
            self.stop_worker(worker)
        self.load.clear()
        self.idle_since.clear()
        self.pending.clear()
