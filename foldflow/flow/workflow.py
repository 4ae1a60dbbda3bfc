"""The prediction pipeline as a declared DAG of steps, in one place.

Each :class:`StepSpec` names the worker method that runs it, the pool whose workers run it, the steps whose
results it takes, whether it runs once per target or once per model, and how users read its stage. The
scheduler (:mod:`foldflow.flow.scheduler`) executes any such DAG over any pools (Ray actors or workers in this
process); :func:`stage_workers` declares what worker each pool holds. What each step's stored results' keys
cover is in :mod:`foldflow.steps`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

from foldflow.config import RunConfig, runner_model
from foldflow.flow.workers import ModelStage, MsaStage, OutputStage, RelaxStage
from foldflow.stages import Placed, failed_result
from foldflow.targets import Target


@dataclass(frozen=True)
class StepSpec:
    name: str  # also the method of the pool's workers that runs it
    pool: str
    label: str  # the stage as users read it (progress, runs status)
    inputs: tuple[str, ...] = ()  # steps whose records it takes
    after: tuple[str, ...] = ()  # steps it waits for without taking their records
    payloads: tuple[str, ...] = ()  # of those, the steps whose large result (e.g. features) it takes, by reference
    per: Literal["target", "model"] = "target"  # "model": once per prediction (model and seed)
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

    def step(self, name: str) -> StepSpec:
        return next(s for s in self.steps if s.name == name)

    def items(self, step: StepSpec, target: Target) -> tuple[str | None, ...]:
        return self.predictions(target) if step.per == "model" else (None,)

    def dependents(self, name: str) -> list[StepSpec]:
        return [s for s in self.steps if name in (*s.inputs, *s.after)]

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
    """MSAs, templates and features per target -> one prediction per model and seed -> Amber relaxation
    (unless models_to_relax is none) -> outputs per target."""
    relax = config.relaxes
    steps = (
        StepSpec("prepare", pool="msa", label="msa+features", status="msa"),
        StepSpec("predict", pool="model", label="model", after=("prepare",), payloads=("prepare",), per="model",
                 status="model"),
        *([StepSpec("relax", pool="relax", label="relax", inputs=("predict",), status="relax")] if relax else []),
        StepSpec("write", pool="writer", label="output", inputs=("prepare", "predict", *(("relax",) if relax else ())),
                 status="output"),
    )

    def predictions(target: Target) -> tuple[str, ...]:
        return tuple(config.model.runners_for(target.is_complex))

    def affinity(step: StepSpec, target: Target, runner: str | None) -> Hashable | None:
        if step.name != "predict":
            return None
        return runner_model(runner), config.model.bucket_for(target.length)

    def on_failure(target: Target, error: str, records: dict, attempts: int):
        return failed_result(target, error, records.get(("prepare", None)), attempts)

    return Workflow(steps, predictions, affinity, on_failure)


# Each pool as users read it (errors, logs, the run's worker records).
POOL_LABELS = {"msa": "MSA", "model": "model", "relax": "relax", "writer": "writer"}


def stage_workers(config: RunConfig, out_dir: Path, models: list[str], upcoming: Sequence[tuple[str, bool]],
                  shard_fan_out: Any = None) -> dict[str, Callable[[], Any]]:
    """What each pool of :func:`prediction_workflow` holds: a builder of its stage worker (the worker loads its
    resident objects where it is built: a Ray actor's process, or this one). ``models``: the models the run's
    targets need; ``upcoming``: the run's chains (:func:`foldflow.stages.run_chains`), for engines that search
    many at once; ``shard_fan_out``: the sharded MSA engine's searches of its shard actors (on Ray)."""
    return {
        "msa": partial(MsaStage, config.msa, config.store, shard_fan_out, upcoming),
        "model": partial(ModelStage, config.model, config.store, models),
        **({"relax": partial(RelaxStage, config.effective_relax(), config.store)} if config.relaxes else {}),
        "writer": partial(OutputStage, config, out_dir),
    }
