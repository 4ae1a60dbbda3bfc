"""The Python API: ``foldflow.predict(...)`` and the run commands, as a notebook or the CLI calls them."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from foldflow.config import (RunConfig, default_config, dump_config, load_config,
                             validate_config)
from foldflow.errors import ConfigError, FoldflowError, RunExistsError, SetupError
from foldflow.models.predictions import is_multimer_model, models_for, models_needed, runners_for, seed_for
from foldflow.options import overrides_from_keywords
from foldflow.outputs import RANDOM_PARAMS_WARNING, write_summary
from foldflow.results import TargetResult
from foldflow.runs import (RunBook, RunManifest, RunNotFoundError, check_run_id, new_run_id,
                           unstarted_status)
from foldflow.store import Store
from foldflow.targets import InvalidTarget, TargetBatch, load_targets

log = logging.getLogger("foldflow")


class InvalidInputError(FoldflowError, ValueError):
    """Some targets are invalid and ``skip_invalid`` is off; nothing was run."""

    def __init__(self, invalid: list[InvalidTarget]):
        self.invalid = invalid
        super().__init__("\n".join(bad.message() for bad in invalid))


def without_models(batch: TargetBatch, config: RunConfig) -> TargetBatch:
    """The batch with targets no configured model can predict (a complex without a multimer model,
    a monomer without a monomer model) moved to the invalid ones."""
    kept, invalid = [], list(batch.invalid)
    for target in batch.targets:
        if models_for(config.model, target.is_complex):
            kept.append(target)
            continue
        kind = (f"a complex of {len(target.chains)} chains but no multimer model" if target.is_complex
                else "a monomer but no monomer model")
        invalid.append(InvalidTarget(target.id, target.description, target.source,
                                     f"{kind} in model.names (e.g. --models {'multimer' if target.is_complex else 'monomer'})"))
    return TargetBatch(kept, invalid)


def check_local_setup(config: RunConfig, models: list[str] | None = None) -> None:
    """Fail before anything starts when a local run's parameter files or databases are missing.

    ``models``: the models the batch needs (default: every configured one).

    Ray runs on a cluster (``pipeline.cluster_address()``) are not checked here: their paths
    need to exist on the worker nodes, not on the machine that starts the run.
    """
    from foldflow.models import UnknownModelError, model_class
    from foldflow.models.params import ParamsNotFoundError, params_path
    from foldflow.msa.registry import engines_for

    try:
        engines = engines_for(config.msa)
        classes = {name: model_class(name) for name in (config.model.model_names if models is None else models)}
    except (UnknownModelError, ValueError) as error:
        raise SetupError(str(error)) from None
    if config.pipeline.runner == "ray" and config.pipeline.cluster_address() is not None:
        return
    if config.model.params_dir is not None:
        for name in (n for n, kind in classes.items() if kind.reads_params):
            try:
                params_path(config.model.params_dir, name)
            except ParamsNotFoundError as error:
                raise SetupError(f"parameters: {error}") from None
    complexes = any(is_multimer_model(name) for name in classes)
    for engine in engines:
        databases = [db for db in engine.databases() if complexes or db is not config.msa.pairing_database]
        if databases and (problem := engine.tool_problem()):  # (the pairing database: for heteromers only)
            raise SetupError(problem)
        for database in databases:
            if problem := engine.missing(database):
                raise SetupError(problem)
    if config.msa.templates.enabled:
        from foldflow.templates import template_searches

        for search in template_searches(config.msa.templates).values():
            if problem := search.setup_problem():
                raise SetupError(f"templates: {problem} (or run with --no-templates)")


@dataclass
class RunResult:
    """What a run produced: per-target results, the summary table, paths of structures."""

    run_id: str
    out_dir: Path
    results: list[TargetResult]
    table: pa.Table
    random_params: bool
    cancelled: bool = False
    invalid: list[InvalidTarget] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.cancelled and all(r.status == "ok" for r in self.results)

    @property
    def failed(self) -> list[TargetResult]:
        return [r for r in self.results if r.status != "ok"]

    @property
    def structures(self) -> dict[str, Path]:
        """Best-ranked PDB file of each predicted target."""
        return {r.target_id: Path(r.observed.output_dir) / "ranked_0.pdb" for r in self.results if r.status == "ok"}

    @property
    def scores(self) -> dict[str, dict[str, float | None]]:
        return {r.target_id: {"mean_plddt": r.science.mean_plddt, "ptm": r.science.ptm, "iptm": r.science.iptm}
                for r in self.results if r.status == "ok"}

    def to_pandas(self):
        return self.table.to_pandas()


def is_bundled(path: object) -> bool:
    """Whether a database path is foldflow's bundled mini data (test-sized, not AlphaFold's databases)."""
    return "resources/db" in str(path)


def bundled_template_and_pairing_data(config: RunConfig, models: list[str]) -> list[str]:
    """The bundled mini template and pairing data a run of ``models`` would search, in words."""
    templates, pairing = config.msa.templates, config.msa.pairing_database
    return [what for what, used in (
        ("templates from the bundled mini PDB seqres and mmCIF files",
         templates.enabled and (is_bundled(templates.pdb_seqres) or is_bundled(templates.mmcif_dir))),
        ("species pairing with the bundled mini UniProt",
         any(map(is_multimer_model, models)) and pairing is not None and is_bundled(pairing.path)),
    ) if used]


def describe_setup(config: RunConfig, models: list[str] | None = None) -> tuple[str, bool]:
    """The first line a run prints: which models (those the batch needs), parameters and databases it uses; and
    whether it is a warning (random parameters, a preset other than AlphaFold's, or bundled mini data)."""
    models = config.model.model_names if models is None else models
    dbs = ", ".join(f"{db.name}={db.path.name} ({config.msa.engine_of(db)})" for db in config.msa.databases)
    params = "RANDOM parameters (structures are NOT meaningful)" if config.model.uses_random_params \
        else f"parameters from {config.model.params_dir}"
    preset = config.model.effective_preset
    relax = config.effective_relax()
    cut_short = (f", relaxation cut short ({relax.max_iterations} minimisation steps)"
                 if config.relaxes and relax.max_iterations else "")
    settings = ("AlphaFold 2.3's own recycles and MSA depths" if preset == "alphafold"
                else f"FEWER recycles and MSA rows than AlphaFold{cut_short}: not its accuracy")
    bundled_msa = [is_bundled(db.path) for db in config.msa.databases]
    others = bundled_template_and_pairing_data(config, models)
    line = (f"foldflow: {', '.join(models)} with {params}; preset {preset} ({settings}); "
            f"{'bundled mini databases' if all(bundled_msa) else 'databases'}: {dbs}"
            + "".join(f"; {what}" for what in others))
    return line, config.model.uses_random_params or preset != "alphafold" or any(bundled_msa) or bool(others)


def effective_settings_comment(config: RunConfig) -> str:
    """YAML comment lines: each model's recycles and MSA depths and its predictions' seeds as they will run."""
    from foldflow.config import runner_model
    from foldflow.models import model_class

    lines = [f"# preset {config.model.effective_preset}; each model runs with:"]
    for name in config.model.model_names:
        values = model_class(name).effective_settings(name, config.model)
        complex_ = is_multimer_model(name)
        seeds = [seed_for(config.model, r, complex_) for r in runners_for(config.model, complex_)
                 if runner_model(r) == name]
        lines.append(f"#   {name}: " + (", ".join(f"{k} {v}" for k, v in values.items()) or "(no such settings)")
                     + f", seeds {', '.join(map(str, seeds))}")
    return "\n".join(lines) + "\n"


def predict(fasta: str | Path, out: str | Path, config: RunConfig | str | Path | None = None,
            run_id: str | None = None, **overrides) -> RunResult:
    """Predict structures for every record of a FASTA file (or a directory of FASTA files).

    ``config`` is a RunConfig, a YAML path, or None for the bundled demo setup.
    ``overrides`` take the command line's option names, as ``foldflow predict`` means them
    (``relax="none", models="model_1_ptm", num_recycle=1, params="/data/params"``), or set any
    dotted setting (``**{"model.max_msa_clusters": 8}``). Every call is a run with an id
    (``run_id`` or a new one) whose step results and state go to the store, so
    it can be resumed, and so a later run of the same targets computes nothing again.
    """
    config = config if isinstance(config, RunConfig) else load_config(config)
    config = apply_overrides(config, overrides)
    batch = without_models(load_targets(Path(fasta), max_length=config.max_length), config)
    models = models_needed(config.model, {t.is_complex for t in batch.targets})
    line, announce = describe_setup(config, models)
    log.warning(line) if announce else log.info(line)
    check_local_setup(config, models)
    if batch.invalid and not config.skip_invalid:
        raise InvalidInputError(batch.invalid)
    for bad in batch.invalid:
        log.warning("skipping invalid %s", bad.message())

    book = RunBook(Store(config.store))
    run_id = check_run_id(run_id) if run_id else new_run_id()
    if book.exists(run_id):
        raise RunExistsError(f"run '{run_id}' already exists; resume it with `foldflow runs resume {run_id}`")
    out_dir = Path(out).resolve()
    manifest = book.create(run_id, str(Path(fasta).resolve()), str(out_dir), config.model_dump(mode="json"),
                           batch.targets, batch.invalid)
    log.warning("run id: %s (store: %s)", run_id, config.store)
    return _execute(manifest, config, book)


def design(out: str | Path, config: RunConfig | str | Path | None = None, **overrides):
    """Run a design campaign (``config.design``) into ``out``: backbones -> ProteinMPNN -> refold and filter
    -> relaxation -> ``out/designs/*.parquet``. Running it again into the same folder resumes it: designs
    already written are not made again. Returns the run's :class:`~foldflow.pipeline.design.DesignRun`
    (``.parquet``: the folder to read with pandas)."""
    from foldflow.pipeline.design import run_design

    config = config if isinstance(config, RunConfig) else load_config(config)
    config = apply_overrides(config, overrides)
    if config.model.uses_random_params:
        log.warning(f"foldflow design: refolding with {config.design.refold_model} with RANDOM parameters: pLDDT, "
                    "TM-score, RMSD and pass/fail are NOT meaningful; ProteinMPNN uses its real weights")
    missing = [path for path in config.design.backbone_files if not path.is_file()]
    if missing:
        raise SetupError(f"design: no backbone file {missing[0]}")
    return run_design(config, Path(out))


def resume(run_id: str, store: str | None = None) -> RunResult:
    """Finish a run that crashed or was cancelled: finished targets stay, the rest run (from the store)."""
    book = RunBook(Store(store or default_config().store))
    manifest = book.manifest(run_id)
    config = RunConfig.model_validate(manifest.config)
    book.clear_cancel(run_id)
    return _execute(manifest, config, book)


def _execute(manifest: RunManifest, config: RunConfig, book: RunBook) -> RunResult:
    out_dir = Path(manifest.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(effective_settings_comment(config) + dump_config(config))
    if config.pipeline.runner == "in_process":
        from foldflow.flow.local import execute_in_process

        results, cancelled = execute_in_process(manifest, config, book)
    else:
        from foldflow.pipeline.run import execute_run  # the only Ray-importing path

        results, cancelled = execute_run(manifest, config, book)
    invalid = manifest.invalid_objects()
    results += [TargetResult(target_id=bad.id, length=None, status="invalid", error=bad.error) for bad in invalid]
    table = write_summary(out_dir / "summary.parquet", results)
    if config.model.uses_random_params:
        log.warning(RANDOM_PARAMS_WARNING)
    return RunResult(manifest.run_id, out_dir, results, table, config.model.uses_random_params, cancelled, invalid)


def run_status(run_id: str, store: str | None = None, address: str | None = None) -> dict:
    """Where a run stands. A run that is not in the store but was submitted as a Ray job to the cluster at
    ``address`` (a dashboard URL or cluster address; default: RAY_ADDRESS) is described from its job: e.g. a job
    that failed before foldflow started, with the job's last log lines as its error."""
    book = RunBook(Store(store or default_config().store))
    address = address or os.environ.get("RAY_ADDRESS")
    if book.exists(run_id) or not address:
        return book.status(run_id)
    from foldflow.pipeline.jobs import job_state, submission_id  # imports Ray

    not_found = f"run '{run_id}' not found in store {book.store.uri}"
    try:
        job = job_state(address, run_id)
    except Exception as error:  # an unreachable cluster must not hide that the run is not in the store
        raise RunNotFoundError(f"{not_found}; its Ray job could not be looked up on {address}: {error}") from None
    if job is None:
        raise RunNotFoundError(f"{not_found}, nor as a Ray job on {address}")
    state, log_tail = job
    if state in ("FAILED", "STOPPED"):
        return unstarted_status(run_id, "failed",
                                f"Ray job {submission_id(run_id)} {state} before the run started: {log_tail}")
    return unstarted_status(run_id)


def report(run_id: str, store: str | None = None, out: str | Path | None = None) -> Path:
    """Write the run's self-contained HTML report (default ``report.html`` in its output folder)."""
    from foldflow.report import write_report

    status = run_status(run_id, store)
    return write_report(Path(status["out_dir"]), status, Path(out) if out else None)


def list_runs(store: str | None = None) -> list[dict]:
    book = RunBook(Store(store or default_config().store))
    return [book.status(run_id) for run_id in book.run_ids()]


def cancel(run_id: str, store: str | None = None) -> None:
    """Ask a running run to stop: running work stops, finished work stays (resume finishes it)."""
    RunBook(Store(store or default_config().store)).request_cancel(run_id)


def apply_overrides(config: RunConfig, overrides: dict) -> RunConfig:
    """Set command-line option names (``num_recycle``) or dotted fields (``model.num_recycle``) on a copy of
    ``config`` (:func:`foldflow.options.overrides_from_keywords`); None values are ignored."""
    data = config.model_dump()
    for dotted, value in overrides_from_keywords(overrides).items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        if leaf not in node:
            raise ConfigError(f"unknown setting '{dotted}'")
        node[leaf] = value
    return validate_config(data, "overrides")


def submit(fasta: str | Path, out: str | Path, address: str, config: str | Path | None = None,
           run_id: str | None = None, python: str = "python", working_dir: str | Path = ".",
           **overrides) -> tuple[str, str]:
    """Submit a run to a Ray cluster as a Ray job; returns (run id, job id) at once.

    ``address`` is the cluster's dashboard (``http://head:8265``). The job runs
    ``foldflow predict`` with ``python`` in a copy of ``working_dir``; paths are
    as the cluster sees them, and ``overrides`` are those of :func:`predict`
    that have a command-line option (others go in the config file). The run id
    (given or new) is also the job's submission id, so a run is never submitted
    twice; ``run_status(run_id, store)`` follows it.
    """
    from foldflow.options import predict_args
    from foldflow.pipeline.jobs import submit_run  # imports Ray

    run_id = check_run_id(run_id) if run_id else new_run_id()
    args = predict_args(fasta, out, config, overrides)
    return run_id, submit_run(address, run_id, args, Path(working_dir).resolve(), python=python)
