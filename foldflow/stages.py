"""The per-target workflow as plain functions: no Ray, every dependency an argument.

* :func:`align_chain` and :func:`chain_templates`: one distinct chain's
  alignments (from the engines, through the store) and templates;
* :func:`target_features`: the features of the target (monomer or complex);
* :func:`predict_target`: one prediction (model and seed), padded to the
  target's length bucket, with what XLA compiled and the parameters' load time;
* :func:`relax_target`: Amber relaxation of the best (or every) prediction;
* :func:`write_outputs` / :func:`failed_result`: the target's folder and its
  :class:`~foldflow.results.TargetResult`.

The step functions of :mod:`foldflow.flow.workers` call them, in Ray actors or in this process.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from foldflow.config import ModelConfig, MsaConfig, RelaxConfig, RunConfig, TemplateConfig, runner_model
from foldflow.features import FeatureDict, build_features, msa_depth
from foldflow.models import model_class
from foldflow.models.base import CompileStats, Model, Prediction
from foldflow.models.predictions import seed_for
from foldflow.alignment import QUERY_NAME, Alignment
from foldflow.msa.engine import MsaEngine
from foldflow.outputs import TargetOutputs, ranked_names, to_protein, write_target, written_with
from foldflow.relax import Relaxed
from foldflow.results import RunObservations, ScienceResult, TargetResult
from foldflow.steps import StepCache, features_key, outputs_key, prediction_key, relax_key, templates_key
from foldflow.targets import Target
from foldflow.templates import TemplateSearch

Span = tuple[float, float]  # epoch seconds: start, end


@dataclass
class ChainAlignments:
    """One distinct chain's alignments: every database's, or the files given for the chain."""

    source: str  # the engine(s) that gave them ("pyhmmer", "precomputed", ...)
    alignments: list[tuple[str, Alignment]]  # (store key, alignment)
    computed: dict[str, int]  # step kind -> results computed (not found in the store)
    span: Span


@dataclass
class ChainTemplates:
    """One distinct chain's template search (from its uniref90 alignment); its features travel separately."""

    key: str | None  # None: the chain has no uniref90 Stockholm alignment to search with
    hits: str  # hmmsearch Stockholm or hhsearch .hhr
    found: int
    hits_file: str  # AlphaFold's name for the hits: pdb_hits.sto or pdb_hits.hhr
    computed: dict[str, int]
    span: Span


@dataclass
class TargetFeatures:
    """What is known of a target's features; the arrays travel separately (:class:`Features`)."""

    key: str
    msa_depth: int  # rows of the feature MSA
    templates: int  # templates the models that use templates see (at most 4 per chain)
    computed: dict[str, int]
    span: Span


@dataclass
class Features:
    """A target's features and their store key: all a prediction takes (by reference, on Ray)."""

    key: str
    arrays: FeatureDict


@dataclass
class PredictedModel:
    """One prediction (model and seed) for one target, and what producing it cost."""

    name: str  # AlphaFold's prediction name: <model>_pred_<i>
    key: str  # the prediction's store key
    prediction: Prediction
    bucket: int  # length the features were padded to
    compiles: CompileStats
    params_load_seconds: float  # parameters loaded for this call (0 when resident already)
    computed: dict[str, int]
    span: Span


@dataclass
class RelaxedTarget:
    """Amber relaxation of a target's chosen predictions (best or all), by prediction name."""

    relaxed: dict[str, Relaxed]
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

    record: ChainAlignments | ChainTemplates | TargetFeatures | PredictedModel | RelaxedTarget | TargetResult
    placement: Placement
    seconds: float = 0.0  # the worker's time on it
    shared: bool = False  # computed for another target in flight with the same chain (its counts are not ours)


# AlphaFold's templates per chain that reach the model (alphafold.data.feature_processing.MAX_TEMPLATES;
# the monomer configs' max_templates).
MODEL_TEMPLATES = 4


def align_chain(chain: Target, pairing: bool, engines: Sequence[MsaEngine], cache: StepCache) -> ChainAlignments:
    """One chain's alignments: the files given for it when an engine that reads given files has them, else
    every search engine's databases (each search through the store). With ``pairing`` (a heteromer's chain)
    the UniProt alignment for species pairing too."""
    start = time.time()
    for engine in (e for e in engines if not e.stores_results):
        if steps := engine.plan(chain, pairing):
            return ChainAlignments(engine.name, [(step.key, step.compute()) for step in steps], {},
                                   (start, time.time()))
    planned = [(engine.name, step) for engine in engines if engine.stores_results
               for step in engine.plan(chain, pairing)]
    if not planned:
        raise FileNotFoundError(f"target '{chain.id}': no precomputed MSA")
    alignments = [(step.key, cache.alignment(step.key, step.compute)) for _, step in planned]
    return ChainAlignments("+".join(sorted({name for name, _ in planned})), alignments, cache.take_counts(),
                           (start, time.time()))


