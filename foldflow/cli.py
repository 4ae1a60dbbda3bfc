"""``foldflow`` command line: parses arguments and calls the Python API."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

EXIT_OK, EXIT_TARGETS_FAILED, EXIT_BAD_INPUT = 0, 1, 2


@click.group()
@click.version_option(package_name="foldflow")
def main() -> None:
    """Batch protein structure prediction (AlphaFold 2) on Ray."""


@main.command()
@click.argument("fasta", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, help="Output directory.")
@click.option("--config", "-c", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML settings (see configs/). Default: bundled mini databases, random parameters.")
@click.option("--address", help="Ray cluster to use: 'auto' or 'ray://host:10001'. Default: start a local Ray.")
@click.option("--params", "params_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder with AlphaFold's params_model_*.npz. Default: random parameters (not meaningful).")
@click.option("--msa-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Precomputed MSAs: DIR/<target>/*.sto|*.a3m or DIR/<target>.a3m.")
@click.option("--models", help="Comma-separated model names, e.g. model_1_ptm,model_2_ptm.")
@click.option("--num-recycle", type=int, help="Recycling iterations.")
@click.option("--max-length", type=int, help="Longest sequence accepted.")
@click.option("--run-id", help="Name this run (default: a new timestamped id).")
@click.option("--store", help="Store for step results and run records: a path or URI (s3://...).")
@click.option("--skip-invalid", is_flag=True, default=None,
              help="Run the valid targets and list the invalid ones in the summary.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--verbose", "-v", is_flag=True, help="More log output.")
def predict(fasta: Path, out: Path, config_path: Path | None, address: str | None, params_dir: Path | None,
            msa_dir: Path | None, models: str | None, num_recycle: int | None, max_length: int | None,
            run_id: str | None, store: str | None, skip_invalid: bool | None, no_progress: bool,
            verbose: bool) -> None:
    """Predict structures for every record of FASTA (a file or a directory of FASTA files)."""
    _setup_logging(verbose)
    from foldflow.api import InvalidInputError, predict as run_predict
    from foldflow.targets import InputError

    overrides = {
        "pipeline.address": address, "model.params_dir": params_dir, "msa.precomputed_dir": msa_dir,
        "model.names": models.split(",") if models else None, "model.num_recycle": num_recycle,
        "max_length": max_length, "skip_invalid": skip_invalid, "store": store,
        "pipeline.progress": False if no_progress else None,
    }
    try:
        run = run_predict(fasta, out, config_path, run_id=run_id, **overrides)
    except (InputError, InvalidInputError, ValueError) as error:
        click.echo(f"error: {error}".replace("\n", "\nerror: "), err=True)
        sys.exit(EXIT_BAD_INPUT)
    _report(run)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")


def _report(run) -> None:
    ok = sum(r.status == "ok" for r in run.results)
    cached = sum(r.cached for r in run.results)
    state = " (cancelled)" if run.cancelled else ""
    click.echo(f"run {run.run_id}{state}: {ok}/{len(run.results)} targets predicted ({cached} from the store); "
               f"summary: {run.out_dir / 'summary.parquet'}")
    for bad in run.failed:
        click.echo(f"  {bad.status}: {bad.target_id}: {bad.error}", err=True)
    sys.exit(EXIT_OK if run.ok else EXIT_TARGETS_FAILED)


@main.command()
@click.argument("fasta")
@click.option("--address", required=True, help="Ray dashboard of the cluster, e.g. http://127.0.0.1:8265.")
@click.option("--out", "-o", required=True, help="Output directory, as the cluster sees it.")
@click.option("--config", "-c", "config_path", help="YAML settings, as the cluster sees it.")
@click.option("--run-id", help="Name this run (default: a new timestamped id); also the job's submission id.")
@click.option("--store", help="Store path or URI that the cluster writes to (s3://... on most clusters).")
@click.option("--params", "params_dir", help="Folder with AlphaFold's params_model_*.npz, on the cluster.")
@click.option("--msa-dir", help="Precomputed MSAs, on the cluster.")
@click.option("--skip-invalid", is_flag=True, help="Run the valid targets and list the invalid ones.")
@click.option("--python", "python", default="python", show_default=True,
              help="Python on the cluster that has foldflow installed.")
@click.option("--wait", is_flag=True, help="Wait for the job to end; exit 0 only if it succeeded.")
def submit(fasta: str, address: str, out: str, config_path: str | None, run_id: str | None, store: str | None,
           params_dir: str | None, msa_dir: str | None, skip_invalid: bool, python: str, wait: bool) -> None:
    """Submit a run as a Ray job (Ray Jobs API), with this folder as its working directory.

    Prints the run id; `foldflow runs status RUN --store STORE` follows it from
    anywhere that reaches the store.
    """
    from foldflow.pipeline.jobs import submit_run, wait_for_job
    from foldflow.runs import check_run_id, new_run_id

    run_id = check_run_id(run_id) if run_id else new_run_id()
    args = [fasta, "--out", out]
    for flag, value in (("--config", config_path), ("--store", store), ("--params", params_dir),
                        ("--msa-dir", msa_dir)):
        if value:
            args += [flag, value]
    if skip_invalid:
        args.append("--skip-invalid")
    try:
        job_id = submit_run(address, run_id, args, Path.cwd(), python=python)
    except (RuntimeError, ConnectionError) as error:  # e.g. a job with this run id exists already
        click.echo(f"error: run {run_id}: {str(error).splitlines()[0]}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(f"run {run_id} submitted as Ray job {job_id} to {address}")
    if wait:
        status, logs = wait_for_job(address, job_id)
        click.echo(f"job {job_id}: {status}")
        if status != "SUCCEEDED":
            click.echo(logs[-4000:], err=True)
            sys.exit(EXIT_TARGETS_FAILED)


_store_option = click.option("--store", help="Store path or URI (default: the cache folder's store).")


@main.group()
def runs() -> None:
    """List, inspect, resume and cancel runs."""


@runs.command("list")
@_store_option
def runs_list(store: str | None) -> None:
    """One line per run: id, state, progress, where its outputs are."""
    from foldflow.api import list_runs

    for status in list_runs(store):
        counts = " ".join(f"{k}={v}" for k, v in status["counts"].items())
        click.echo(f"{status['run_id']}\t{status['state']}\t{status['progress']:.0%}\t{counts}\t{status['out_dir']}")


@runs.command("status")
@click.argument("run_id")
@_store_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def runs_status(run_id: str, store: str | None, as_json: bool) -> None:
    """Where a run stands: state, targets per stage, failures with reasons."""
    from foldflow.api import run_status
    from foldflow.runs import RunNotFoundError

    try:
        status = run_status(run_id, store)
    except RunNotFoundError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if as_json:
        click.echo(json.dumps(status, indent=1))
        return
    click.echo(f"run {run_id}: {status['state']}, {status['progress']:.0%} of {status['targets']} targets finished "
               f"({status['cached']} from the store)")
    click.echo("  " + ", ".join(f"{k}: {v}" for k, v in status["counts"].items()))
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


@runs.command("resume")
@click.argument("run_id")
@_store_option
@click.option("--verbose", "-v", is_flag=True)
def runs_resume(run_id: str, store: str | None, verbose: bool) -> None:
    """Finish a crashed or cancelled run; finished work is not redone."""
    _setup_logging(verbose)
    from foldflow.api import resume
    from foldflow.runs import RunNotFoundError

    try:
        run = resume(run_id, store)
    except RunNotFoundError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    _report(run)


@runs.command("cancel")
@click.argument("run_id")
@_store_option
def runs_cancel(run_id: str, store: str | None) -> None:
    """Stop a running run: running work stops, finished work stays."""
    from foldflow.api import cancel
    from foldflow.runs import RunNotFoundError

    try:
        cancel(run_id, store)
    except RunNotFoundError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(f"cancel requested for run {run_id}; `foldflow runs resume {run_id}` finishes it later")
