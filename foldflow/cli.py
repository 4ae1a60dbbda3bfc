"""``foldflow`` command line: parses arguments and calls the Python API."""

from __future__ import annotations

import functools
import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import click

from foldflow.errors import FoldflowError, JobExistsError, SetupError
from foldflow.options import RUN_OPTIONS, OptionKind, overrides_from_values

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
Command = TypeVar("Command", bound=Callable)


@contextmanager
def _errors(verbose: bool) -> Iterator[None]:
    """Every command's errors: foldflow's own (bad input or setup) exit 2, any other exit 1.

    Each line of the message becomes an ``error:`` line on stderr; an unexpected
    error also names its type, and ``-v`` adds its traceback.
    """
    try:
        yield
    except FoldflowError as error:
        _echo_error(str(error))
        sys.exit(EXIT_BAD_INPUT)
    except Exception as error:
        if verbose:
            traceback.print_exc()
        _echo_error(f"{type(error).__name__}: {error}")
        sys.exit(EXIT_FAILED)


def _echo_error(message: str) -> None:
    for line in message.splitlines() or [""]:
        click.echo(f"error: {line}", err=True)


def _click_type(kind: OptionKind, local: bool) -> click.ParamType | type:
    if kind == "int":
        return int
    if kind in ("file", "dir") and local:
        return click.Path(exists=True, file_okay=kind == "file", dir_okay=kind == "dir", path_type=Path)
    return str


def run_options(local: bool, names: tuple[str, ...] | None = None) -> Callable[[Command], Command]:
    """Add the options of :data:`foldflow.options.RUN_OPTIONS` (those ``names``, default all) to a command.

    ``local``: paths must exist on this machine; otherwise they are taken as the cluster sees them.
    """
    def decorate(command: Command) -> Command:
        for option in reversed([o for o in RUN_OPTIONS if names is None or o.name in names]):
            decls = [option.flag, *([option.short] if option.short else []), option.name]
            parsing = {"is_flag": True, "default": None} if option.kind == "flag" \
                else {"type": _click_type(option.kind, local)}
            command = click.option(*decls, help=option.help, **parsing)(command)
        return command
    return decorate


_verbose_option = click.option("--verbose", "-v", is_flag=True, help="More log output; tracebacks of errors.")
ADDRESS_HELP = ("Ray cluster to join: 'auto' or 'ray://host:10001'. Default: the cluster RAY_ADDRESS names (KubeRay "
                "sets it in its pods, Ray in a Ray job), else a new local Ray.")


@click.group()
@click.version_option(package_name="foldflow")
def main() -> None:
    """Batch protein structure prediction (AlphaFold 2) on Ray."""


@main.command()
@click.argument("fasta", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, help="Output directory.")
@click.option("--address", help=ADDRESS_HELP)
@run_options(local=True)
@_verbose_option
def predict(fasta: Path, out: Path, address: str | None, verbose: bool, **values) -> None:
    """Predict structures for every record of FASTA (a file or a directory of FASTA files)."""
    _setup_logging(verbose)
    from foldflow.api import predict as run_predict

    with _errors(verbose):
        run = run_predict(fasta, out, values["config"], run_id=values["run_id"],
                          **{"pipeline.address": address, **overrides_from_values(values)})
    _report(run)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")


def _report(run) -> None:
    ok = sum(r.status == "ok" for r in run.results)
    cached = sum(r.observed.cached for r in run.results)
    state = " (cancelled)" if run.cancelled else ""
    click.echo(f"run {run.run_id}{state}: {ok}/{len(run.results)} targets predicted ({cached} from the store); "
               f"summary: {run.out_dir / 'summary.parquet'}")
    for bad in run.failed:
        click.echo(f"  {bad.status}: {bad.target_id}: {bad.error}", err=True)
    sys.exit(EXIT_OK if run.ok else EXIT_FAILED)


@main.command()
@click.argument("fasta")
@click.option("--out", "-o", required=True, help="Output directory, as the cluster sees it.")
@click.option("--address", required=True, help="Ray dashboard of the cluster, e.g. http://127.0.0.1:8265.")
@run_options(local=False)
@click.option("--python", "python", default="python", show_default=True,
              help="Python on the cluster that has foldflow installed.")
@click.option("--wait", is_flag=True, help="Wait for the job to end (this run's job, if it was submitted before); "
                                          "exit 0 only if it succeeded.")
