"""Benchmarks 1 and 2: foldflow against two baselines on the same targets, side by side in one run.

1. End-to-end wall time for N real proteins (lengths spread over several
   buckets), every side writing the same files (AlphaFold's layout, no plots):
   * single process: scripts/baseline_run_alphafold.py on the whole FASTA, the way
     run_alphafold works (parameters loaded once, targets one after the other,
     search then predict, one compile per distinct length);
   * job array: the same script once per target (a process per target, as a
     Nextflow/Slurm array of run_alphafold jobs runs them);
   * foldflow with an empty XLA cache (cold), again with a fresh step store but
     the cold run's XLA cache (warm), and a re-run against the warm store.
   Same parameters npz, databases and model settings on every side.
2. Compiles, as each side counted them: the baselines' model programs (JAX's
   jit cache) and XLA programs, from their reports; foldflow's from its summary.
   The re-run's searches and model calls are read from its summary.

Usage: .venv/bin/python scripts/bench_end_to_end.py [--targets 20] [--work /tmp/foldflow-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODEL_SETTINGS = {"names": ["model_1_ptm"], "num_recycle": 0, "max_msa_clusters": 8, "max_extra_msa": 16}


def run(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def target_files(folder: Path) -> list[str]:
    """Every file of the target folders (a run's summary.parquet and config.yaml left out)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.glob("*/**/*") if p.is_file())


def ensure_params(cache: Path) -> Path:
    """The random-init params npz (AlphaFold's layout), created once with foldflow's own cache."""
    sys.path.insert(0, str(ROOT))
    from foldflow.config import ModelConfig
    from foldflow.models.alphafold2 import load_model_params

    _, path, _, _ = load_model_params("model_1_ptm", ModelConfig(cache_dir=cache))
    return path.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--fasta", type=Path, default=HERE / "data" / "bench_targets.fasta")
    parser.add_argument("--work", type=Path, default=Path("/tmp/foldflow-bench"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)

    records = args.fasta.read_text().split(">")[1:]
    step = max(1, len(records) // args.targets)
    records = records[::step][: args.targets]
    fasta = args.work / "targets.fasta"
    fasta.write_text("".join(">" + r for r in records))
    lengths = [len("".join(r.split("\n")[1:])) for r in records]
    params = ensure_params(Path(os.environ.get("FOLDFLOW_CACHE_DIR", ROOT / ".cache" / "foldflow")))
    env = {**os.environ, "FOLDFLOW_CACHE_DIR": str(args.work / "cache"), "PYTHONUNBUFFERED": "1"}
    settings = json.dumps(MODEL_SETTINGS)

    def baseline(fasta_file: Path, out: Path, report: Path) -> tuple[float, dict]:
        seconds = run([sys.executable, str(HERE / "baseline_run_alphafold.py"), str(fasta_file), "--params",
                       str(params), "--out", str(out), "--model-settings", settings, "--report", str(report)], env)
        return seconds, json.loads(report.read_text())

    single, single_report = baseline(fasta, args.work / "single", args.work / "single.json")
    print(f"single process: {single:.0f} s", flush=True)
    array, array_reports = 0.0, []
    for i, record in enumerate(records):
        one = args.work / f"job_{i}.fasta"
        one.write_text(">" + record)
        seconds, report = baseline(one, args.work / "array", args.work / f"job_{i}.json")
        array += seconds
        array_reports.append(report)
        print(f"job array {i + 1}/{len(records)}: {array:.0f} s so far", flush=True)

    config = args.work / "bench.yaml"
    # The baseline searches no templates and relaxes nothing: neither does foldflow here (same work).
    config.write_text(json.dumps({"model": {**MODEL_SETTINGS, "params_dir": str(params)},
                                  "msa": {"templates": {"enabled": False}}, "relax": {"models_to_relax": "none"},
                                  "pipeline": {"progress": False}, "plots": False}))
    foldflow = [sys.executable, "-m", "foldflow", "predict", str(fasta), "--config", str(config)]
    cold = run([*foldflow, "--out", str(args.work / "cold"), "--store", str(args.work / "store-cold")], env)
    warm = run([*foldflow, "--out", str(args.work / "warm"), "--store", str(args.work / "store-warm")], env)
    rerun = run([*foldflow, "--out", str(args.work / "rerun"), "--store", str(args.work / "store-warm")], env)
    tables = {name: pq.read_table(args.work / name / "summary.parquet").to_pandas()
              for name in ("cold", "warm", "rerun")}
    same_files = target_files(args.work / "single") == target_files(args.work / "array") \
        == target_files(args.work / "cold")
    print()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"targets: {len(records)} real proteins, lengths {min(lengths)}-{max(lengths)}, "
          f"{len(set(lengths))} distinct lengths, model_1_ptm {MODEL_SETTINGS}; every side wrote the same "
          f"file names: {same_files}")
    print(f"1. end to end   job array (process per target)   {array:7.1f} s")
    print(f"                single process (run_alphafold)   {single:7.1f} s")
    for name, seconds in (("cold XLA cache", cold), ("warm XLA cache", warm), ("re-run, same store", rerun)):
        print(f"                foldflow {name:22s}  {seconds:7.1f} s   {array / seconds:5.2f}x the job array, "
              f"{single / seconds:5.2f}x the single process")
    for name, seconds in (("cold", cold), ("warm", warm)):
        busy = float((tables[name]["ended_model"] - tables[name]["started_model"]).sum())
        print(f"                foldflow {name}: model stage busy {busy:6.1f} s = {busy / seconds:4.0%} of its wall "
              f"time; no scheduler beats single process / busy = {single / busy:4.2f}x with this model work")
    rerun_table = tables["rerun"]
    print(f"                foldflow re-run: {int(rerun_table['msa_searches'].sum())} searches, "
          f"{int(rerun_table['model_calls'].sum())} model calls (from its summary)")
    print(f"2. compiles     job array: {sum(r['model_programs'] for r in array_reports)} model programs, "
          f"{sum(r['xla_programs'] for r in array_reports)} XLA programs (counted in each process)")
    print(f"                single process: {single_report['model_programs']} model programs, "
          f"{single_report['xla_programs']} XLA programs (counted)")
    for name in ("cold", "warm"):
        table = tables[name]
        print(f"                foldflow {name}: {table['bucket'].nunique()} buckets "
              f"{sorted(table['bucket'].unique().tolist())}, XLA programs built {int(table['xla_compiles'].sum())}, "
              f"loaded from the disk cache {int(table['xla_cache_hits'].sum())}, "
              f"{table['xla_compile_seconds'].sum():.1f} s")


if __name__ == "__main__":
    main()
