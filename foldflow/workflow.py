"""The prediction pipeline as a declared DAG of steps, in one place.

Each :class:`StepSpec` names the worker method that runs it, the pool whose
workers run it, the steps whose results it takes, whether it runs once per
target or once per model, and what its stored results' keys cover. The
scheduler (:mod:`foldflow.pipeline.scheduler`) executes any such DAG; adding a
stage (templates, relaxation, per-chain searches) means adding a step here
and a method on the pool's worker, not rewriting the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Literal

from foldflow.config import RunConfig, runner_model
from foldflow.stages import Placed, failed_result
from foldflow.targets import Target


@dataclass(frozen=True)
class StepSpec:
    name: str  # also the method of the pool's workers that runs it
    pool: str
    inputs: tuple[str, ...] = ()  # steps whose records it takes
    payloads: tuple[str, ...] = ()  # inputs whose large result (e.g. features) it takes, by reference
    per: Literal["target", "model"] = "target"  # "model": once per prediction (model and seed)
    status: str = ""  # the target's status in the run records while this step runs
    key: str = ""  # what the keys of its stored results cover ("" when it stores nothing)


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
            unknown = [i for i in (*step.inputs, *step.payloads) if i not in names[:names.index(step.name)]]
            if unknown:
                raise ValueError(f"step '{step.name}': inputs {unknown} are not earlier steps")

    def step(self, name: str) -> StepSpec:
        return next(s for s in self.steps if s.name == name)

    def items(self, step: StepSpec, target: Target) -> tuple[str | None, ...]:
        return self.predictions(target) if step.per == "model" else (None,)

    def dependents(self, name: str) -> list[StepSpec]:
        return [s for s in self.steps if name in s.inputs]

    @property
    def roots(self) -> list[StepSpec]:
        return [s for s in self.steps if not s.inputs]

    @property
    def final(self) -> StepSpec:
        (last,) = [s for s in self.steps if not self.dependents(s.name)]
        return last

    @property
    def pools(self) -> list[str]:
        return list(dict.fromkeys(s.pool for s in self.steps))


def prediction_workflow(config: RunConfig) -> Workflow:
    """MSAs, templates and features per target -> one prediction per model and seed -> Amber relaxation
    (unless models_to_relax is none) -> outputs per target."""
    relax = config.relax.models_to_relax != "none"
    steps = (
        StepSpec("prepare", pool="msa", status="msa",
                 key="alignments (per distinct chain): sequence, database fingerprint, search settings, engine "
                     "and version; templates: the uniref90 alignment's key, PDB seqres and mmCIF folder, "
                     "max template date, hit limit; features: the chains, alignments' and templates' keys, "
                     "deduplication"),
        StepSpec("predict", pool="model", inputs=("prepare",), payloads=("prepare",), per="model", status="model",
                 key="features key, model name and version, parameters' fingerprint, seed, recycles, "
                     "MSA depths, precision, bucket"),
        *([StepSpec("relax", pool="relax", inputs=("predict",), status="relax",
                    key="prediction key, AlphaFold's relaxation settings, OpenMM and alphafold versions")]
          if relax else []),
        StepSpec("write", pool="writer", inputs=("prepare", "predict", *(("relax",) if relax else ())),
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
