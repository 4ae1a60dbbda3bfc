"""Workers that hold a stage's resident objects and run its steps through :mod:`foldflow.stages`.

Plain Python: the in-process runner uses them as they are; on Ray, one actor class
(:class:`foldflow.pipeline.actors.StageActor`) builds any of them in its process and sets its
:attr:`placement` to Ray's (node id). Every step method takes a :class:`StepJob` (plus the large inputs,
passed by reference on Ray) and returns ``(Placed record, payload)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from foldflow.config import ModelConfig, MsaConfig, RelaxConfig, RunConfig, runner_model
from foldflow.models import load_model
from foldflow.models.base import CompileStats, Model
from foldflow.msa.registry import engines_for
from foldflow.stages import (Features, Placed, Placement, predict_target, prepare_target, relax_target,
                             write_outputs)
from foldflow.templates import template_searches
from foldflow.steps import StepCache
from foldflow.store import Store
from foldflow.targets import Target


@dataclass
class StepJob:
    """One step of one target: the item (model name) for per-model steps, the records of its inputs."""

    target: Target
    item: str | None = None
    inputs: dict[str, Placed | list[Placed]] = field(default_factory=dict)
    attempts: int = 1


def process_info() -> dict:
    import psutil

    return {"pid": os.getpid(), "rss_mb": psutil.Process().memory_info().rss / 2**20}


def local_placement() -> Placement:
    return Placement(os.getpid(), "local")


class _Worker:
    # Where this worker runs, stamped on every record (a Ray actor sets Ray's).
    placement: Callable[[], Placement] = staticmethod(local_placement)

    def warm(self) -> None:
        """Load resident state now; returns once the worker can take work."""

    def info(self) -> dict:
        return {**process_info(), "node_id": self.placement().node}


class MsaStage(_Worker):
    """MSA engines and the template search (databases resident) and the store: alignments, templates
    and features."""

    def __init__(self, config: MsaConfig, store_uri: str, shard_fan_out=None,
                 upcoming: Sequence[tuple[str, bool]] = ()):
        """``upcoming``: the run's chains (:func:`foldflow.stages.run_chains`), for engines that search
        many queries per call."""
        self.config = config
        self.cache = StepCache(Store(store_uri))
        resident = {"upcoming": upcoming, "stored": self.cache.has_alignment,
                    **({"fan_out": shard_fan_out} if shard_fan_out else {})}
        self.engines = engines_for(config, **resident)
        self.templates = template_searches(config.templates) if config.templates.enabled else None

    def warm(self) -> None:
        for engine in self.engines:
            engine.warm()
        for search in {id(s): s for s in (self.templates or {}).values()}.values():
            search.warm()

    def info(self) -> dict:
        facts = [engine.info() for engine in self.engines]
        return {**super().info(),
                **{name: sum(f.get(name, 0) for f in facts) for name in set().union(*facts)},
                "load_seconds": sum(f.get("load_seconds", 0.0) for f in facts),
                "residues": sum(f.get("residues", 0) for f in facts)}

    def prepare(self, job: StepJob) -> tuple[Placed, Features]:
        templates = self.templates[job.target.is_complex] if self.templates else None
        prepared, features = prepare_target(job.target, self.engines, templates, self.cache, self.config)
        return Placed(prepared, self.placement()), features


class ModelStage(_Worker):
    """The run's models' parameters and compiled programs, resident (loaded on first use)."""

    def __init__(self, config: ModelConfig, store_uri: str, models: list[str] | None = None):
        from foldflow.models.alphafold2 import enable_compilation_cache

        enable_compilation_cache(config.cache_dir / "jax")
        self.config = config
        self.run_models = models if models is not None else config.model_names  # what warm() loads
        self.models: dict[str, Model] = {}
        self.cache = StepCache(Store(store_uri))
        self.compiles = CompileStats()

    def model(self, name: str) -> Model:
        if name not in self.models:
            self.models[name] = load_model(name, self.config)
        return self.models[name]

    def warm(self) -> None:
        """Load the run's models' parameters now, while the MSA pool prepares the first features."""
        for name in self.run_models:
            self.model(name)

    def info(self) -> dict:
        return {**super().info(),
                "params_load_seconds": {m.name: m.load_seconds for m in self.models.values()},
                "params_initialised": {m.name: m.initialised for m in self.models.values()},
                "model_programs": {m.name: m.compiles for m in self.models.values()},
                "xla": vars(self.compiles)}

    def predict(self, job: StepJob, features: Features) -> tuple[Placed, None]:
        model = runner_model(job.item)
        predicted = predict_target(job.target, features, job.item, lambda: self.model(model), self.cache, self.config)
        self.compiles.add(predicted.compiles)
        return Placed(predicted, self.placement()), None


class RelaxStage(_Worker):
    """Amber relaxation on OpenMM (CPU by default), its own pool so it overlaps with model work."""

    def __init__(self, config: RelaxConfig, store_uri: str):
        self.config = config
        self.cache = StepCache(Store(store_uri))

    def relax(self, job: StepJob) -> tuple[Placed, None]:
        relaxed = relax_target([p.record for p in job.inputs["predict"]], self.cache, self.config)
        return Placed(relaxed, self.placement()), None


class OutputStage(_Worker):
    """Writes each finished target's folder (on Ray, in the driver: outputs go where the user runs foldflow)."""

    def __init__(self, config: RunConfig, out_dir: Path):
        self.config = config
        self.out_dir = out_dir

    def write(self, job: StepJob) -> tuple[Placed, None]:
        result = write_outputs(job.target, job.inputs["prepare"], job.inputs["predict"], job.inputs.get("relax"),
                               self.out_dir, self.config, job.attempts)
        return Placed(result, self.placement()), None
