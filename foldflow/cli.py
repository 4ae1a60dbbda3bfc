"""``foldflow`` command line: parses arguments and calls the Python API."""

from __future__ import annotations

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
@click.option("--skip-invalid", is_flag=True, default=None,
              help="Run the valid targets and list the invalid ones in the summary.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--verbose", "-v", is_flag=True, help="More log output.")
def predict(fasta: Path, out: Path, config_path: Path | None, address: str | None, params_dir: Path | None,
            msa_dir: Path | None, models: str | None, num_recycle: int | None, max_length: int | None,
            skip_invalid: bool | None, no_progress: bool, verbose: bool) -> None:
    """Predict structures for every record of FASTA (a file or a directory of FASTA files)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    from foldflow.api import InvalidInputError, predict as run_predict
    from foldflow.targets import InputError

    overrides = {
        "pipeline.address": address, "model.params_dir": params_dir, "msa.precomputed_dir": msa_dir,
        "model.names": models.split(",") if models else None, "model.num_recycle": num_recycle,
        "max_length": max_length, "skip_invalid": skip_invalid,
        "pipeline.progress": False if no_progress else None,
    }
    try:
        run = run_predict(fasta, out, config_path, **overrides)
    except (InputError, InvalidInputError) as error:
        click.echo(f"error: {error}".replace("\n", "\nerror: "), err=True)
        sys.exit(EXIT_BAD_INPUT)
    ok = sum(r.status == "ok" for r in run.results)
    click.echo(f"{ok}/{len(run.results)} targets predicted; summary: {run.out_dir / 'summary.parquet'}")
    for bad in run.failed:
        click.echo(f"  {bad.status}: {bad.target_id}: {bad.error}", err=True)
    sys.exit(EXIT_OK if run.ok else EXIT_TARGETS_FAILED)