def run_chains(targets: Sequence[Target]) -> list[tuple[str, bool]]:
    """Each distinct chain of a batch in order, with whether it is searched for pairing (a heteromer's
    chain): what an engine that batches queries searches ahead of time."""
    chains: dict[str, bool] = {}
    for target in targets:
        for sequence in target.chains:
            chains[sequence] = chains.get(sequence, False) or target.pairing
    return list(chains.items())


def chain_templates(sequence: str, alignments: ChainAlignments, search: TemplateSearch, cache: StepCache,
                    settings: TemplateConfig) -> tuple[ChainTemplates, FeatureDict | None]:
    """The chain's templates from its uniref90 alignment, as AlphaFold 2.3 searches them, and their
    features (None when the chain has no uniref90 Stockholm alignment to build the HMM from)."""
    start = time.time()
    uniref90 = next(((key, a) for key, a in alignments.alignments if a.database == "uniref90" and a.format == "sto"),
                    None)
    if uniref90 is None:
        return ChainTemplates(None, "", 0, search.hits_file, {}, (start, time.time())), None
    key = templates_key(uniref90[0], settings, search.engine, search.version)

    def compute() -> dict:
        hits = search.search(uniref90[1].text)
        features, found = search.featurise(sequence, hits)
        return {**features, "hits_sto": np.array(hits), "templates_found": np.array(found)}

    arrays = dict(cache.arrays("templates", key, compute))
    hits, found = str(arrays.pop("hits_sto")), int(arrays.pop("templates_found"))
    return ChainTemplates(key, hits, found, search.hits_file, cache.take_counts(), (start, time.time())), arrays


def target_features(target: Target, alignments: Sequence[ChainAlignments], templates: Sequence[ChainTemplates],
                    template_features: Sequence[FeatureDict | None], cache: StepCache,
                    settings: MsaConfig) -> tuple[TargetFeatures, Features]:
    """The target's features (monomer or complex) from its distinct chains' alignments and templates (in
    :attr:`Target.distinct_chains` order; no templates when the search is off), from the store when it has them."""
    start = time.time()
    sequences = list(target.distinct_chains.values())
    found = dict(zip(sequences, alignments))
    chain_templates_ = dict(zip(sequences, zip(templates, template_features)))
    alignment_keys = [key for a in alignments for key, _ in a.alignments]
    key = features_key(target.sequence, alignment_keys, settings.deduplicate, [t.key for t in templates if t.key])

    def monomer_alignments(sequence: str) -> list[Alignment]:
        return [a for _, a in found[sequence].alignments if a.database != "uniprot"]

    def template_arrays(sequence: str) -> FeatureDict | None:
        return chain_templates_[sequence][1] if sequence in chain_templates_ else None

    def build() -> FeatureDict:
        if not target.is_complex:
            return build_features(target.sequence, QUERY_NAME, monomer_alignments(target.sequence),
                                  settings.deduplicate, template_arrays(target.sequence))
        from foldflow.complex_features import ChainInput, build_complex_features

        return build_complex_features([
            ChainInput(sequence, QUERY_NAME, monomer_alignments(sequence),
                       next((a for _, a in found[sequence].alignments if a.database == "uniprot"), None),
                       template_arrays(sequence))
            for sequence in target.chains], settings.deduplicate)

    features = cache.features(key, build)
    seen = sum(min(chain_templates_[s][0].found, MODEL_TEMPLATES) for s in target.chains if s in chain_templates_)
    return (TargetFeatures(key, msa_depth(features), seen, cache.take_counts(), (start, time.time())),
            Features(key, features))


def predict_target(target: Target, features: Features, runner: str, model: Callable[[], Model], cache: StepCache,
                   settings: ModelConfig) -> PredictedModel:
    """One prediction (``<model>_pred_<i>``), padded to the target's bucket; ``model()`` gives the resident
    model (loaded on first use, so a prediction found in the store loads nothing)."""
    from foldflow.models.compile_stats import measure_compiles

    start = time.time()
    model_name = runner_model(runner)
    seed = seed_for(settings, runner, target.is_complex)
    bucket = settings.bucket_for(target.length)
    loaded: list[Model] = []

    def compute() -> Prediction:
        loaded.append(model())
        return loaded[0].predict(features.arrays, seed, bucket)

    key = prediction_key(features.key, model_name, model_class(model_name).version, settings, bucket, seed)
    with measure_compiles() as compiles:
        prediction = cache.prediction(key, compute)
    load_seconds = loaded[0].take_load_seconds() if loaded else 0.0
    return PredictedModel(runner, key, prediction, bucket, compiles, load_seconds, cache.take_counts(),
                          (start, time.time()))


