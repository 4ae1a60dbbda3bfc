"""Benchmark 8: a design campaign streamed through Ray Data, 100 vs 2,000 designs in one run: designs per
minute and the peak memory of the driver and of Ray's worker processes (memory must not grow with the count).

Both campaigns run the same pipeline with the same settings, each in its own driver process (its own local
Ray), into its own output folder: generated helical bundles -> ProteinMPNN (real weights, CPU) -> refold ->
Parquet. The refold model is ``simulated_device_0.01s`` (a 10 ms sleep and a straight CA trace, no
structure: refolding is measured in benchmark 1; here it would only make the run hours long on 2 cores);
TM-align still compares every refolded trace with its backbone. A sampler reads the resident memory (RSS) of
the driver and of every process under it (Ray's workers and actors, raylet, GCS) every 0.2 s.

Usage: .venv/bin/python scripts/bench_design.py [--counts 100 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REFOLD_MODEL = "simulated_device_0.01s"


def campaign_config(designs: int, store: Path) -> dict:
    return {"store": str(store),
            "design": {"designs": designs, "sequences_per_backbone": 1, "refold_model": REFOLD_MODEL,
                       "batch_size": 4, "mpnn_actors": [1, 1], "refold_actors": [1, 1]},
            "pipeline": {"progress": False}}


def worker_kind(process: psutil.Process) -> str:
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return "gone"
    for kind in ("SequenceDesigner", "Refolder"):
        if kind in command:
            return kind
    return "other Ray workers" if "default_worker.py" in command or "ray::" in command else "Ray services"


class MemorySampler(threading.Thread):
    """Peak RSS (MiB) of a driver process and, per kind, of the processes under it."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.driver = psutil.Process(pid)
        self.peaks: dict[str, float] = {}
        self.peak_total = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            try:
                processes = [self.driver, *self.driver.children(recursive=True)]
            except psutil.Error:
                continue
            total = 0.0
            for process in processes:
                try:
                    rss = process.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                kind = "driver" if process.pid == self.driver.pid else worker_kind(process)
                self.peaks[kind] = max(self.peaks.get(kind, 0.0), rss)
                total += rss
            self.peak_total = max(self.peak_total, total)


def run_campaign(designs: int, work: Path) -> dict:
    import yaml

    folder = work / f"campaign-{designs}"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(campaign_config(designs, folder / "store")))
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "foldflow", "design", "--config", str(folder / "config.yaml"),
         "--out", str(folder / "out"), "--no-progress"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    sampler = MemorySampler(process.pid)
    sampler.start()
    output = process.communicate()[0]
    seconds = time.perf_counter() - start
    sampler.stopped.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"campaign of {designs} failed:\n{output[-3000:]}")
    import pyarrow.parquet as pq

    table = pq.read_table(folder / "out" / "designs")
    assert table.num_rows == designs and len(set(table.column("design_id").to_pylist())) == designs
    return {"designs": designs, "rows": table.num_rows, "seconds": seconds,
            "designs_per_minute": designs / seconds * 60, "peak_total_mib": sampler.peak_total,
            **{f"peak_{kind}_mib": peak for kind, peak in sorted(sampler.peaks.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 2000])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="foldflow-bench-design-"))
    print(f"# design campaigns {args.counts}: refold {REFOLD_MODEL}, ProteinMPNN v_48_020 on CPU, "
          f"{platform.node()}, {os.cpu_count()} CPUs; work folder {work}", flush=True)
    results = [run_campaign(count, work) for count in args.counts]
    kinds = sorted({key for result in results for key in result if key.startswith("peak_")})
    print(f"{'designs':>8} {'seconds':>8} {'designs/min':>12} " + " ".join(f"{k[5:-4]:>18}" for k in kinds))
    for result in results:
        print(f"{result['designs']:>8} {result['seconds']:>8.1f} {result['designs_per_minute']:>12.1f} "
              + " ".join(f"{result.get(k, 0.0):>18.0f}" for k in kinds))
    first, last = results[0], results[-1]
    print(f"# {last['designs']} / {first['designs']} designs: peak driver RSS x"
          f"{last['peak_driver_mib'] / first['peak_driver_mib']:.2f}, peak total RSS x"
          f"{last['peak_total_mib'] / first['peak_total_mib']:.2f}, designs per minute x"
          f"{last['designs_per_minute'] / first['designs_per_minute']:.2f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