@_verbose_option
def submit(fasta: str, out: str, address: str, python: str, wait: bool, verbose: bool, **values) -> None:
    """Submit a run as a Ray job (Ray Jobs API), with this folder as its working directory.

    Takes every option of `predict`; paths are as the cluster sees them. The
    run id is also the job's submission id, so a run is never submitted twice.
    Prints the run id; `foldflow runs status RUN --store STORE` follows it from
    anywhere that reaches the store.
    """
    _setup_logging(verbose)
    from foldflow.api import submit as submit_run

    with _errors(verbose):
        try:
            run_id, job_id = submit_run(fasta, out, address, values["config"], values["run_id"], python=python,
                                        **overrides_from_values(values))
            click.echo(f"run {run_id} submitted as Ray job {job_id} to {address}; follow it with: foldflow runs "
                       f"status {run_id} --address {address}" + (f" --store {values['store']}" if values["store"] else ""))
        except JobExistsError as exists:
            if not wait:
                raise
            run_id, job_id = values["run_id"], exists.job_id  # a retried nightly job follows tonight's run
            click.echo(f"run {run_id} was submitted before as Ray job {job_id}; waiting for it")
        if wait:
            from foldflow.pipeline.jobs import wait_for_job

            status, logs = wait_for_job(address, job_id)
            click.echo(f"job {job_id}: {status}")
            if status != "SUCCEEDED":
                click.echo(logs[-4000:], err=True)
                sys.exit(EXIT_FAILED)


@main.command()
@click.option("--config", "-c", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Settings (YAML) with a design section, e.g. configs/design.yaml.")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Output folder (designs/*.parquet); the same folder again resumes the campaign.")
@click.option("--designs", type=int, help="Backbones to generate (design.designs).")
@click.option("--address", help=ADDRESS_HELP)
@run_options(local=True, names=("progress", "no_progress"))
@_verbose_option
def design(config_path: Path | None, out: Path, designs: int | None, address: str | None, verbose: bool,
           **values) -> None:
    """Design proteins: backbones -> ProteinMPNN -> refold and filter -> relaxation -> Parquet."""
    _setup_logging(verbose)
    from foldflow.api import design as run_design

    with _errors(verbose):
        overrides = {"pipeline.address": address, "design.designs": designs, **overrides_from_values(values)}
        run = run_design(out, config_path, **overrides)
    click.echo(f"design campaign of {run.designs} backbones finished in {run.seconds:.0f} s: {run.parquet}")


@main.group()
def databases() -> None:
    """Build search databases from FASTA, check them, see what the full ones need."""


def _binary(config, setting: str) -> str:
    """The binary a dotted setting names (``msa.hhblits_binary``); "" for none."""
    return functools.reduce(getattr, setting.split("."), config) if setting else ""


@databases.command("build")
@click.argument("engine", type=click.Choice(["hhblits", "hhsearch", "mmseqs2"]))
@click.argument("fasta", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("prefix", type=click.Path(path_type=Path))
@click.option("--threads", type=int, default=1, show_default=True, help="Threads for MMseqs2.")
@click.option("--max-sequences", type=int, help="Only the first N sequences of FASTA.")
@click.option("--no-index", is_flag=True, help="MMseqs2: skip createindex (smaller on disk, slower searches).")
@_verbose_option
def databases_build(engine: str, fasta: Path, prefix: Path, threads: int, max_sequences: int | None,
                    no_index: bool, verbose: bool) -> None:
    """Build an ENGINE database at PREFIX from FASTA, then check it with a test query.

    hhblits: an HH-suite database (BFD/UniRef30-like); hhsearch: a PDB70-like one for templates (from PDB
    seqres); mmseqs2: ColabFold's layout (clustered at 30 % identity, with an index)."""
    from foldflow.config import default_config
    from foldflow.msa.databases import DATABASE_FORMATS
    from foldflow.msa.tools import ToolError

    kind = DATABASE_FORMATS[engine]
    with _errors(verbose):
        try:
            built = kind.build(fasta, prefix, threads, max_sequences, index=not no_index)
            lines = kind.check(prefix, _binary(default_config(), kind.binary_setting), threads)
        except ToolError as error:
            raise SetupError(str(error)) from None
    click.echo(f"built {engine} database {prefix} from {built.sequences} sequences in {built.seconds:.1f} s")
    for line in lines:
        click.echo(line)


@databases.command("check")
@click.option("--config", "-c", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Run settings (YAML) whose databases to check (default: the bundled ones).")
@_verbose_option
def databases_check(config_path: Path | None, verbose: bool) -> None:
    """Check every database of a run's settings: its engine's tool, its files, a test query."""
    from foldflow.config import load_config
    from foldflow.msa.databases import DATABASE_FORMATS
    from foldflow.msa.registry import engine_class
    from foldflow.msa.tools import ToolError

    with _errors(verbose):
        config = load_config(config_path)
        msa = config.msa
        try:
            checks = [(db.name, DATABASE_FORMATS[engine_class(msa.engine_of(db)).database_format], prefix)
                      for db in msa.searched_databases(pairing=True) for prefix in (db.path, *db.extra_paths)]
            if msa.templates.enabled and msa.templates.engine != "hmmsearch":  # hhsearch of PDB70
                checks.append(("pdb70", DATABASE_FORMATS["hhsearch"], msa.templates.pdb70))
            for name, kind, prefix in checks:
                for line in kind.check(prefix, _binary(config, kind.binary_setting), msa.cpus_per_search):
                    click.echo(f"{name}: {line}")
        except ToolError as error:
            raise SetupError(f"database '{name}': {error}") from None


@databases.command("downloads")
def databases_downloads() -> None:
    """What the full AlphaFold and ColabFold databases need (sizes, download scripts)."""
    from foldflow.msa.databases import FULL_DOWNLOADS

    click.echo(FULL_DOWNLOADS)


_store_option = click.option("--store", help="Store path or URI (default: the cache folder's store).")


@main.command()
@click.argument("run_id")
@_store_option
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="The HTML file to write (default: report.html in the run's output folder).")
@_verbose_option
def report(run_id: str, store: str | None, out: Path | None, verbose: bool) -> None:
    """One self-contained HTML report of a run: settings, targets, failures, stage timeline, plots, 3D views."""
    from foldflow.api import report as write_report

    with _errors(verbose):
        path = write_report(run_id, store, out)
    click.echo(f"report: {path}")


@main.group()
def runs() -> None:
    """List, inspect, resume and cancel runs."""


@runs.command("list")
@_store_option
@_verbose_option
def runs_list(store: str | None, verbose: bool) -> None:
    """One line per run: id, state, progress, where its outputs are."""
    from foldflow.api import list_runs

    with _errors(verbose):
        statuses = list_runs(store)
    for status in statuses:
        counts = " ".join(f"{k}={v}" for k, v in status["counts"].items())
        click.echo(f"{status['run_id']}\t{status['state']}\t{status['progress']:.0%}\t{counts}\t{status['out_dir']}")


@runs.command("status")
@click.argument("run_id")
@_store_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--watch", is_flag=True,
              help="Follow the run (done by another process or a Ray job): a line at each change, until it ends.")
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between looks (--watch).")
@click.option("--address", help="Ray dashboard the run was submitted to (default: RAY_ADDRESS): a run not in the "
                                "store is looked up as a Ray job there, e.g. one that failed before foldflow started.")
