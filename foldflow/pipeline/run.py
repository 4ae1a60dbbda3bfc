"""One run on Ray: start or join Ray, build the pools, let the scheduler run the unfinished targets."""

from __future__ import annotations

from pathlib import Path

import ray

from foldflow.compute import Resources
from foldflow.config import RunConfig, is_multimer_model
from foldflow.models import model_class
from foldflow.msa.registry import make_engine
from foldflow.pipeline.actors import (ACTOR_OPTIONS, ModelActor, MsaActor, RayBackend, RelaxActor,
                                      start_shard_workers)
from foldflow.pipeline.local import LocalBackend, start_local
from foldflow.pipeline.pools import ActorPool, UnplaceableStageError, check_placeable, placement_options
from foldflow.pipeline.runtime import ray_session
from foldflow.pipeline.scheduler import Scheduler
from foldflow.progress import RunProgress
from foldflow.results import TargetResult
from foldflow.runs import RunBook, RunManifest
from foldflow.stage_workers import OutputStage
from foldflow.stages import run_chains
from foldflow.workflow import prediction_workflow

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
    relax = p.relax_actors * resources["relax"].cpus if config.relax.models_to_relax != "none" else 0
    return p.msa_actors * resources["msa"].cpus + p.model_actors * resources["model"].cpus + relax


class RayPools:
    """The run's pools: MSA and model actors on Ray, the output writer in this process."""

    def __init__(self, config: RunConfig, out_dir: Path, fixed_nodes: bool, models: list[str],
                 upcoming: list[tuple[str, bool]]):
        """``upcoming``: the run's chains in order (:func:`foldflow.stages.run_chains`), for MSA engines
        that search many at once."""
        p = config.pipeline
        resources = stage_resources(config)
        msa = placement_options(resources["msa"].cpus, 0, p.msa_actor_resources, p.msa_actor_labels,
                                resources["msa"].memory_gb)
        model = placement_options(resources["model"].cpus, resources["model"].gpus, p.model_actor_resources,
                                  p.model_actor_labels)
        relax = placement_options(resources["relax"].cpus, resources["relax"].gpus, {}, {})
        if fixed_nodes:  # a local Ray never grows: a stage no node can hold is an error now
            nodes = ray.nodes()
            check_placeable("MSA", msa, nodes)
            check_placeable("model", model, nodes)
            if config.relax.models_to_relax != "none":
                check_placeable("relax", relax, nodes)
        self.shard_workers = start_shard_workers(config.msa, msa, any(map(is_multimer_model, models)))

        def start_msa():
            actor = MsaActor.options(**msa, **ACTOR_OPTIONS).remote(config.msa, config.store, self.shard_workers,
                                                                      upcoming)
            return actor, actor.warm.remote()  # databases load now, before the first target needs them

        def start_model():
            actor = ModelActor.options(**model, **ACTOR_OPTIONS).remote(config.model, config.store, models)
            return actor, actor.warm.remote()  # parameters load while the first MSAs are searched

        def start_relax():
            actor = RelaxActor.options(**relax, **ACTOR_OPTIONS).remote(config.effective_relax(), config.store)
            return actor, actor.warm.remote()

        ray_backend = RayBackend()
        stop = lambda actor: ray.kill(actor, no_restart=True)  # noqa: E731
        self.backends = {"msa": ray_backend, "model": ray_backend, "relax": ray_backend, "writer": LocalBackend()}
        self.pools = {
            "msa": ActorPool("MSA", start_msa, ray_backend, p.msa_actors, p.msa_actors_max or p.msa_actors,
                             CALLS_PER_ACTOR, p.idle_timeout_s, stop),
            "model": ActorPool("model", start_model, ray_backend, p.model_actors,
                               p.model_actors_max or p.model_actors, CALLS_PER_ACTOR, p.idle_timeout_s, stop),
            **({"relax": ActorPool("relax", start_relax, ray_backend, p.relax_actors,
                                   p.relax_actors_max or p.relax_actors, CALLS_PER_ACTOR, p.idle_timeout_s, stop)}
               if config.relax.models_to_relax != "none" else {}),
            "writer": ActorPool("writer", lambda: start_local(OutputStage(config, out_dir)), LocalBackend(),
                                1, 1, 1, p.idle_timeout_s),
        }

    def stats(self) -> dict:
        """Per actor still in the pools: load seconds, memory, compiles; pool sizes."""
        return {"msa_workers": ray.get([a.info.remote() for a in self.pools["msa"].actors]),
                "model_workers": ray.get([a.info.remote() for a in self.pools["model"].actors]),
                "shard_workers": ray.get([w.info.remote() for ws in self.shard_workers.values() for w in ws]),
                "pools": {pool.name: {"started": pool.started, "removed": pool.removed, "now": len(pool.actors)}
                          for pool in (self.pools["msa"], self.pools["model"])}}

    def close(self) -> None:
        """Stop every actor of this run now (on a shared Ray, e.g. from a notebook, they would
        otherwise hold their CPUs, GPUs and nodes until Python happens to collect the driver)."""
        for pool in self.pools.values():
            pool.stop_all()
        for shard in (w for workers in self.shard_workers.values() for w in workers):
            ray.kill(shard, no_restart=True)


def execute_run(manifest: RunManifest, config: RunConfig, book: RunBook) -> tuple[list[TargetResult], bool]:
    """Predict the run's unfinished targets; returns (results of every finished target, cancelled).

    A target already recorded as ok whose output folder exists is not run again.
    Failures are recorded per target, never raised.
    """
    out_dir = Path(manifest.out_dir)
    targets = manifest.target_objects()
    finished, todo = book.split_finished(manifest)
    if config.pipeline.longest_first:
        todo.sort(key=lambda t: t.length, reverse=True)
    cancelled, workers = False, {}
    if todo:
        workflow = prediction_workflow(config)
        with ray_session(config.pipeline.cluster_address(), min_cpus=first_actors_cpus(config)) as fixed_nodes:
            try:
                models = config.model.models_needed({t.is_complex for t in todo})
                pools = RayPools(config, out_dir, fixed_nodes, models, run_chains(todo))
            except UnplaceableStageError as error:
                book.set_state(manifest.run_id, "failed", error=str(error))
                raise
            progress = RunProgress(config.pipeline.progress, manifest.run_id,
                                   {step.name: sum(len(workflow.items(step, t)) for t in todo)
                                    for step in workflow.steps})

            def report(result: TargetResult) -> None:
                if result.status != "ok":
                    progress.target_failed(result.target_id, result.error)

            try:
                scheduler = Scheduler(workflow, pools.pools, pools.backends, book, manifest.run_id,
                                      config.pipeline.max_in_flight, config.pipeline.max_attempts,
                                      on_result=report, on_step=progress.step)
                finished.update((r.target_id, r) for r in scheduler.run(todo))
                cancelled = scheduler.cancelled
                if not cancelled:
                    workers = pools.stats()
            finally:
                pools.close()
                progress.close()
    book.set_state(manifest.run_id, "cancelled" if cancelled else "finished", **workers)
    return [finished[t.id] for t in targets if t.id in finished], cancelled
