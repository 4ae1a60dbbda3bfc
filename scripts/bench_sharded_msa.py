"""Benchmark 5: a database held as shards across actors: same hits, time and memory per shard count.

Runs the real MSA stage (pyhmmer jackhmmer, AlphaFold's settings) through the
pipeline with the SIMULATED device as model (0 s; only the MSA stage is
measured), once per shard count. Checks that every shard count writes the
same MSAs as one actor holding the whole database, and reports the MSA stage
time and, per shard actor, the sequences and residues it holds and its RSS.

Usage: .venv/bin/python scripts/bench_sharded_msa.py [--shards 1,2,4] [--targets 24] [--database PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED_PROTEOME = HERE.parent.parent / "shared" / "data" / "db" / "proteome_938293.faa"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", default="1,2,4")
    parser.add_argument("--targets", type=int, default=24)
    parser.add_argument("--database", type=Path, default=SHARED_PROTEOME if SHARED_PROTEOME.exists() else None,
                        help="database to shard (default: the shared 2,100-protein proteome; else bundled UniRef90)")
    args = parser.parse_args()

    import foldflow
    from foldflow.config import DatabaseConfig, RunConfig, bundled_databases
    from foldflow.runs import RunBook
    from foldflow.store import Store

    database = DatabaseConfig(name="uniref90", path=args.database, max_hits=10_000) if args.database \
        else bundled_databases()[0]
    work = Path(tempfile.mkdtemp(prefix="foldflow-shards-"))
    records = (HERE / "data" / "bench_targets.fasta").read_text().split(">")[1:][: args.targets]
    fasta = work / "targets.fasta"
    fasta.write_text("".join(">" + r for r in records))

    rows, reference = [], None
    for count in map(int, args.shards.split(",")):
        store = str(work / f"store-{count}")
        config = RunConfig(store=store, plots=False, msa={"databases": [database], "shards": count,
                                "engine": "pyhmmer_sharded" if count > 1 else "pyhmmer"},
                           relax={"models_to_relax": "none"}, model={"names": ["simulated_device_0s"]},
                           pipeline={"progress": False})
        run = foldflow.predict(fasta, work / f"out-{count}", config, run_id=f"shards-{count}")
        table = run.to_pandas()
        msas = {str(p.relative_to(run.out_dir)): p.read_text() for p in run.out_dir.glob("*/msas/*")}
        reference = reference or msas
        shard_workers = RunBook(Store(store)).state(f"shards-{count}").get("shard_workers") or []
        rows.append({
            "shards": count, "identical": msas == reference, "hits": int(table[f"msa_depth_{database.name}"].sum() - len(table)),
            "msa_seconds": float(table["seconds_msa"].sum()),
            "per_shard": [(w["sequences"], w["residues"], w["rss_mb"]) for w in shard_workers]})
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"database {database.path.name}; {len(records)} real queries; jackhmmer -N 1 with AlphaFold's thresholds")
    print("shards  same MSAs as 1 actor  hits    MSA stage s  per shard actor: sequences / residues / RSS MB")
    for row in rows:
        per_shard = ", ".join(f"{n} / {r} / {m:.0f}" for n, r, m in row["per_shard"]) or "(one MSA actor, whole db)"
        print(f"{row['shards']:6d}  {str(row['identical']):>20}  {row['hits']:8d}  {row['msa_seconds']:11.2f}  {per_shard}")


if __name__ == "__main__":
    main()