def ranked(predicted: Sequence[PredictedModel]) -> list[PredictedModel]:
    """Best first, in the order run_alphafold ranks them (:func:`foldflow.outputs.ranked_names`)."""
    by_name = {p.name: p for p in predicted}
    return [by_name[name] for name in ranked_names({p.name: p.prediction for p in predicted})]


def relax_target(predicted: Sequence[PredictedModel], cache: StepCache, settings: RelaxConfig) -> RelaxedTarget:
    """Amber-relax the best-ranked prediction (or all), as run_alphafold's --models_to_relax, with ``settings``
    as they run (:meth:`RunConfig.effective_relax`)."""
    from foldflow.relax import RelaxSettings, openmm_version, relax_protein

    start = time.time()
    order = ranked(predicted)
    chosen = order[:1] if settings.models_to_relax == "best" else order
    relax_settings = RelaxSettings(use_gpu=settings.use_gpu, **settings.minimisation())
    relaxed = {}
    for p in chosen:
        key = relax_key(p.key, relax_settings.key_settings(), openmm_version())
        relaxed[p.name] = Relaxed.from_arrays(cache.arrays(
            "relax", key, lambda p=p: relax_protein(to_protein(p.prediction), relax_settings).to_arrays()))
    return RelaxedTarget(relaxed, cache.take_counts(), (start, time.time()))


def _seconds(spans: dict[str, Span]) -> dict[str, float]:
    return {stage: end - start for stage, (start, end) in spans.items()}


def _span(spans: Sequence[Span]) -> Span:
    return min(s[0] for s in spans), max(s[1] for s in spans)


@dataclass
class Preparation:
    """What a target's alignment, template and features records say, for its folder and summary."""

    msas: dict[str, list[Alignment]]  # chain id -> its alignments, for each distinct chain
    msa_source: str
    msa_depths: dict[str, int]  # database (a complex: "<chain>_<database>") -> rows
    template_hits: dict[str, str]  # chain id -> template hits
    template_hits_file: str
    spans: dict[str, Span]

    @classmethod
    def of(cls, target: Target, alignments: Mapping[str, Placed], templates: Mapping[str, Placed],
           features: Placed | None) -> Preparation:
        """From the records so far, by chain id (a failed target may lack some)."""
        found: dict[str, ChainAlignments] = {chain: p.record for chain, p in alignments.items()}
        searched: dict[str, ChainTemplates] = {chain: p.record for chain, p in templates.items()}
        spans = {stage: _span([p.record.span for p in records.values()])
                 for stage, records in (("msa", alignments), ("templates", templates)) if records}
        return cls(msas={chain: [a for _, a in found[chain].alignments] for chain in found},
                   msa_source="+".join(sorted({a.source for a in found.values()})),
                   msa_depths={(f"{chain}_{a.database}" if target.is_complex else a.database): a.depth
                               for chain in found for _, a in found[chain].alignments},
                   template_hits={chain: t.hits for chain, t in searched.items() if t.key is not None},
                   template_hits_file=next((t.hits_file for t in searched.values()), ""),
                   spans={**spans, **({"features": features.record.span} if features else {})})


def computed_counts(records: Sequence[Placed]) -> Counter:
    """What these records computed (not found in the store), by step kind; a result shared from another
    target's step counts there."""
    return sum((Counter(p.record.computed) for p in records if not p.shared), Counter())


def alphafold_timings(prepared: Preparation, predicted: Sequence[PredictedModel],
                      relaxed: RelaxedTarget | None) -> dict[str, float]:
    """timings.json as run_alphafold writes it: features, then per prediction process_features_<name>
    and predict_and_compile_<name>, then relax_<name>."""
    timings = {"features": prepared.spans["features"][1] - prepared.spans["msa"][0]}
    for p in predicted:
        model = p.prediction.model_name
        for key, seconds in p.prediction.timings.items():
            stage = key.removesuffix(f"_{model}")
            timings[f"{'process_features' if stage == 'process_features' else 'predict_and_compile'}_{p.name}"] = seconds
    for name, r in (relaxed.relaxed.items() if relaxed else ()):
        timings[f"relax_{name}"] = r.seconds
    return timings


