"""Worker pools that follow the queue: grow while work waits, shrink workers idle past a timeout.

A pool's resource requests (CPUs, GPUs, custom resources, node labels) are what
the Ray autoscaler reads: an actor that no node can hold yet stays pending until
the autoscaler starts a node of the right type; an actor removed when idle lets
the autoscaler release its node.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from foldflow.errors import FoldflowError

log = logging.getLogger("foldflow")


def placement_options(cpus: float, gpus: float = 0.0, resources: dict[str, float] | None = None,
                      labels: dict[str, str] | None = None, memory_gb: float | None = None) -> dict:
    """Ray actor options for one stage's placement."""
    options: dict = {"num_cpus": cpus}
    if gpus:
        options["num_gpus"] = gpus
    if resources:
        options["resources"] = dict(resources)
    if labels:
        options["label_selector"] = dict(labels)
    if memory_gb:
        options["memory"] = int(memory_gb * 2**30)
    return options


class UnplaceableStageError(FoldflowError, ValueError):
    """No node of a Ray that cannot grow offers what one actor of a stage asks for."""


def check_placeable(stage: str, options: dict, nodes: list[dict]) -> None:
    """Raise when no alive node can ever hold one actor with these ``placement_options``.

    Only for a Ray whose nodes are fixed (the local one foldflow starts): on a
    cluster the autoscaler may still add a node that fits.
    """
    wanted = {"CPU": options.get("num_cpus", 0), "GPU": options.get("num_gpus", 0),
              "memory": options.get("memory", 0), **options.get("resources", {})}
    wanted = {name: amount for name, amount in wanted.items() if amount}
    labels = options.get("label_selector", {})
    for node in (n for n in nodes if n["Alive"]):
        have = node["Resources"]
        if all(have.get(name, 0) >= amount for name, amount in wanted.items()) \
                and all(node.get("Labels", {}).get(key) == value for key, value in labels.items()):
            return

    def amount(name: str, value: float) -> str:
        return f"memory {value / 2**30:.1f} GiB" if name == "memory" else f"{name} {value:g}"

    asked = ", ".join(amount(name, value) for name, value in wanted.items())
    asked += "".join(f", label {key}={value}" for key, value in labels.items())
    offered = "; ".join(", ".join(amount(name, value) for name, value in sorted(n["Resources"].items())
                                  if name in ("CPU", "GPU") or name in wanted) or "nothing asked for"
                        for n in nodes if n["Alive"])
    raise UnplaceableStageError(
        f"{stage} actors ask for {asked}, but no node of this local Ray offers that (it has: {offered}); "
        f"change pipeline.{stage.lower()}_actor_* in the config, or run on a cluster with --address")


class ActorPool:
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
    def actors(self) -> list:
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
