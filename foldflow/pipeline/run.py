"""One run on Ray: start or join Ray, build the workflow's pools as Ray actors, let the scheduler run the
unfinished targets (:func:`foldflow.flow.run.execute`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from foldflow.config import RunConfig
from foldflow.flow.pools import WorkerPool
from foldflow.flow.run import execute
from foldflow.flow.workflow import pool_resources, pool_sizes, pool_specs
from foldflow.models.predictions import is_multimer_model, models_needed
from foldflow.pipeline.actors import ACTOR_OPTIONS, RayBackend, ShardFanOut, StageActor, start_shard_workers
from foldflow.pipeline.placement import UnplaceableStageError, check_placeable, placement_options
from foldflow.pipeline.runtime import ray_session
from foldflow.results import TargetResult
from foldflow.runs import RunBook, RunManifest
from foldflow.stages import run_chains
from foldflow.targets import Target

# Calls queued per actor, so it never waits for the driver between targets.
CALLS_PER_ACTOR = 2


def ray_placement(config: RunConfig) -> dict[str, dict]:
    """Ray actor options of each pool: its declared resources, and the custom resources and node labels the
    pipeline settings ask for; the writers on this (the driver's) node, where the outputs go, unless
    ``pipeline.writer_nodes`` is "any"."""
    p = config.pipeline
    node = {"msa": (p.msa_actor_resources, p.msa_actor_labels), "model": (p.model_actor_resources, p.model_actor_labels),
            "writer": (p.writer_actor_resources, p.writer_actor_labels)}
    options = {name: placement_options(r.cpus, r.gpus, *node.get(name, ({}, {})), r.memory_gb)
               for name, r in pool_resources(config).items()}
    if p.writer_nodes == "driver":
        options["writer"]["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=False)
    return options


def first_actors_cpus(config: RunConfig) -> float:
    """CPUs the pools' first actors ask for together (a local Ray offers at least this many)."""
    sizes = pool_sizes(config)
    return sum(sizes[name][0] * r.cpus for name, r in pool_resources(config).items())


class RayPools:
    """The run's pools as Ray actors."""

    def __init__(self, config: RunConfig, out_dir: Path, fixed_nodes: bool, models: list[str],
                 upcoming: list[tuple[str, bool]]):
        """``upcoming``: the run's chains in order (:func:`foldflow.stages.run_chains`), for MSA engines
        that search many at once."""
        placement = ray_placement(config)
        self.shard_workers = start_shard_workers(config.msa, placement["msa"], any(map(is_multimer_model, models)))
        specs = pool_specs(config, out_dir, models, upcoming,
                           ShardFanOut(self.shard_workers) if self.shard_workers else None)
        if fixed_nodes:  # a local Ray never grows: a stage no node can hold is an error now
            nodes = ray.nodes()
            for name in placement:
                check_placeable(specs[name].label, placement[name], nodes)

        def starter(name: str):
            def start():
                actor = StageActor.options(**placement[name], **ACTOR_OPTIONS).remote(specs[name].resident)
                return actor, actor.warm.remote()  # resident objects load now, before the first call needs them
            return start

        backend = RayBackend()
        stop = lambda actor: ray.kill(actor, no_restart=True)  # noqa: E731
        self.backends = {name: backend for name in specs}
        self.pools = {name: WorkerPool(spec.label, starter(name), backend, *spec.size, CALLS_PER_ACTOR,
                                       config.pipeline.idle_timeout_s, stop)
                      for name, spec in specs.items()}

    def stats(self) -> dict:
        """Per actor still in the pools: load seconds, memory, compiles; pool sizes."""
        return {"msa_workers": ray.get([a.info.remote() for a in self.pools["msa"].workers]),
                "model_workers": ray.get([a.info.remote() for a in self.pools["model"].workers]),
                "shard_workers": ray.get([w.info.remote() for ws in self.shard_workers.values() for w in ws]),
                "pools": {pool.name: {"started": pool.started, "removed": pool.removed, "now": len(pool.workers)}
                          for pool in (self.pools["msa"], self.pools["model"])}}

    def close(self) -> None:
        """Stop every actor of this run now (on a shared Ray, e.g. from a notebook, they would
        otherwise hold their CPUs, GPUs and nodes until Python happens to collect the driver)."""
        for pool in self.pools.values():
            pool.stop_all()
        for shard in (w for workers in self.shard_workers.values() for w in workers):
            ray.kill(shard, no_restart=True)


def execute_run(manifest: RunManifest, config: RunConfig, book: RunBook) -> tuple[list[TargetResult], bool]:
    """Predict the run's unfinished targets on Ray; returns (results of every finished target, cancelled)."""

    @contextmanager
    def open_pools(todo: list[Target]) -> Iterator[RayPools]:
        with ray_session(config.pipeline.cluster_address(), min_cpus=first_actors_cpus(config)) as fixed_nodes:
            try:
                models = models_needed(config.model, {t.is_complex for t in todo})
                pools = RayPools(config, Path(manifest.out_dir), fixed_nodes, models, run_chains(todo))
            except UnplaceableStageError as error:
                book.set_state(manifest.run_id, "failed", error=str(error))
                raise
            try:
                yield pools
            finally:
                pools.close()

    return execute(manifest, config, book, open_pools)
