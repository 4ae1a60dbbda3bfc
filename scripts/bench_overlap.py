"""Benchmark 3: how well the pipeline overlaps MSA search with model work.

The MSA stage is real (pyhmmer jackhmmer on CPU); the model stage is the
SIMULATED device (`simulated_device`: it sleeps, as if a GPU were busy, and
predicts nothing), so the two stages use separate resources even on this
2-core machine. Overlap efficiency = lower bound / makespan, where the lower
bound is the busiest stage's total work divided by its actors. 1.0 is perfect
overlap; a pipeline that did one stage after the other would score about 0.5
when the stages are balanced.

Usage: .venv/bin/python scripts/bench_overlap.py [--targets 40] [--device-seconds 0.3] [--host-work] [--database PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTEOME = HERE / "data" / "proteome_938293.faa"  # 2,100 real proteins (see data/SOURCES.md)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=40)
    parser.add_argument("--iterations", type=int, default=3, help="jackhmmer iterations (-N): the MSA stage's weight")
    parser.add_argument("--device-seconds", type=float, default=None,
                        help="simulated device time per target (default: the measured mean MSA time)")
    parser.add_argument("--database", type=Path, default=PROTEOME,
                        help="extra database searched with the bundled ones (default: the 2,100-protein proteome)")
    parser.add_argument("--host-work", action="store_true",
                        help="the device's actor also does AlphaFold's process_features on its CPU per target, "
                             "as a GPU node's host does")
    args = parser.parse_args()

    import foldflow
    from foldflow.config import DatabaseConfig, RunConfig, bundled_databases

    databases = bundled_databases()
    if args.database:
        databases[1] = DatabaseConfig(name="small_bfd", path=args.database)  # a larger search, same code
    # Distinct proteins of 40-100 residues: the store keys on sequences, so a repeated sequence would
    # be predicted once and the benchmark would measure less work than it says.
    proteins = {}
    for record in PROTEOME.read_text().split(">")[1:]:
        name, _, body = record.partition("\n")
        sequence = "".join(body.split())
        if 40 <= len(sequence) <= 100 and sequence not in proteins.values():
            proteins[name.split()[0]] = sequence
    chosen = list(proteins.items())[:: max(1, len(proteins) // args.targets)][: args.targets]
    work = Path(tempfile.mkdtemp(prefix="foldflow-overlap-"))
    fasta = work / "targets.fasta"
    fasta.write_text("".join(f">{name}\n{sequence}\n" for name, sequence in chosen))

    def configured(device_seconds: float, store: str) -> RunConfig:
        return RunConfig(store=store, msa={"databases": databases, "iterations": args.iterations}, plots=False,
                         relax={"models_to_relax": "none"},
                         model={"names": [f"simulated_device_{device_seconds}s{'_host' if args.host_work else ''}"]},
                         pipeline={"progress": False, "max_in_flight": 4, "longest_first": False})

    device_seconds = args.device_seconds
    if device_seconds is None:  # calibrate: make the simulated device as busy as the search
        probe = foldflow.predict(fasta, work / "probe", configured(0.0, str(work / "probe-store"))).to_pandas()
        device_seconds = round(float((probe["seconds_msa"] + probe["seconds_features"]).mean()), 3)

    table = foldflow.predict(fasta, work / "out", configured(device_seconds, str(work / "store"))).to_pandas()
    msa_busy = float((table["seconds_msa"] + table["seconds_features"]).sum())
    model_busy = float(table["seconds_model"].sum())
    makespan = float(table["ended_output"].max() - table["started_msa"].min())
    bound = max(msa_busy, model_busy)
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"targets {len(table)}, 1 MSA actor (real pyhmmer jackhmmer -N {args.iterations}, databases: "
          f"{', '.join(d.path.name for d in databases)}), "
          f"1 SIMULATED device actor ({device_seconds} s per target"
          f"{', plus AlphaFold process_features on its CPU' if args.host_work else ''})")
    print(f"MSA stage busy {msa_busy:.2f} s, device stage busy {model_busy:.2f} s, sequential would be "
          f"{msa_busy + model_busy:.2f} s")
    print(f"makespan {makespan:.2f} s, lower bound (busiest stage) {bound:.2f} s, "
          f"overlap efficiency {bound / makespan:.3f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
