"""The per-target workflow as plain functions: no Ray, every dependency an argument.

* :func:`prepare_target`: alignments of each distinct chain (from the engines,
  through the store), templates, depth statistics and features (monomer or
  complex);
* :func:`predict_target`: one prediction (model and seed), padded to the
  target's length bucket, with what XLA compiled and the parameters' load time;
* :func:`relax_target`: Amber relaxation of the best (or every) prediction;
* :func:`write_outputs` / :func:`failed_result`: the target's folder and its
  :class:`~foldflow.results.TargetResult`.

The stage workers of :mod:`foldflow.flow.workers` call them, in Ray actors or in this process.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from foldflow.config import ModelConfig, MsaConfig, RelaxConfig, RunConfig, TemplateConfig, runner_model
from foldflow.features import FeatureDict, build_features, msa_depth
from foldflow.models import model_class
from foldflow.models.base import CompileStats, Model, Prediction
from foldflow.alignment import QUERY_NAME, Alignment
from foldflow.msa.engine import MsaEngine
from foldflow.outputs import TargetOutputs, ranked_names, to_protein, write_target
from foldflow.relax import Relaxed
from foldflow.results import RunObservations, ScienceResult, TargetResult
from foldflow.scoring import chain_mean_plddt, interface_scores
from foldflow.steps import StepCache, features_key, prediction_key, relax_key, templates_key
from foldflow.targets import Target, chain_id
from foldflow.templates import TemplateSearch

Span = tuple[float, float]  # epoch seconds: start, end


@dataclass
class PreparedTarget:
    """Alignments and templates and what is known about them; the features travel separately (large)."""

    msas: dict[str, list[Alignment]]  # chain id -> its alignments, for each distinct chain (first occurrence)
    msa_source: str  # the engine that gave the alignments ("pyhmmer", "precomputed", ...)
    msa_depths: dict[str, int]  # database (a complex: "<chain>_<database>") -> rows
    feature_msa_depth: int
    features_key: str
    template_hits: dict[str, str]  # chain id -> template hits (hmmsearch Stockholm or hhsearch .hhr)
    templates: int  # templates the models that use templates see (at most 4 per chain)
    template_hits_file: str  # AlphaFold's name for the hits: pdb_hits.sto or pdb_hits.hhr
    computed: dict[str, int]  # step kind -> results computed (not found in the store)
    spans: dict[str, Span]


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

    record: PreparedTarget | PredictedModel | RelaxedTarget | TargetResult
    placement: Placement


# AlphaFold's templates per chain that reach the model (alphafold.data.feature_processing.MAX_TEMPLATES;
# the monomer configs' max_templates).
MODEL_TEMPLATES = 4


def _chain_alignments(chain: Target, engines: Sequence[MsaEngine], cache: StepCache,
                      pairing: bool) -> tuple[str, list[tuple[str, Alignment]]]:
    """(engine names, [(key, alignment)]) for one chain: the files given for it when an engine that reads
    given files has them, else every search engine's databases (each search through the store)."""
    for engine in (e for e in engines if not e.stores_results):
        if steps := engine.plan(chain, pairing):
            return engine.name, [(step.key, step.compute()) for step in steps]
    planned = [(engine.name, step) for engine in engines if engine.stores_results
               for step in engine.plan(chain, pairing)]
    if not planned:
        raise FileNotFoundError(f"target '{chain.id}': no precomputed MSA")
    names = "+".join(sorted({name for name, _ in planned}))
    return names, [(step.key, cache.alignment(step.key, step.compute)) for _, step in planned]


def run_chains(targets: Sequence[Target]) -> list[tuple[str, bool]]:
    """Each distinct chain of a batch in order, with whether it is searched for pairing (a heteromer's
    chain): what an engine that batches queries searches ahead of time."""
    chains: dict[str, bool] = {}
    for target in targets:
        pairing = len(set(target.chains)) > 1
        for sequence in target.chains:
            chains[sequence] = chains.get(sequence, False) or pairing
    return list(chains.items())


