"""The HH-suite and MMseqs2 engines through `foldflow predict` (a local Ray): three engines in one run, and a
missing tool or database failing before the run, in one line. The databases are tests/test_msa_engines.py's
(built once per checkout)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from test_msa_engines import DEMO, QUERY, binaries, databases, three_engine_config  # noqa: F401 (fixtures)

pytestmark = pytest.mark.ray


@pytest.mark.slow
def test_three_engines_run_end_to_end_through_the_cli(databases, tmp_path):
    """`foldflow predict` with uniref90 on pyhmmer, BFD on hhblits, UniRef30 and the environmental database on
    MMseqs2 (built above): both targets predicted, each database's MSA written, and the MMseqs2 databases
    searched once each for both targets (the run's chains batched)."""
    config = three_engine_config(databases)
    (tmp_path / "config.yaml").write_text(
        "msa:\n  templates: {enabled: false}\n  databases:\n" + "".join(
            f"  - {{name: {db.name}, path: {db.path}, engine: {db.engine or 'pyhmmer'}}}\n" for db in config.databases)
        + f"model:\n  names: [model_1_ptm]\n  num_recycle: 0\n  max_msa_clusters: 8\n  max_extra_msa: 16\n"
          f"  bucket_lengths: [96]\nrelax: {{models_to_relax: none}}\nstore: {tmp_path / 'store'}\n")
    (tmp_path / "input.fasta").write_text("".join(f">{name}\n{DEMO[name]}\n" for name in ("HG003690_101", "HG003686_698")))
    result = subprocess.run([sys.executable, "-m", "foldflow", "predict", str(tmp_path / "input.fasta"),
                             "--out", str(tmp_path / "out"), "--config", str(tmp_path / "config.yaml"),
                             "--run-id", "engines", "--progress", "none"],
                            capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bfd=bfd (hhblits)" in result.stderr + result.stdout
    for name in ("HG003690_101", "HG003686_698"):
        msas = sorted(p.name for p in (tmp_path / "out" / name / "msas").iterdir())
        assert msas == ["bfd_uniref_hits.a3m", "colabfold_envdb_hits.a3m", "uniref30_hits.a3m", "uniref90_hits.sto"]
        assert (tmp_path / "out" / name / "ranked_0.pdb").is_file()
    status = subprocess.run([sys.executable, "-m", "foldflow", "runs", "status", "engines", "--json",
                             "--store", str(tmp_path / "store")], capture_output=True, text=True, check=True)
    workers = json.loads(status.stdout)["msa_workers"]
    assert sum(w["mmseqs_calls"] for w in workers) == 2 and sum(w["mmseqs_queries"] for w in workers) == 4


# -- a missing tool or database fails before the run, in one line -------------------------------------------
def predict_cli(tmp_path: Path, config: str) -> subprocess.CompletedProcess:
    (tmp_path / "config.yaml").write_text(config)
    (tmp_path / "input.fasta").write_text(f">t\n{QUERY}\n")
    return subprocess.run([sys.executable, "-m", "foldflow", "predict", str(tmp_path / "input.fasta"), "--out", str(tmp_path / "out"),
                           "--config", str(tmp_path / "config.yaml"), "--progress", "none"],
                          capture_output=True, text=True, timeout=300)


def errors(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_missing_binary_fails_before_the_run_naming_the_package(tmp_path):
    result = predict_cli(tmp_path, f"msa:\n  hhblits_binary: /opt/none/hhblits\n  databases:\n"
                                   f"  - {{name: bfd, path: {tmp_path}/bfd, engine: hhblits}}\n")
    assert result.returncode == 2
    assert errors(result) == [
        "error: /opt/none/hhblits: not found (install the Debian package hhsuite: apt-get install hhsuite, "
        "or set msa.hhblits_binary to its path)"]
    assert not (tmp_path / "out").exists(), "nothing ran"


def test_missing_database_fails_before_the_run_naming_the_file(tmp_path, binaries):
    result = predict_cli(tmp_path, f"msa:\n  databases:\n  - {{name: uniref30, path: {tmp_path}/nothing, "
                                   f"engine: mmseqs2}}\n")
    assert result.returncode == 2
    assert errors(result) == [
        f"error: database 'uniref30': no MMseqs2 database at {tmp_path}/nothing (missing nothing.dbtype; "
        f"build one with: foldflow databases build mmseqs2 FASTA {tmp_path}/nothing)"]
    assert not (tmp_path / "out").exists(), "nothing ran"