@_verbose_option
def runs_status(run_id: str, store: str | None, as_json: bool, watch: bool, interval: float, address: str | None,
                verbose: bool) -> None:
    """Where a run stands: state, targets per stage, failures with reasons."""
    from foldflow.api import run_status
    from foldflow.runs import status_line

    if watch:
        with _errors(verbose):
            _watch_run(run_id, store, as_json, interval)
        return
    with _errors(verbose):
        status = run_status(run_id, store, address)
    if as_json:
        click.echo(json.dumps(status, indent=1))
        return
    click.echo(status_line(status))
    click.echo(f"  outputs: {status['out_dir']}")
    if status["error"]:
        click.echo(f"  error: {status['error']}")
    for target_id, error in status["failures"].items():
        click.echo(f"  failed {target_id}: {error}")
    for worker in status["model_workers"]:
        xla = worker["xla"]
        click.echo(f"  model actor pid {worker['pid']}: params loaded in "
                   f"{sum(worker['params_load_seconds'].values()):.1f} s, {xla['compiles']} XLA compiles "
                   f"({xla['cache_hits']} from the disk cache) in {xla['seconds']:.1f} s")


def _watch_run(run_id: str, store: str | None, as_json: bool, interval: float) -> None:
    """Print the run's state and targets per stage whenever they change, until the run is no longer going."""
    import time

    from foldflow.api import run_status
    from foldflow.runs import RUN_GOING_STATES, status_line

    last = None
    while True:
        status = run_status(run_id, store)
        if (status["state"], status["counts"]) != last:
            last = (status["state"], status["counts"])
            if as_json:
                click.echo(json.dumps({"time": round(time.time(), 3), **{k: status[k] for k in (
                    "run_id", "state", "targets", "counts", "progress", "cached", "failures")}}))
            else:
                click.echo(f"{time.strftime('%H:%M:%S')} {status_line(status)}")
        if status["state"] not in RUN_GOING_STATES:
            return
        time.sleep(interval)


@runs.command("resume")
@click.argument("run_id")
@_store_option
@_verbose_option
def runs_resume(run_id: str, store: str | None, verbose: bool) -> None:
    """Finish a crashed or cancelled run; finished work is not redone."""
    _setup_logging(verbose)
    from foldflow.api import resume

    with _errors(verbose):
        run = resume(run_id, store)
    _report(run)


@runs.command("cancel")
@click.argument("run_id")
@_store_option
@_verbose_option
def runs_cancel(run_id: str, store: str | None, verbose: bool) -> None:
    """Stop a running run: running work stops, finished work stays."""
    from foldflow.api import cancel

    with _errors(verbose):
        cancel(run_id, store)
    click.echo(f"cancel requested for run {run_id}; `foldflow runs resume {run_id}` finishes it later")
