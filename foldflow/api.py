"""The Python API: ``foldflow.predict(...)`` and the run commands, as a notebook or the CLI calls them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from foldflow.config import RunConfig, default_config, dump_config, load_config
from foldflow.outputs import RANDOM_PARAMS_WARNING, TargetResult, write_summary
from foldflow.runs import RunBook, RunManifest, check_run_id, new_run_id
from foldflow.store import Store
from foldflow.targets import InvalidTarget, load_targets

log = logging.getLogger("foldflow")


class InvalidInputError(ValueError):
    """Some targets are invalid and ``skip_invalid`` is off; nothing was run."""

    def __init__(self, invalid: list[InvalidTarget]):
        self.invalid = invalid
        super().__init__("\n".join(bad.message() for bad in invalid))


class SetupError(ValueError):
    """The run's databases or parameter files are missing; nothing was run."""


def check_local_setup(config: RunConfig) -> None:
    """Fail before anything starts when a local run's parameter files or databases are missing.

    Runs on a cluster (``pipeline.address`` set) are not checked here: their paths
    need to exist on the worker nodes, not on the machine that starts the run.
    """
    from foldflow.models.params import ParamsNotFoundError, params_path
    from foldflow.models.simulated import SIMULATED_DEVICE

    if config.pipeline.address is not None:
        return
    if config.model.params_dir is not None:
        for name in (n for n in config.model.names if n != SIMULATED_DEVICE):
            try:
                params_path(config.model.params_dir, name)
            except ParamsNotFoundError as error:
                raise SetupError(f"parameters: {error}") from None
    if not config.msa.require_precomputed:
        for database in config.msa.databases:
            if not database.path.is_file():
                raise SetupError(f"database '{database.name}': no file {database.path}")


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
        return {r.target_id: Path(r.output_dir) / "ranked_0.pdb" for r in self.results if r.status == "ok"}

    @property
    def scores(self) -> dict[str, dict[str, float | None]]:
        return {r.target_id: {"mean_plddt": r.mean_plddt, "ptm": r.ptm}
                for r in self.results if r.status == "ok"}

    def to_pandas(self):
        return self.table.to_pandas()


def describe_setup(config: RunConfig) -> str:
    """The first line a run prints: which databases and parameters it uses."""
    dbs = ", ".join(f"{db.name}={db.path.name}" for db in config.msa.databases)
    params = "RANDOM parameters (structures are NOT meaningful)" if config.model.uses_random_params \
        else f"parameters from {config.model.params_dir}"
    bundled = "bundled mini databases" if all("resources/db" in str(db.path) for db in config.msa.databases) \
        else "databases"
    return f"foldflow: {', '.join(config.model.names)} with {params}; {bundled}: {dbs}"


def predict(fasta: str | Path, out: str | Path, config: RunConfig | str | Path | None = None,
            run_id: str | None = None, **overrides) -> RunResult:
    """Predict structures for every record of a FASTA file (or a directory of FASTA files).

    ``config`` is a RunConfig, a YAML path, or None for the bundled demo setup.
    ``overrides`` set top-level or dotted fields, e.g. ``skip_invalid=True`` or
    ``**{"model.params_dir": "/data/params"}``. Every call is a run with an id
    (``run_id`` or a new one) whose step results and state go to the store, so
    it can be resumed, and so a later run of the same targets computes nothing again.
    """
    config = config if isinstance(config, RunConfig) else load_config(config)
    config = apply_overrides(config, overrides)
    log.warning(describe_setup(config)) if config.model.uses_random_params else log.info(describe_setup(config))
    check_local_setup(config)

    batch = load_targets(Path(fasta), max_length=config.max_length)
    if batch.invalid and not config.skip_invalid:
        raise InvalidInputError(batch.invalid)
    for bad in batch.invalid:
        log.warning("skipping invalid %s", bad.message())

    book = RunBook(Store(config.store))
    run_id = check_run_id(run_id) if run_id else new_run_id()
    if book.exists(run_id):
        raise ValueError(f"run '{run_id}' already exists; resume it with `foldflow runs resume {run_id}`")
    out_dir = Path(out).resolve()
    manifest = book.create(run_id, str(Path(fasta).resolve()), str(out_dir), config.model_dump(mode="json"),
                           batch.targets, batch.invalid)
    log.warning("run id: %s (store: %s)", run_id, config.store)
    return _execute(manifest, config, book)


def resume(run_id: str, store: str | None = None) -> RunResult:
    """Finish a run that crashed or was cancelled: finished targets stay, the rest run (from the store)."""
    book = RunBook(Store(store or default_config().store))
    manifest = book.manifest(run_id)
    config = RunConfig.model_validate(manifest.config)
    book.clear_cancel(run_id)
    return _execute(manifest, config, book)


def _execute(manifest: RunManifest, config: RunConfig, book: RunBook) -> RunResult:
    from foldflow.pipeline.run import execute_run  # the only Ray-importing path

    out_dir = Path(manifest.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(dump_config(config))
    results, cancelled = execute_run(manifest, config, book)
    invalid = manifest.invalid_objects()
    results += [TargetResult(target_id=bad.id, length=None, status="invalid", error=bad.error) for bad in invalid]
    table = write_summary(out_dir / "summary.parquet", results)
    if config.model.uses_random_params:
        log.warning(RANDOM_PARAMS_WARNING)
    return RunResult(manifest.run_id, out_dir, results, table, config.model.uses_random_params, cancelled, invalid)


def run_status(run_id: str, store: str | None = None) -> dict:
    return RunBook(Store(store or default_config().store)).status(run_id)


def list_runs(store: str | None = None) -> list[dict]:
    book = RunBook(Store(store or default_config().store))
    return [book.status(run_id) for run_id in book.run_ids()]


def cancel(run_id: str, store: str | None = None) -> None:
    """Ask a running run to stop: running work stops, finished work stays (resume finishes it)."""
    RunBook(Store(store or default_config().store)).request_cancel(run_id)


def apply_overrides(config: RunConfig, overrides: dict) -> RunConfig:
    """Set dotted fields (``model.num_recycle``) on a copy of ``config``; None values are ignored."""
    data = config.model_dump()
    for dotted, value in overrides.items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        if leaf not in node:
            raise KeyError(f"unknown setting '{dotted}'")
        node[leaf] = value
    return RunConfig.model_validate(data)
