"""The prediction pipeline as a declared DAG of steps over declared pools, in one place.

Each :class:`StepSpec` names the plain function it runs (:mod:`foldflow.flow.workers`), the pool whose
workers run it, the steps whose results it takes, whether it runs once per target, per distinct chain or per
model, and how users read its stage. Each :class:`PoolSpec` names what its workers hold resident, what one
worker asks of its node and how many run. The scheduler (:mod:`foldflow.flow.scheduler`) executes any such
DAG over any pools (Ray actors or workers in this process). What each step's stored results' keys cover is in
:mod:`foldflow.steps`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import Any, Literal

from foldflow.compute import Resources
from foldflow.config import RunConfig, runner_model
from foldflow.flow import workers
from foldflow.models import model_class
from foldflow.models.predictions import runners_for
from foldflow.msa.registry import make_engine
from foldflow.stages import Placed, failed_result
from foldflow.targets import Target


@dataclass(frozen=True)
class StepSpec:
    name: str
    pool: str
    label: str  # the stage as users read it (progress, runs status, the report's timeline)
    run: Callable[..., tuple[Any, Any]]  # (pool's resident objects, StepJob, *payloads) -> (record, payload)
    inputs: tuple[str, ...] = ()  # steps whose records it takes
    after: tuple[str, ...] = ()  # steps it waits for without taking their records
    payloads: tuple[str, ...] = ()  # of those, the steps whose large result (e.g. features) it takes, by reference
    # "chain": once per distinct chain of the target; "model": once per prediction (model and seed). A step per
    # chain takes its input steps' records of the same chain.
    per: Literal["target", "chain", "model"] = "target"
    # What makes two targets' items the same work (a per-chain step): one call runs while both are in flight.
    share: Callable[[Target, str], Hashable] | None = None
    status: str = ""  # the target's status in the run records while this step runs


@dataclass(frozen=True)
class Workflow:
    steps: tuple[StepSpec, ...]
    predictions: Callable[[Target], tuple[str, ...]]  # the items of a per-model step, for a target
    # Work a worker is faster at once it did similar work (e.g. an XLA program compiled for a bucket).
    affinity: Callable[[StepSpec, Target, str | None], Hashable | None]
    # The record of a target that failed: (target, error, records so far, attempts).
    on_failure: Callable[[Target, str, dict[tuple[str, str | None], Placed], int], object]

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        for step in self.steps:
            unknown = [i for i in (*step.inputs, *step.after) if i not in names[:names.index(step.name)]]
            unknown += [i for i in step.payloads if i not in (*step.inputs, *step.after)]
            if unknown:
                raise ValueError(f"step '{step.name}': inputs {unknown} are not earlier steps")

    @cached_property
    def _by_name(self) -> dict[str, StepSpec]:
        return {s.name: s for s in self.steps}

    def step(self, name: str) -> StepSpec:
        return self._by_name[name]

    def items(self, step: StepSpec, target: Target) -> tuple[str | None, ...]:
        if step.per == "model":
            return self.predictions(target)
        return tuple(target.distinct_chains) if step.per == "chain" else (None,)

    def needs(self, step: StepSpec, item: str | None, name: str, target: Target) -> list[tuple[str, str | None]]:
        """The (step, item) records of input step ``name`` that ``step``'s ``item`` waits for: the same
        item's when both run per chain (or per model), else every item's."""
        source = self.step(name)
        if source.per == step.per != "target":
            return [(name, item)]
        return [(name, i) for i in self.items(source, target)]

    def share_key(self, step: StepSpec, target: Target, item: str | None) -> Hashable | None:
        return (step.name, step.share(target, item)) if step.share is not None else None

    @cached_property
    def _dependents(self) -> dict[str, list[StepSpec]]:
        return {name: [s for s in self.steps if name in (*s.inputs, *s.after)] for name in self._by_name}

    def dependents(self, name: str) -> list[StepSpec]:
        return self._dependents[name]

    def passes_payload(self, step: StepSpec) -> bool:
        """Whether a later step takes this step's payloads (else they need not travel back)."""
        return any(step.name in s.payloads for s in self._dependents[step.name])

    @property
    def roots(self) -> list[StepSpec]:
        return [s for s in self.steps if not (s.inputs or s.after)]

    @property
    def final(self) -> StepSpec:
        (last,) = [s for s in self.steps if not self.dependents(s.name)]
        return last

    @property
    def pools(self) -> list[str]:
        return list(dict.fromkeys(s.pool for s in self.steps))

    @property
    def labels(self) -> dict[str, str]:
        return {s.name: s.label for s in self.steps}