def write_outputs(target: Target, alignments: Mapping[str, Placed], templates: Mapping[str, Placed],
                  features: Placed, predicted: Sequence[Placed], relaxed: Placed | None, out_dir: Path, config: RunConfig,
                  attempts: int) -> TargetResult:
    """Write the target's folder (AlphaFold's layout) from its steps' records and return its summary record."""
    start = time.time()
    ready = Preparation.of(target, alignments, templates, features)
    built: TargetFeatures = features.record
    models: list[PredictedModel] = [p.record for p in predicted]
    relax: RelaxedTarget | None = relaxed.record if relaxed else None
    spans = {**ready.spans, "model": _span([m.span for m in models]), **({"relax": relax.span} if relax else {})}
    compiles = CompileStats()
    for m in models:
        compiles.add(m.compiles)
    load_seconds = sum(m.params_load_seconds for m in models)
    key = outputs_key(target.id, [built.key, *(m.key for m in models)],
                      config.effective_relax().model_dump(mode="json") if relax else None,
                      list(relax.relaxed) if relax else [], config.plots, config.model.uses_random_params)
    folder = out_dir / target.id
    written = not written_with(folder, key)
    if written:
        msas = {chain: [a.with_query_name(target.id) for a in alignments] for chain, alignments in ready.msas.items()}
        write_target(out_dir, target.id, TargetOutputs(
            msas=msas, template_hits=ready.template_hits, template_hits_file=ready.template_hits_file,
            predictions={m.name: m.prediction for m in models},
            relaxed=relax.relaxed if relax else {}, relax_requested=relax is not None,
            timings=alphafold_timings(ready, models, relax), multimer=target.is_complex),
            config.model.uses_random_params, config.plots, key)
    best = ranked(models)[0]
    spans["output"] = (start, time.time())
    computed = computed_counts([*alignments.values(), *templates.values(), features, *predicted,
                                *((relaxed,) if relaxed else ())])
    best_relaxed = relax.relaxed.get(best.name) if relax else None
    prediction = best.prediction
    return TargetResult(
        target_id=target.id, length=target.length, status="ok",
        science=ScienceResult(
            sequence_hash=target.sequence_hash, chains=len(target.chains), msa_source=ready.msa_source,
            msa_depth=built.msa_depth, templates=built.templates,
            model=best.name, ranking_confidence=prediction.ranking_confidence,
            mean_plddt=prediction.mean_plddt, ptm=prediction.ptm, iptm=prediction.iptm,
            relaxed=best_relaxed is not None,
            relax_violations=best_relaxed.violations if best_relaxed else None,
            relax_rmsd=best_relaxed.rmsd_to_input if best_relaxed else None,
            bucket=models[0].bucket, preset=config.model.effective_preset, recycles=prediction.recycles,
            msa_clusters=prediction.msa_clusters, extra_msa_rows=prediction.extra_msa_rows,
            msa_depths=ready.msa_depths, seeds={m.name: m.prediction.seed for m in models}),
        observed=RunObservations(
            msa_searches=computed.get("msa", 0), template_searches=computed.get("templates", 0),
            model_calls=computed.get("prediction", 0),
            relaxations=computed.get("relax", 0), cached=not computed,
            attempts=attempts, xla_compiles=compiles.compiles, xla_cache_hits=compiles.cache_hits,
            xla_compile_seconds=compiles.seconds, params_load_seconds=load_seconds,
            model_worker=predicted[0].placement.pid, msa_node=features.placement.node,
            model_node=predicted[0].placement.node, output_dir=str(folder), outputs_written=written,
            plots=sorted(p.name for p in folder.glob("*.png")), timings=_seconds(spans), stage_spans=spans))


def failed_result(target: Target, error: str, alignments: Mapping[str, Placed], attempts: int,
                  status: str = "failed") -> TargetResult:
    """The record of a target that did not finish, with what is known of its alignments (by chain id)."""
    ready = Preparation.of(target, alignments, {}, None) if alignments else None
    return TargetResult(
        target_id=target.id, length=target.length, status=status, error=error,
        science=ScienceResult(sequence_hash=target.sequence_hash, chains=len(target.chains),
                              msa_source=ready.msa_source if ready else None,
                              msa_depths=ready.msa_depths if ready else {}),
        observed=RunObservations(attempts=attempts, msa_searches=computed_counts(list(alignments.values())).get("msa", 0),
                                 timings=_seconds(ready.spans) if ready else {},
                                 stage_spans=dict(ready.spans) if ready else {}))