def _chain_templates(sequence: str, alignments: list[tuple[str, Alignment]], search: TemplateSearch,
                     cache: StepCache, settings: TemplateConfig) -> tuple[str, FeatureDict, str, int] | None:
    """(key, template features, hits, templates found) from the chain's uniref90 alignment, as AlphaFold
    2.3 searches them; None when the chain has no uniref90 Stockholm alignment to build the HMM from."""
    uniref90 = next(((key, a) for key, a in alignments if a.database == "uniref90" and a.format == "sto"), None)
    if uniref90 is None:
        return None
    key = templates_key(uniref90[0], settings, search.engine, search.version)

    def compute() -> dict:
        hits = search.search(uniref90[1].text)
        features, found = search.featurise(sequence, hits)
        return {**features, "hits_sto": np.array(hits), "templates_found": np.array(found)}

    arrays = dict(cache.arrays("templates", key, compute))
    hits, found = str(arrays.pop("hits_sto")), int(arrays.pop("templates_found"))
    return key, arrays, hits, found


def prepare_target(target: Target, engines: Sequence[MsaEngine], templates: TemplateSearch | None,
                   cache: StepCache, settings: MsaConfig) -> tuple[PreparedTarget, Features]:
    """Alignments and templates of each distinct chain, and the features of the target (monomer or
    complex), each from the store when it has them. A homomer's chain is searched once."""
    start = time.time()
    distinct: dict[str, str] = {}  # sequence -> the chain id of its first occurrence
    for index, sequence in enumerate(target.chains):
        distinct.setdefault(sequence, chain_id(index))
    pairing = len(distinct) > 1  # AlphaFold-Multimer pairs MSAs by species only for heteromers
    found: dict[str, list[tuple[str, Alignment]]] = {}
    sources = set()
    for sequence, chain in distinct.items():
        name = f"{target.id}/{chain}" if target.is_complex else target.id
        source, found[sequence] = _chain_alignments(Target(name, target.description, sequence, target.source),
                                                    engines, cache, pairing)
        sources.add(source)
    searched = time.time()
    chain_templates = {sequence: _chain_templates(sequence, found[sequence], templates, cache, settings.templates)
                       if templates is not None else None for sequence in distinct}
    templated = time.time()
    alignment_keys = [key for sequence in distinct for key, _ in found[sequence]]
    template_keys = [t[0] for t in chain_templates.values() if t is not None]
    key = features_key(target.sequence, alignment_keys, settings.deduplicate, template_keys)

    def monomer_alignments(sequence: str) -> list[Alignment]:
        return [a for _, a in found[sequence] if a.database != "uniprot"]

    def template_features(sequence: str) -> FeatureDict | None:
        return chain_templates[sequence][1] if chain_templates[sequence] is not None else None

    def build() -> FeatureDict:
        if not target.is_complex:
            return build_features(target.sequence, QUERY_NAME, monomer_alignments(target.sequence),
                                  settings.deduplicate, template_features(target.sequence))
        from foldflow.complex_features import ChainInput, build_complex_features

        return build_complex_features([
            ChainInput(sequence, QUERY_NAME, monomer_alignments(sequence),
                       next((a for _, a in found[sequence] if a.database == "uniprot"), None),
                       template_features(sequence))
            for sequence in target.chains], settings.deduplicate)

    features = cache.features(key, build)
    depths = {(f"{distinct[sequence]}_{a.database}" if target.is_complex else a.database): a.depth
              for sequence in distinct for _, a in found[sequence]}
    prepared = PreparedTarget(
        msas={distinct[sequence]: [a for _, a in found[sequence]] for sequence in distinct},
        msa_source="+".join(sorted(sources)), msa_depths=depths, feature_msa_depth=msa_depth(features),
        features_key=key,
        template_hits={distinct[s]: t[2] for s, t in chain_templates.items() if t is not None},
        templates=sum(min(t[3], MODEL_TEMPLATES) for s in target.chains
                      if (t := chain_templates[s]) is not None),
        template_hits_file=templates.hits_file if templates is not None else "",
        computed=cache.take_counts(),
        spans={"msa": (start, searched), "templates": (searched, templated), "features": (templated, time.time())})
    return prepared, Features(key, features)


