"""One run on Ray: start or join Ray, build the workflow's pools as Ray actors, let the scheduler run the
unfinished targets (:func:`foldflow.flow.run.execute`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ray

from foldflow.compute import Resources
from foldflow.config import RunConfig, is_multimer_model
from foldflow.flow.local import LocalBackend, start_local
from foldflow.flow.pools import WorkerPool
from foldflow.flow.run import execute
from foldflow.flow.workflow import POOL_LABELS, stage_workers
from foldflow.models import model_class
from foldflow.msa.registry import make_engine
from foldflow.pipeline.actors import ACTOR_OPTIONS, RayBackend, ShardFanOut, StageActor, start_shard_workers
from foldflow.pipeline.placement import UnplaceableStageError, check_placeable, placement_options
from foldflow.pipeline.runtime import ray_session
from foldflow.results import TargetResult
from foldflow.runs import RunBook, RunManifest
from foldflow.stages import run_chains
from foldflow.targets import Target

# Calls queued per actor, so it never waits for the driver between targets.
CALLS_PER_ACTOR = 2


def stage_resources(config: RunConfig) -> dict[str, Resources]:
    """What one MSA and one model actor ask for: the pipeline settings where given, else what the
    MSA engine and the models declare."""
    p = config.pipeline
    engines = [make_engine(name, config.msa).resources() for name in config.msa.search_engines()]
    engine = Resources(cpus=max((e.cpus for e in engines), default=1.0),
                       memory_gb=max((e.memory_gb for e in engines if e.memory_gb), default=None))
    models = [model_class(name).resources for name in config.model.model_names]
    return {
        "msa": Resources(cpus=engine.cpus if p.msa_actor_cpus is None else p.msa_actor_cpus,
                         memory_gb=p.msa_actor_memory_gb or engine.memory_gb),
        "model": Resources(cpus=max(m.cpus for m in models) if p.model_actor_cpus is None else p.model_actor_cpus,
                           gpus=max(m.gpus for m in models) if p.model_actor_gpus is None else p.model_actor_gpus),
        "relax": Resources(cpus=p.relax_actor_cpus, gpus=p.relax_actor_gpus),
    }


def first_actors_cpus(config: RunConfig) -> float:
    """CPUs the pools' first actors ask for together (a local Ray offers at least this many)."""
    p, resources = config.pipeline, stage_resources(config)
    relax = p.relax_actors * resources["relax"].cpus if config.relaxes else 0
    return p.msa_actors * resources["msa"].cpus + p.model_actors * resources["model"].cpus + relax


class RayPools:
    """The run's pools: MSA, model and relax actors on Ray, the output writer in this process."""

    def __init__(self, config: RunConfig, out_dir: Path, fixed_nodes: bool, models: list[str],
                 upcoming: list[tuple[str, bool]]):
        """``upcoming``: the run's chains in order (:func:`foldflow.stages.run_chains`), for MSA engines
        that search many at once."""
        p = config.pipeline
        resources = stage_resources(config)
        placement = {
            "msa": placement_options(resources["msa"].cpus, 0, p.msa_actor_resources, p.msa_actor_labels,
                                     resources["msa"].memory_gb),
            "model": placement_options(resources["model"].cpus, resources["model"].gpus, p.model_actor_resources,
                                       p.model_actor_labels),
            "relax": placement_options(resources["relax"].cpus, resources["relax"].gpus, {}, {}),
        }
        sizes = {"msa": (p.msa_actors, p.msa_actors_max), "model": (p.model_actors, p.model_actors_max),
                 "relax": (p.relax_actors, p.relax_actors_max)}
        self.shard_workers = start_shard_workers(config.msa, placement["msa"], any(map(is_multimer_model, models)))
        builders = stage_workers(config, out_dir, models, upcoming,
                                 ShardFanOut(self.shard_workers) if self.shard_workers else None)
        on_ray = [name for name in builders if name in placement]
        if fixed_nodes:  # a local Ray never grows: a stage no node can hold is an error now
            nodes = ray.nodes()
            for name in on_ray:
                check_placeable(POOL_LABELS[name], placement[name], nodes)

        def starter(name: str):
            def start():
                actor = StageActor.options(**placement[name], **ACTOR_OPTIONS).remote(builders[name])
                return actor, actor.warm.remote()  # resident objects load now, before the first call needs them
            return start

        ray_backend = RayBackend()
        stop = lambda actor: ray.kill(actor, no_restart=True)  # noqa: E731
        self.backends = {**{name: ray_backend for name in on_ray}, "writer": LocalBackend()}
        self.pools = {
            **{name: WorkerPool(POOL_LABELS[name], starter(name), ray_backend, sizes[name][0],
                                sizes[name][1] or sizes[name][0], CALLS_PER_ACTOR, p.idle_timeout_s, stop)
               for name in on_ray},
            "writer": WorkerPool(POOL_LABELS["writer"], lambda: start_local(builders["writer"]()), LocalBackend(),
                                 1, 1, 1, p.idle_timeout_s),
        }

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
                models = config.model.models_needed({t.is_complex for t in todo})
                pools = RayPools(config, Path(manifest.out_dir), fixed_nodes, models, run_chains(todo))
            except UnplaceableStageError as error:
                book.set_state(manifest.run_id, "failed", error=str(error))
                raise
            try:
                yield pools
            finally:
                pools.close()

    return execute(manifest, config, book, open_pools)
