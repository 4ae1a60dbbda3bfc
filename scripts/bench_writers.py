"""Benchmark 12: throughput against the number of output writers, on a local multi-node Ray.

A Ray of three nodes on this machine (ray.cluster_utils.Cluster: a head that offers no CPUs to actors, as a
cluster's head runs the driver only, and two worker nodes) runs the same batch once per writer count. Targets
have precomputed (query-only) A3M MSAs; the model is the SIMULATED device (`simulated_device_<s>s`: a sleep, no
CPU, as if a GPU were busy) on enough model actors that the model stage is never the bound; plots are on, so
writing a target's folder is the CPU-heavy stage. Writers go on any node (`pipeline.writer_nodes: any`; the
nodes share this machine's disk). Each count runs in a fresh child process with a fresh cluster.

Printed per writer count, all measured in the run: makespan (first MSA start to last output end, from the
summary), targets per second, driver CPU ms per target (the driver process's CPU time during the run), and
writer seconds per target (the output stage's seconds in the summary, measured on the writers).

Usage: .venv/bin/python scripts/bench_writers.py [--targets 200] [--writers 1,2,4] [--device-seconds 0.5]
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
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL_ACTORS = 16


def one_count(targets: int, writers: int, device_seconds: float) -> dict:
    """Runs in a child process: a fresh three-node Ray, one run, its figures."""
    import psutil
    import ray
    from ray.cluster_utils import Cluster

    import foldflow
    from foldflow.config import RunConfig
    from foldflow.runs import RunBook
    from foldflow.store import Store
    from bench_orchestration import query_only_targets

    work = Path(tempfile.mkdtemp(prefix="foldflow-writers-"))
    msas = query_only_targets(work, targets)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=4)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    config = RunConfig(store=str(work / "store"), plots=True,
                       msa={"precomputed_dir": msas, "require_precomputed": True},
                       relax={"models_to_relax": "none"}, model={"names": [f"simulated_device_{device_seconds}s"]},
                       pipeline={"progress": False, "max_in_flight": 4 * MODEL_ACTORS, "model_actors": MODEL_ACTORS,
                                 "writer_actors": writers, "writer_nodes": "any", "writer_actor_cpus": 1})
    process = psutil.Process()
    cpu = process.cpu_times()
    start = time.perf_counter()
    run = foldflow.predict(work / "targets.fasta", work / "out", config)
    wall = time.perf_counter() - start
    used = process.cpu_times()
    table = run.to_pandas()
    writer_nodes = {w["node_id"] for w in RunBook(Store(config.store)).state(run.run_id)["workers"]["writer"]}
    ray.shutdown()
    cluster.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    makespan = float(table["ended_output"].max() - table["started_msa"].min())
    return {"writers": writers, "targets": targets, "ok": int((table["status"] == "ok").sum()), "wall_s": wall,
            "makespan_s": makespan, "targets_per_s": targets / makespan,
            "driver_cpu_ms_per_target": 1000 * (used.user + used.system - cpu.user - cpu.system) / targets,
            "writer_s_per_target": float(table["seconds_output"].mean()), "writer_nodes": len(writer_nodes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--writers", default="1,2,4")
    parser.add_argument("--device-seconds", type=float, default=0.5)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_count(args.targets, args.child, args.device_seconds)))
        return
    rows = []
    for writers in map(int, args.writers.split(",")):
        output = subprocess.run([sys.executable, __file__, "--child", str(writers), "--targets", str(args.targets),
                                 "--device-seconds", str(args.device_seconds)],
                                check=True, capture_output=True, text=True, cwd=HERE.parent).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        print(f"{writers} writers done", flush=True)
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; three Ray nodes "
          f"(head 0 CPUs, two of 4 logical CPUs); {args.targets} targets; {MODEL_ACTORS} model actors sleeping "
          f"{args.device_seconds} s per prediction; plots on")
    print("writers  on nodes  ok   makespan s  targets/s  speed-up  driver CPU ms/target  writer s/target")
    for row in rows:
        print(f"{row['writers']:7d} {row['writer_nodes']:9d} {row['ok']:4d} {row['makespan_s']:11.1f} "
              f"{row['targets_per_s']:10.2f} {row['targets_per_s'] / rows[0]['targets_per_s']:8.2f}x "
              f"{row['driver_cpu_ms_per_target']:20.1f} {row['writer_s_per_target']:16.3f}")


if __name__ == "__main__":
    main()