def predict_target(target: Target, features: Features, runner: str, model: Callable[[], Model], cache: StepCache,
                   settings: ModelConfig) -> PredictedModel:
    """One prediction (``<model>_pred_<i>``), padded to the target's bucket; ``model()`` gives the resident
    model (loaded on first use, so a prediction found in the store loads nothing)."""
    from foldflow.models.compile_stats import measure_compiles

    start = time.time()
    model_name = runner_model(runner)
    seed = settings.seed_for(runner, target.is_complex)
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


def _model_span(predicted: Sequence[PredictedModel]) -> Span:
    return min(p.span[0] for p in predicted), max(p.span[1] for p in predicted)


def alphafold_timings(prepared: PreparedTarget, predicted: Sequence[PredictedModel],
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


def write_outputs(target: Target, prepared: Placed, predicted: Sequence[Placed], relaxed: Placed | None,
                  out_dir: Path, config: RunConfig, attempts: int) -> TargetResult:
    """Write the target's folder (AlphaFold's layout) and return its summary record."""
    start = time.time()
    ready: PreparedTarget = prepared.record
    models: list[PredictedModel] = [p.record for p in predicted]
    relax: RelaxedTarget | None = relaxed.record if relaxed else None
    spans = {**ready.spans, "model": _model_span(models), **({"relax": relax.span} if relax else {})}
    compiles = CompileStats()
    for m in models:
        compiles.add(m.compiles)
    load_seconds = sum(m.params_load_seconds for m in models)
    msas = {chain: [a.with_query_name(target.id) for a in alignments] for chain, alignments in ready.msas.items()}
    folder = write_target(out_dir, target.id, TargetOutputs(
        msas=msas, template_hits=ready.template_hits, template_hits_file=ready.template_hits_file,
        predictions={m.name: m.prediction for m in models},
        relaxed=relax.relaxed if relax else {}, relax_requested=relax is not None,
        timings=alphafold_timings(ready, models, relax), multimer=target.is_complex),
        config.model.uses_random_params, config.plots)
    best = ranked(models)[0]
    spans["output"] = (start, time.time())
    counts = (ready.computed, *(m.computed for m in models), *((relax.computed,) if relax else ()))
    computed = sum((Counter(c) for c in counts), Counter())
    best_relaxed = relax.relaxed.get(best.name) if relax else None
    prediction = best.prediction
    interface = interface_scores(prediction)
    return TargetResult(
        target_id=target.id, length=target.length, status="ok",
        science=ScienceResult(
            sequence_hash=target.sequence_hash, chains=len(target.chains), msa_source=ready.msa_source,
            msa_depth=ready.feature_msa_depth, templates=ready.templates,
            model=best.name, ranking_confidence=prediction.ranking_confidence,
            mean_plddt=prediction.mean_plddt, ptm=prediction.ptm, iptm=prediction.iptm,
            chain_plddt=chain_mean_plddt(prediction),
            pdockq=interface.pdockq if interface else None,
            interface_plddt=interface.interface_plddt if interface else None,
            interface_contacts=interface.interface_contacts if interface else None,
            interface_pae=interface.mean_interface_pae if interface else None,
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
            model_worker=predicted[0].placement.pid, msa_node=prepared.placement.node,
            model_node=predicted[0].placement.node, output_dir=str(folder),
            plots=sorted(p.name for p in folder.glob("*.png")), timings=_seconds(spans), stage_spans=spans))


def failed_result(target: Target, error: str, prepared: Placed | None, attempts: int,
                  status: str = "failed") -> TargetResult:
    """The record of a target that did not finish, with what is known of it."""
    ready: PreparedTarget | None = prepared.record if prepared else None
    return TargetResult(
        target_id=target.id, length=target.length, status=status, error=error,
        science=ScienceResult(sequence_hash=target.sequence_hash, chains=len(target.chains),
                              msa_source=ready.msa_source if ready else None,
                              msa_depths=ready.msa_depths if ready else {}),
        observed=RunObservations(attempts=attempts, msa_searches=(ready.computed.get("msa", 0) if ready else 0),
                                 timings=_seconds(ready.spans) if ready else {},
                                 stage_spans=dict(ready.spans) if ready else {}))