def prediction_workflow(config: RunConfig) -> Workflow:
    """Per distinct chain: alignments, then templates (unless off); per target: features -> one prediction
    per model and seed -> Amber relaxation (unless models_to_relax is none) and scores -> outputs."""
    templates = config.msa.templates.enabled
    relax = config.relaxes
    # A chain's alignments depend on its sequence and whether it is paired; files given for it, on its name.
    named = config.msa.precomputed_dir is not None

    def alignment_share(target: Target, chain: str) -> Hashable:
        return target.distinct_chains[chain], target.pairing, target.chain(chain).id if named else None

    def templates_share(target: Target, chain: str) -> Hashable:  # monomers and complexes search differently
        return alignment_share(target, chain), target.is_complex

    steps = (
        StepSpec("align", "msa", "msa", workers.align, per="chain", share=alignment_share, status="msa"),
        *([StepSpec("templates", "msa", "templates", workers.search_templates, inputs=("align",), per="chain",
                    share=templates_share, status="msa")] if templates else []),
        StepSpec("features", "msa", "features", workers.make_features,
                 inputs=("align", *(("templates",) if templates else ())),
                 payloads=("templates",) if templates else (), status="msa"),
        StepSpec("predict", "model", "model", workers.predict, after=("features",), payloads=("features",),
                 per="model", status="model"),
        *([StepSpec("relax", "relax", "relax", workers.relax, inputs=("predict",), status="relax")] if relax else []),
        StepSpec("score", "writer", "score", workers.score, inputs=("predict",), status="output"),
        StepSpec("write", "writer", "output", workers.write,
                 inputs=("align", *(("templates",) if templates else ()), "features", "predict",
                         *(("relax",) if relax else ()), "score"), status="output"),
    )

    def predictions(target: Target) -> tuple[str, ...]:
        return tuple(runners_for(config.model, target.is_complex))

    def affinity(step: StepSpec, target: Target, runner: str | None) -> Hashable | None:
        if step.name != "predict":
            return None
        return runner_model(runner), config.model.bucket_for(target.length)

    def on_failure(target: Target, error: str, records: dict, attempts: int):
        alignments = {item: placed for (name, item), placed in records.items() if name == "align"}
        return failed_result(target, error, alignments, attempts)

    return Workflow(steps, predictions, affinity, on_failure)


@dataclass(frozen=True)
class PoolSpec:
    label: str  # the pool as users read it (errors, logs, the run's worker records)
    resident: Callable[[], workers.Resident]  # builds what its workers hold, where each runs
    resources: Resources  # what one worker on Ray asks of its node
    size: tuple[int, int]  # workers at the start, and at most (it grows while work waits)


def pool_resources(config: RunConfig) -> dict[str, Resources]:
    """What one worker of each pool asks for on Ray: the pipeline settings where given, else what the MSA
    engines and the models declare."""
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
        **({"relax": Resources(cpus=p.relax_actor_cpus, gpus=p.relax_actor_gpus)} if config.relaxes else {}),
        "writer": Resources(cpus=p.writer_actor_cpus),
    }


def pool_sizes(config: RunConfig) -> dict[str, tuple[int, int]]:
    p = config.pipeline
    return {"msa": (p.msa_actors, p.msa_actors_max or p.msa_actors),
            "model": (p.model_actors, p.model_actors_max or p.model_actors),
            "relax": (p.relax_actors, p.relax_actors_max or p.relax_actors),
            "writer": (p.writer_actors, p.writer_actors_max or p.writer_actors)}


def pool_specs(config: RunConfig, out_dir: Path, models: list[str], upcoming: Sequence[tuple[str, bool]],
               shard_fan_out: Any = None) -> dict[str, PoolSpec]:
    """The pools of :func:`prediction_workflow`. ``models``: the models the run's targets need; ``upcoming``:
    the run's chains (:func:`foldflow.stages.run_chains`), for engines that search many at once;
    ``shard_fan_out``: the sharded MSA engine's searches of its shard actors (on Ray)."""
    resources, sizes = pool_resources(config), pool_sizes(config)
    resident = {
        "msa": ("MSA", partial(workers.MsaResident, config.msa, config.store, shard_fan_out, upcoming)),
        "model": ("model", partial(workers.ModelResident, config.model, config.store, models)),
        **({"relax": ("relax", partial(workers.RelaxResident, config.effective_relax(), config.store))}
           if config.relaxes else {}),
        "writer": ("writer", partial(workers.WriterResident, config, out_dir)),
    }
    return {name: PoolSpec(label, build, resources[name], sizes[name]) for name, (label, build) in resident.items()}
