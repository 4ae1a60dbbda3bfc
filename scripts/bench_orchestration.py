"""Benchmark 4: driver memory and per-target orchestration overhead from 100 to 5,000 targets.

Targets have precomputed (query-only) A3M MSAs and run through the SIMULATED
device with 0 seconds (`simulated_device`: a no-op model used only for this
measurement), so what is measured is foldflow itself: validation, run
records, the step store, actor calls, object-store transfers and writing
outputs (plots off unless --plots). Each size runs in a fresh driver process; its peak RSS
is sampled and its CPU seconds counted (Ray's worker processes are not the driver and are not counted).
With --compare-with REV each size runs a second time, side by side, on the code of commit REV (a git
worktree, imported through PYTHONPATH and the driver's working directory): the same script, targets and
settings.

With --rerun each size then runs a second time, the same targets into the same folder (the nightly case: every
step in the store); its wall and driver CPU per target, and how many target folders it wrote again, are printed.
Imports happen before the clocks start (once per process, not per target); starting Ray is counted.

Usage: .venv/bin/python scripts/bench_orchestration.py [--sizes 100,1000,5000] [--plots] [--max-in-flight 8]
       [--rerun] [--compare-with REV]
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


def query_only_targets(work: Path, count: int) -> Path:
    """``work/targets.fasta`` with ``count`` targets (the bundled benchmark sequences, repeated) and a folder
    of their query-only A3M files, which it returns."""
    sequences = [line for line in (HERE / "data" / "bench_targets.fasta").read_text().splitlines()
                 if not line.startswith(">")]
    msas = work / "msas"
    msas.mkdir()
    with open(work / "targets.fasta", "w") as fasta:
        for i in range(count):
            sequence = sequences[i % len(sequences)]
            fasta.write(f">t{i}\n{sequence}\n")
            (msas / f"t{i}.a3m").write_text(f">t{i}\n{sequence}\n")
    return msas


def one_size(count: int, plots: bool, in_flight: int, rerun: bool) -> dict:
    """Runs in a child process: predict `count` targets, report peak driver RSS, wall and CPU time (and those of
    a second run of the same targets with ``rerun``)."""
    import psutil

    import foldflow
    import foldflow.models.params  # noqa: F401 (imports, once per process, are not a per-target cost)
    import foldflow.pipeline.run  # noqa: F401
    from foldflow.config import RunConfig

    work = Path(tempfile.mkdtemp(prefix="foldflow-orch-"))
    msas = query_only_targets(work, count)
    config = RunConfig(store=str(work / "store"), plots=plots,
                       msa={"precomputed_dir": msas, "require_precomputed": True},
                       relax={"models_to_relax": "none"}, model={"names": ["simulated_device_0s"]},
                       pipeline={"progress": False, "max_in_flight": in_flight})
    process = psutil.Process()
    baseline_rss = process.memory_info().rss
    peak = [baseline_rss]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    def timed_run():
        start, cpu = time.perf_counter(), process.cpu_times()
        run = foldflow.predict(work / "targets.fasta", work / "out", config)
        used = process.cpu_times()
        return run.to_pandas(), time.perf_counter() - start, used.user + used.system - cpu.user - cpu.system

    table, wall, driver_cpu = timed_run()
    done.set()
    makespan = float(table["ended_output"].max() - table["started_msa"].min())
    row = {"targets": count, "ok": int((table["status"] == "ok").sum()), "wall_s": wall, "makespan_s": makespan,
           "per_target_ms": 1000 * makespan / count, "peak_rss_mb": peak[0] / 2**20,
           "driver_cpu_ms_per_target": 1000 * driver_cpu / count, "start_rss_mb": baseline_rss / 2**20}
    if rerun:  # the nightly case: the same targets again, every step in the store, into the same folder
        again, wall, driver_cpu = timed_run()
        row.update(rerun_cached=int(again["cached"].sum()), rerun_wall_ms_per_target=1000 * wall / count,
                   rerun_driver_cpu_ms_per_target=1000 * driver_cpu / count,
                   rerun_outputs_written=int(again["outputs_written"].sum()) if "outputs_written" in again else count)
    shutil.rmtree(work, ignore_errors=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--plots", action="store_true", help="write the three plots per target")
    parser.add_argument("--max-in-flight", type=int, default=8,
                        help="targets admitted at once (a cluster's setting: quick steps batch over them)")
    parser.add_argument("--rerun", action="store_true",
                        help="run the same targets a second time into the same folder (all in the store)")
    parser.add_argument("--compare-with", metavar="REV", help="also run each size on the code of this commit")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_size(args.child, args.plots, args.max_in_flight, args.rerun)))
        return
    codes = {"this code": None}
    if args.compare_with:
        worktree = Path(tempfile.mkdtemp(prefix="foldflow-base-")) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.compare_with], check=True,
                       cwd=HERE.parent, capture_output=True)
        codes[args.compare_with] = worktree
    rows = []
    for size in map(int, args.sizes.split(",")):
        for code, tree in codes.items():  # side by side: each size on each code before the next size
            env = {**os.environ, **({"PYTHONPATH": str(tree)} if tree else {})}
            output = subprocess.run([sys.executable, __file__, "--child", str(size), "--max-in-flight",
                                     str(args.max_in_flight), *(["--plots"] if args.plots else []),
                                     *(["--rerun"] if args.rerun else [])],
                                    check=True, capture_output=True, text=True, env=env,
                                    cwd=tree or HERE.parent).stdout  # Ray's workers import from the driver's cwd
            rows.append({"code": code, **json.loads(output.strip().splitlines()[-1])})
            print(f"{size} targets done on {code}", flush=True)
    if args.compare_with:
        subprocess.run(["git", "worktree", "remove", "--force", str(codes[args.compare_with])], cwd=HERE.parent)
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"plots {'on' if args.plots else 'off'}")
    print("code        targets  ok     wall s  makespan s  per-target ms  driver CPU ms/target  driver peak RSS MB")
    for row in rows:
        print(f"{row['code']:11} {row['targets']:7d} {row['ok']:5d} {row['wall_s']:9.1f} {row['makespan_s']:11.1f} "
              f"{row['per_target_ms']:14.1f} {row['driver_cpu_ms_per_target']:20.1f} {row['peak_rss_mb']:18.1f}")
    if args.rerun:
        print("code        targets  re-run: from the store  outputs written  wall ms/target  driver CPU ms/target")
        for row in rows:
            print(f"{row['code']:11} {row['targets']:7d} {row['rerun_cached']:23d} {row['rerun_outputs_written']:16d} "
                  f"{row['rerun_wall_ms_per_target']:15.1f} {row['rerun_driver_cpu_ms_per_target']:21.1f}")
    for code in codes:
        mine = [r for r in rows if r["code"] == code]
        print(f"{code}: driver peak RSS growth {mine[0]['targets']} -> {mine[-1]['targets']} targets: "
              f"{mine[-1]['peak_rss_mb'] - mine[0]['peak_rss_mb']:+.1f} MB")


if __name__ == "__main__":
    main()
