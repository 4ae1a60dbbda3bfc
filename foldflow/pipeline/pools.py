"""Actor pools that follow the queue: grow while work waits, shrink actors idle past a timeout.

A pool's resource requests (CPUs, GPUs, custom resources, node labels) are what
the Ray autoscaler reads: an actor that no node can hold yet stays pending until
the autoscaler starts a node of the right type; an actor removed when idle lets
the autoscaler release its node.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import ray
from ray.actor import ActorHandle

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


class UnplaceableStageError(ValueError):
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
    """Between ``min_size`` and ``max_size`` actors of one stage, each taking ``capacity`` calls at a time."""

    def __init__(self, name: str, start_actor: Callable[[], ActorHandle], min_size: int, max_size: int,
                 capacity: int, idle_timeout_s: float):
        self.name = name
        self.start_actor = start_actor
        self.min_size, self.max_size = min_size, max(max_size, min_size)
        self.capacity = capacity
        self.idle_timeout_s = idle_timeout_s
        self.load: dict[ActorHandle, int] = {}
        self.idle_since: dict[ActorHandle, float] = {}
        self.started = self.removed = 0
        for _ in range(min_size):
            self._add()

    @property
    def actors(self) -> list[ActorHandle]:
        return list(self.load)

    def _add(self) -> ActorHandle:
        actor = self.start_actor()
        self.load[actor] = 0
        self.idle_since[actor] = time.monotonic()
        self.started += 1
        return actor

    def free(self) -> list[ActorHandle]:
        """Actors that can take another call, least loaded first."""
        return sorted((a for a, n in self.load.items() if n < self.capacity), key=self.load.get)

    def acquire(self, actor: ActorHandle) -> None:
        self.load[actor] += 1
        self.idle_since.pop(actor, None)

    def release(self, actor: ActorHandle) -> None:
        if actor in self.load:
            self.load[actor] -= 1
            if self.load[actor] == 0:
                self.idle_since[actor] = time.monotonic()

    def grow(self, work_waiting: bool) -> bool:
        """Add an actor when work waits, every actor is full and the pool is below its maximum."""
        if work_waiting and not self.free() and len(self.load) < self.max_size:
            self._add()
            log.info("%s pool: work waiting, grew to %d actors", self.name, len(self.load))
            return True
        return False

    def shrink(self) -> list[ActorHandle]:
        """Remove actors idle past the timeout, down to the minimum; returns the removed ones."""
        now = time.monotonic()
        removed = []
        for actor, since in sorted(self.idle_since.items(), key=lambda item: item[1]):
            if len(self.load) <= self.min_size:
                break
            if self.load[actor] == 0 and now - since >= self.idle_timeout_s:
                ray.kill(actor, no_restart=True)
                del self.load[actor], self.idle_since[actor]
                removed.append(actor)
                self.removed += 1
                log.info("%s pool: idle actor removed, %d left", self.name, len(self.load))
        return removed

    def kill_all(self) -> None:
        for actor in self.load:
            ray.kill(actor, no_restart=True)
        self.load.clear()
        self.idle_since.clear()
