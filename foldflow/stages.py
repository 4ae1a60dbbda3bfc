"""The per-target workflow as plain functions: no Ray, every dependency an argument.

* :func:`prepare_target`: alignments (from the engines, through the store),
  depth statistics and features;
* :func:`predict_target`: one model's prediction, padded to the target's
  length bucket, with what XLA compiled and the parameters' load time;
* :func:`write_outputs` / :func:`failed_result`: the target's folder and its
  :class:`~foldflow.results.TargetResult`.

The Ray actors in :mod:`foldflow.pipeline` and the in-process runner in
:mod:`foldflow.sequential` call these same functions.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from foldflow.config import ModelConfig, MsaConfig, RunConfig
from foldflow.features import FeatureDict, build_features, msa_depth
from foldflow.models import model_class
from foldflow.models.base import CompileStats, Model, Prediction
from foldflow.msa.alignment import QUERY_NAME, Alignment
from foldflow.msa.engine import MsaEngine
from foldflow.outputs import write_target
from foldflow.results import RunObservations, ScienceResult, TargetResult
from foldflow.steps import StepCache, features_key, prediction_key
from foldflow.targets import Target

Span = tuple[float, float]  # epoch seconds: start, end


@dataclass
class PreparedTarget:
    """Alignments and what is known about them; the features travel separately (they are large)."""

    alignments: list[Alignment]
    msa_source: str  # the engine that gave the alignments ("pyhmmer", "precomputed", ...)
    msa_depths: dict[str, int]
    feature_msa_depth: int
    features_key: str
    computed: dict[str, int]  # step kind -> results computed (not found in the store)
    spans: dict[str, Span]


@dataclass
class PredictedModel:
    """One model's prediction for one target, and what producing it cost."""

    prediction: Prediction
    bucket: int  # length the features were padded to
    compiles: CompileStats
    params_load_seconds: float  # parameters loaded for this call (0 when resident already)
    computed: dict[str, int]
    span: Span


@dataclass(frozen=True)
class Placement:
    """Where a step ran: the process and the (Ray) node."""

    pid: int
    node: str


@dataclass
class Placed:
    """A step's record with where it ran."""

    record: PreparedTarget | PredictedModel | TargetResult
    placement: Placement


def prepare_target(target: Target, engines: Sequence[MsaEngine], cache: StepCache,
                   settings: MsaConfig) -> tuple[PreparedTarget, FeatureDict]:
    """Alignments, their depths and the features of one target (each from the store when it has them)."""
    start = time.time()
    plans = next(((engine, steps) for engine in engines if (steps := engine.plan(target))), None)
    if plans is None:
        raise FileNotFoundError(f"target '{target.id}': no precomputed MSA under {settings.precomputed_dir}")
    engine, steps = plans
    if engine.stores_results:
        alignments = [cache.alignment(step.key, step.compute) for step in steps]
    else:
        alignments = [step.compute() for step in steps]
    searched = time.time()
    key = features_key(target.sequence, [step.key for step in steps], settings.deduplicate)
    features = cache.features(key, lambda: build_features(target.sequence, QUERY_NAME, alignments,
                                                          settings.deduplicate))
    prepared = PreparedTarget(
        alignments=alignments, msa_source=engine.name,
        msa_depths={a.database: a.depth for a in alignments}, feature_msa_depth=msa_depth(features),
        features_key=key, computed=cache.take_counts(),
        spans={"msa": (start, searched), "features": (searched, time.time())})
    return prepared, features


