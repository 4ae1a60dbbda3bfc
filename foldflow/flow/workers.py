"""What a pool's worker holds resident, the step functions that run on it, and the one worker class.

Plain Python: the in-process runner uses them as they are; on Ray, one actor class
(:class:`foldflow.pipeline.actors.StageActor`) builds a :class:`Worker` in its process and sets its
:attr:`~Worker.placement` to Ray's (node id). Every step function takes the pool's resident objects and a
:class:`StepJob` (plus the large results of earlier steps, passed by reference on Ray) and returns
``(record, payload)``; :meth:`Worker.run` stamps the record with where it ran. Each computes through
:mod:`foldflow.stages`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foldflow.config import ModelConfig, MsaConfig, RelaxConfig, RunConfig, runner_model
from foldflow.features import FeatureDict
from foldflow.models import load_model
from foldflow.models.base import CompileStats, Model
from foldflow.msa.registry import engines_for
from foldflow.results import PARTS, TargetResult, TargetScores
from foldflow.scoring import target_scores
from foldflow.stages import (ChainAlignments, ChainTemplates, Features, Placed, Placement, PredictedModel,
                             RelaxedTarget, TargetFeatures, align_chain, chain_templates, predict_target,
                             ranked, relax_target, target_features, write_outputs)
from foldflow.steps import StepCache
from foldflow.store import Store
from foldflow.targets import Target
from foldflow.templates import template_searches


@dataclass
class StepJob:
    """One step of one target: the item (chain id, or prediction name) for per-chain and per-model steps,
    and the records of its inputs (a per-chain or per-model input: item -> record)."""

    target: Target
    item: str | None = None
    inputs: dict[str, Placed | Mapping[str, Placed]] = field(default_factory=dict)
    attempts: int = 1


def process_info() -> dict:
    import psutil

    return {"pid": os.getpid(), "rss_mb": psutil.Process().memory_info().rss / 2**20}


def local_placement() -> Placement:
    return Placement(os.getpid(), "local")


class Resident:
    """A pool's resident objects (databases, parameters, compiled programs), loaded where its worker runs."""

    def warm(self) -> None:
        """Load resident state now; returns once the worker can take work."""

    def info(self) -> dict:
        """Facts for the run's records (load seconds, memory held, compiles)."""
        return {}


class Worker:
    """Any pool's worker: its resident objects and the step functions it runs on them."""

    # Where this worker runs, stamped on every record (a Ray actor sets Ray's).
    placement: Callable[[], Placement] = staticmethod(local_placement)

    def __init__(self, resident: Resident):
        self.resident = resident

    def warm(self) -> None:
        self.resident.warm()

    def info(self) -> dict:
        return {**process_info(), "node_id": self.placement().node, **self.resident.info()}

    def run(self, function: Callable[..., tuple[Any, Any]], job: StepJob, *payloads) -> tuple[Placed, Any]:
        start = time.perf_counter()
        record, payload = function(self.resident, job, *payloads)
        return Placed(record, self.placement(), time.perf_counter() - start), payload


# -- MSA pool: alignments, templates, features -------------------------------------------------------------
class MsaResident(Resident):
    """MSA engines and the template search (databases resident) and the store."""

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
        return {**{name: sum(f.get(name, 0) for f in facts) for name in set().union(*facts)},
                "load_seconds": sum(f.get("load_seconds", 0.0) for f in facts),
                "residues": sum(f.get("residues", 0) for f in facts)}


def align(msa: MsaResident, job: StepJob) -> tuple[ChainAlignments, None]:
    """One distinct chain's alignments."""
    return align_chain(job.target.chain(job.item), job.target.pairing, msa.engines, msa.cache), None


def search_templates(msa: MsaResident, job: StepJob) -> tuple[ChainTemplates, FeatureDict | None]:
    """One distinct chain's templates, from its alignments."""
    return chain_templates(job.target.distinct_chains[job.item], job.inputs["align"].record,
                           msa.templates[job.target.is_complex], msa.cache, msa.config.templates)


def make_features(msa: MsaResident, job: StepJob, *template_features: FeatureDict | None
                   ) -> tuple[TargetFeatures, Features]:
    """The target's features from its chains' alignments and templates (their features, one per chain)."""
    alignments = [p.record for p in job.inputs["align"].values()]
    templates = [p.record for p in job.inputs.get("templates", {}).values()]
    return target_features(job.target, alignments, templates, template_features, msa.cache, msa.config)


# -- model pool ----------------------------------------------------------------------------------------------
class ModelResident(Resident):
    """The run's models' parameters and compiled programs (loaded on first use)."""

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
        return {"params_load_seconds": {m.name: m.load_seconds for m in self.models.values()},
                "params_initialised": {m.name: m.initialised for m in self.models.values()},
                "model_programs": {m.name: m.compiles for m in self.models.values()},
                "xla": vars(self.compiles)}


def predict(models: ModelResident, job: StepJob, features: Features) -> tuple[PredictedModel, None]:
    """One prediction (``job.item``: ``<model>_pred_<i>``) from the features alone."""
    model = runner_model(job.item)
    predicted = predict_target(job.target, features, job.item, lambda: models.model(model), models.cache,
                               models.config)
    models.compiles.add(predicted.compiles)
    return predicted, None


# -- relax pool ----------------------------------------------------------------------------------------------
class RelaxResident(Resident):
    """Amber relaxation on OpenMM (CPU by default), its own pool so it overlaps with model work."""

    def __init__(self, config: RelaxConfig, store_uri: str):
        self.config = config
        self.cache = StepCache(Store(store_uri))


def relax(relaxer: RelaxResident, job: StepJob) -> tuple[RelaxedTarget, None]:
    return relax_target([p.record for p in job.inputs["predict"].values()], relaxer.cache, relaxer.config), None


def score(writer: WriterResident, job: StepJob) -> tuple[TargetScores, None]:
    """Confidence scores of the target's best prediction."""
    return target_scores(ranked([p.record for p in job.inputs["predict"].values()])[0].prediction), None


# -- writer pool ---------------------------------------------------------------------------------------------
class WriterResident(Resident):
    """Where the run's folders go (on Ray, writers run on the driver's node: outputs go where the user runs
    foldflow)."""

    def __init__(self, config: RunConfig, out_dir: Path):
        self.config = config
        self.out_dir = out_dir


def write(writer: WriterResident, job: StepJob) -> tuple[TargetResult, None]:
    """The target's folder and summary record, from every earlier step's records; a step whose record is a
    part of the summary (:data:`foldflow.results.PARTS`) adds its columns."""
    inputs = job.inputs
    result = write_outputs(job.target, inputs["align"], inputs.get("templates", {}), inputs["features"],
                           list(inputs["predict"].values()), inputs.get("relax"), writer.out_dir, writer.config,
                           job.attempts)
    for placed in inputs.values():
        if isinstance(placed, Placed) and isinstance(placed.record, tuple(PARTS.values())):
            result = result.with_part(placed.record)
    return result, None
