"""Benchmark 4: driver memory and per-target orchestration overhead from 100 to 5,000 targets.

Targets have precomputed (query-only) A3M MSAs and run through the SIMULATED
device with 0 seconds (`simulated_device`: a no-op model used only for this
measurement), so what is measured is foldflow itself: validation, run
records, the step store, actor calls, object-store transfers and writing
outputs (plots off). Each size runs in a fresh driver process; its peak RSS
is sampled (Ray's worker processes are not the driver and are not counted).

Usage: .venv/bin/python scripts/bench_orchestration.py [--sizes 100,1000,5000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one_size(count: int) -> dict:
    """Runs in a child process: predict `count` targets, report peak driver RSS and wall time."""
    import psutil

    import foldflow
    from foldflow.config import RunConfig

    work = Path(tempfile.mkdtemp(prefix="foldflow-orch-"))
    sequences = [line for line in (HERE / "data" / "bench_targets.fasta").read_text().splitlines()
                 if not line.startswith(">")]
    msas = work / "msas"
    msas.mkdir()
    with open(work / "targets.fasta", "w") as fasta:
        for i in range(count):
            sequence = sequences[i % len(sequences)]
            fasta.write(f">t{i}\n{sequence}\n")
            (msas / f"t{i}.a3m").write_text(f">t{i}\n{sequence}\n")
    config = RunConfig(store=str(work / "store"), plots=False,
                       msa={"precomputed_dir": msas, "require_precomputed": True},
                       relax={"models_to_relax": "none"}, model={"names": ["simulated_device_0s"]},
                       pipeline={"progress": False, "max_in_flight": 8})
    process = psutil.Process()
    baseline_rss = process.memory_info().rss
    peak = [baseline_rss]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    run = foldflow.predict(work / "targets.fasta", work / "out", config)
    wall = time.perf_counter() - start
    done.set()
    table = run.to_pandas()
    makespan = float(table["ended_output"].max() - table["started_msa"].min())
    shutil.rmtree(work, ignore_errors=True)
    return {"targets": count, "ok": int((table["status"] == "ok").sum()), "wall_s": wall, "makespan_s": makespan,
            "per_target_ms": 1000 * makespan / count, "peak_rss_mb": peak[0] / 2**20,
            "start_rss_mb": baseline_rss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_size(args.child)))
        return
    rows = []
    for size in map(int, args.sizes.split(",")):
        output = subprocess.run([sys.executable, __file__, "--child", str(size)], check=True,
                                capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        print(f"{size} targets done", flush=True)
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print("targets  ok     wall s  makespan s  per-target ms  driver peak RSS MB")
    for row in rows:
        print(f"{row['targets']:7d} {row['ok']:5d} {row['wall_s']:9.1f} {row['makespan_s']:11.1f} "
              f"{row['per_target_ms']:14.1f} {row['peak_rss_mb']:18.1f}")
    print(f"driver peak RSS growth {rows[0]['targets']} -> {rows[-1]['targets']} targets: "
          f"{rows[-1]['peak_rss_mb'] - rows[0]['peak_rss_mb']:+.1f} MB")


if __name__ == "__main__":
    main()