def predict_target(prepared: PreparedTarget, features: FeatureDict, model_name: str, model: Callable[[], Model],
                   cache: StepCache, settings: ModelConfig) -> PredictedModel:
    """One model's prediction, padded to the target's bucket; ``model()`` gives the resident model
    (loaded on first use, so a prediction found in the store loads nothing)."""
    from foldflow.models.compile_stats import measure_compiles

    start = time.time()
    bucket = settings.bucket_for(int(features["seq_length"][0]))
    loaded: list[Model] = []

    def compute() -> Prediction:
        loaded.append(model())
        return loaded[0].predict(features, settings.seed_for(model_name), bucket)

    key = prediction_key(prepared.features_key, model_name, model_class(model_name).version, settings, bucket)
    with measure_compiles() as compiles:
        prediction = cache.prediction(key, compute)
    load_seconds = loaded[0].take_load_seconds() if loaded else 0.0
    return PredictedModel(prediction, bucket, compiles, load_seconds, cache.take_counts(), (start, time.time()))


def _seconds(spans: dict[str, Span]) -> dict[str, float]:
    return {stage: end - start for stage, (start, end) in spans.items()}


def _model_span(predicted: Sequence[PredictedModel]) -> Span:
    return min(p.span[0] for p in predicted), max(p.span[1] for p in predicted)


def write_outputs(target: Target, prepared: Placed, predicted: Sequence[Placed], out_dir: Path,
                  config: RunConfig, attempts: int) -> TargetResult:
    """Write the target's folder (AlphaFold's layout) and return its summary record."""
    start = time.time()
    ready: PreparedTarget = prepared.record
    models: list[PredictedModel] = [p.record for p in predicted]
    predictions = [m.prediction for m in models]
    spans = {**ready.spans, "model": _model_span(models)}
    compiles = CompileStats()
    for m in models:
        compiles.add(m.compiles)
    load_seconds = sum(m.params_load_seconds for m in models)
    model_timings = {k: v for p in predictions for k, v in p.timings.items()}
    timings = {**_seconds(spans), **model_timings,
               "xla_compile": compiles.seconds, "params_load": load_seconds}
    folder = write_target(out_dir, target.id, [a.with_query_name(target.id) for a in ready.alignments],
                          predictions, timings, config.model.uses_random_params, config.plots)
    best = max(predictions, key=lambda p: p.ranking_confidence)
    spans["output"] = (start, time.time())
    computed = sum((Counter(c) for c in (ready.computed, *(m.computed for m in models))), Counter())
    return TargetResult(
        target_id=target.id, length=target.length, status="ok",
        science=ScienceResult(
            sequence_hash=target.sequence_hash, msa_source=ready.msa_source, msa_depth=ready.feature_msa_depth,
            model=best.model_name, mean_plddt=best.mean_plddt, ptm=best.ptm, bucket=models[0].bucket,
            preset=config.model.effective_preset, recycles=best.recycles, msa_clusters=best.msa_clusters,
            extra_msa_rows=best.extra_msa_rows, msa_depths=ready.msa_depths,
            seeds={p.model_name: p.seed for p in predictions}),
        observed=RunObservations(
            msa_searches=computed.get("msa", 0), model_calls=computed.get("prediction", 0), cached=not computed,
            attempts=attempts, xla_compiles=compiles.compiles, xla_cache_hits=compiles.cache_hits,
            xla_compile_seconds=compiles.seconds, params_load_seconds=load_seconds,
            model_worker=predicted[0].placement.pid, msa_node=prepared.placement.node,
            model_node=predicted[0].placement.node, output_dir=str(folder),
            timings=_seconds(spans), stage_spans=spans))


def failed_result(target: Target, error: str, prepared: Placed | None, attempts: int,
                  status: str = "failed") -> TargetResult:
    """The record of a target that did not finish, with what is known of it."""
    ready: PreparedTarget | None = prepared.record if prepared else None
    return TargetResult(
        target_id=target.id, length=target.length, status=status, error=error,
        science=ScienceResult(sequence_hash=target.sequence_hash,
                              msa_source=ready.msa_source if ready else None,
                              msa_depths=ready.msa_depths if ready else {}),
        observed=RunObservations(attempts=attempts, msa_searches=(ready.computed.get("msa", 0) if ready else 0),
                                 timings=_seconds(ready.spans) if ready else {},
                                 stage_spans=dict(ready.spans) if ready else {}))

