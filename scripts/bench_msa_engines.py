"""Benchmark 7: the three MSA engines side by side: seconds per query and MSA depth, one batch of 50 queries.

Every engine searches the same 50 proteins of the bundled proteome (every 42nd) against the same sequences,
through foldflow's engine classes (no Ray), with each engine's product defaults:

* pyhmmer: jackhmmer, AlphaFold 2.3's thresholds and hit limit, the FASTA held in memory;
* hhblits: AlphaFold 2.3's flags (3 iterations) on an HH-suite database built from the FASTA;
* mmseqs2: colabfold_search's calls (3 iterations, -s 8) on a ColabFold-layout database built from the
  FASTA (clustered at 30 % identity, indexed), all 50 queries in one call.

Databases: the bundled UniRef90 sample (1,000 sequences) and the 2,100-protein proteome. Each engine writes
its 50 alignments to files under the work folder; depth is the rows of each alignment (query included).
Database build times are reported apart from search times.

Usage: .venv/bin/python scripts/bench_msa_engines.py [--queries 50] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTEOME = HERE / "data" / "proteome_938293.faa"  # 2,100 real proteins (see data/SOURCES.md)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from foldflow.config import BUNDLED_DB_DIR, DatabaseConfig, MsaConfig
    from foldflow.msa.databases import DATABASE_FORMATS, read_fasta
    from foldflow.msa.hhblits import HHblitsEngine
    from foldflow.msa.jackhmmer import PyhmmerEngine
    from foldflow.msa.mmseqs import MMseqs2Engine

    proteome = read_fasta(PROTEOME)
    queries = [sequence for _, _, sequence in proteome[::42][: args.queries]]
    work = Path(tempfile.mkdtemp(prefix="foldflow-msa-engines-"))
    print(f"# {len(queries)} queries (every 42nd protein of the proteome, {min(map(len, queries))}-"
          f"{max(map(len, queries))} residues), {args.threads} threads, {platform.node()}, "
          f"{os.cpu_count()} CPUs; work folder {work}")
    rows = []
    for label, fasta in (("UniRef90 sample (1,000)", BUNDLED_DB_DIR / "uniref90_mini.fasta"),
                         ("proteome (2,100)", PROTEOME)):
        built = {engine: DATABASE_FORMATS[engine].build(fasta, work / label.split()[0] / engine, threads=args.threads)
                 for engine in ("hhblits", "mmseqs2")}
        databases = {
            "pyhmmer": DatabaseConfig(name="uniref90", path=fasta, max_hits=10_000, engine="pyhmmer"),
            "hhblits": DatabaseConfig(name="bfd", path=built["hhblits"].prefix, engine="hhblits"),
            "mmseqs2": DatabaseConfig(name="uniref30", path=built["mmseqs2"].prefix, engine="mmseqs2"),
        }
        for name, database in databases.items():
            config = MsaConfig(databases=[database], cpus_per_search=args.threads, mmseqs_batch_size=len(queries))
            engine = {"pyhmmer": PyhmmerEngine(config),
                      "hhblits": HHblitsEngine(config),
                      "mmseqs2": MMseqs2Engine(config, upcoming=[(q, False) for q in queries])}[name]
            engine.warm()
            out = work / label.split()[0] / f"{name}-alignments"
            out.mkdir(parents=True)
            start = time.perf_counter()
            depths = []
            for i, query in enumerate(queries):
                alignment = engine.search(query, database)
                (out / f"{i}.{alignment.format}").write_text(alignment.text)
                depths.append(alignment.depth)
            seconds = time.perf_counter() - start
            calls = getattr(engine, "calls", len(queries))
            rows.append((label, name, built[name].seconds if name in built else 0.0, seconds / len(queries),
                         statistics.mean(depths), statistics.median(depths), sum(d > 1 for d in depths), calls))
            print(f"{label}: {name} done in {seconds:.1f} s", flush=True)

    print("\n| database | engine | build s | search s / query | mean depth | median depth | queries with hits "
          "| tool calls |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for label, name, build, per_query, mean, median, with_hits, calls in rows:
        print(f"| {label} | {name} | {build:.1f} | {per_query:.3f} | {mean:.1f} | {median:.0f} | "
              f"{with_hits}/{len(queries)} | {calls} |")
    for label in dict.fromkeys(r[0] for r in rows):
        by_engine = {r[1]: r[3] for r in rows if r[0] == label}
        print(f"{label}: seconds per query relative to pyhmmer: "
              + ", ".join(f"{name} {value / by_engine['pyhmmer']:.2f}x" for name, value in by_engine.items()))


if __name__ == "__main__":
    main()
