"""Benchmarks 1 and 2: foldflow vs the run_alphafold way on the same targets, side by side.

1. End-to-end wall time for N real proteins (lengths spread over several
   buckets): the baseline runs one process per target (scripts/baseline_run_alphafold.py);
   foldflow runs once with an empty XLA cache (cold) and once more with a
   fresh step store but the XLA cache of the cold run (warm). Same parameters
   npz, same databases, same model settings.
2. XLA compiles: the baseline compiles once per distinct length; foldflow once
   per bucket (cold) and not at all (warm, programs from the disk cache).

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
MODEL_SETTINGS = {"num_recycle": 0, "max_msa_clusters": 8, "max_extra_msa": 16}


def run(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


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

    # Baseline: one process per target.
    baseline = 0.0
    for i, record in enumerate(records):
        one = args.work / f"baseline_{i}.fasta"
        one.write_text(">" + record)
        baseline += run([sys.executable, str(HERE / "baseline_run_alphafold.py"), str(one), "--params", str(params),
                         "--out", str(args.work / "baseline"), "--model-settings", settings], env)
        print(f"baseline {i + 1}/{len(records)}: {baseline:.0f} s so far", flush=True)

    config = args.work / "bench.yaml"
    # The same outputs as the baseline writes (AlphaFold's layout, no plots), so only orchestration differs.
    config.write_text(json.dumps({"model": {**MODEL_SETTINGS, "params_dir": str(params)},
                                  "pipeline": {"progress": False}, "plots": False}))
    foldflow = [sys.executable, "-m", "foldflow", "predict", str(fasta), "--config", str(config)]
    cold = run([*foldflow, "--out", str(args.work / "cold"), "--store", str(args.work / "store-cold")], env)
    warm = run([*foldflow, "--out", str(args.work / "warm"), "--store", str(args.work / "store-warm")], env)
    cached = run([*foldflow, "--out", str(args.work / "cached"), "--store", str(args.work / "store-warm")], env)

    tables = {name: pq.read_table(args.work / name / "summary.parquet").to_pandas() for name in ("cold", "warm")}
    print()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"targets: {len(records)} real proteins, lengths {min(lengths)}-{max(lengths)}, "
          f"{len(set(lengths))} distinct lengths, model_1_ptm {MODEL_SETTINGS}")
    print(f"1. end to end   baseline (process per target) {baseline:7.1f} s")
    print(f"                foldflow cold XLA cache       {cold:7.1f} s   speedup {baseline / cold:5.2f}x")
    print(f"                foldflow warm XLA cache       {warm:7.1f} s   speedup {baseline / warm:5.2f}x")
    print(f"                foldflow re-run, same store   {cached:7.1f} s   speedup {baseline / cached:5.2f}x "
          f"(0 searches, 0 model calls)")
    cold_table, warm_table = tables["cold"], tables["warm"]
    for name, seconds in (("cold", cold), ("warm", warm)):
        busy = float((tables[name]["ended_model"] - tables[name]["started_model"]).sum())
        print(f"                foldflow {name}: model stage busy {busy:6.1f} s = {busy / seconds:4.0%} of its wall "
              f"time; no scheduler could beat baseline / busy = {baseline / busy:4.2f}x with this model work")
    print(f"2. XLA compiles baseline: one per distinct length = {len(set(lengths))} model compiles")
    print(f"                foldflow cold: {cold_table['bucket'].nunique()} buckets "
          f"{sorted(cold_table['bucket'].unique().tolist())}, targets that compiled: "
          f"{int(((cold_table['xla_compiles']) > 0).sum())}, XLA programs built {int(cold_table['xla_compiles'].sum())} "
          f"in {cold_table['xla_compile_seconds'].sum():.1f} s")
    print(f"                foldflow warm: XLA programs built {int(warm_table['xla_compiles'].sum())}, "
          f"loaded from disk cache {int(warm_table['xla_cache_hits'].sum())} "
          f"in {warm_table['xla_compile_seconds'].sum():.1f} s")


if __name__ == "__main__":
    main()
