"""HHblits (HH-suite) through AlphaFold 2.3's own wrapper, with AlphaFold's flags.

``alphafold.data.tools.hhblits.HHBlits`` runs ``hhblits -n 3 -e 0.001 -maxseq 1000000 -realign_max 100000
-maxfilt 100000 -min_prefilter_hits 1000`` against every database prefix given (AlphaFold searches BFD
and UniRef30 in one call: a ``bfd`` database with ``extra_paths: [uniref30 prefix]``). HHblits has no
server mode: each query is one process, and the databases stay resident in the page cache between
queries (one warm actor per node reads them once from disk).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alphafold.data.tools.hhblits import HHBlits

from foldflow.config import DatabaseConfig
from foldflow.alignment import QUERY_NAME, Alignment
from foldflow.msa.engine import ToolSearchEngine

# Files hhblits reads for one database prefix (the _hhm files are optional: BFD ships without them).
HHBLITS_DATABASE_SUFFIXES = ("_a3m.ffdata", "_a3m.ffindex", "_cs219.ffdata", "_cs219.ffindex")
# The files of a PDB70 database prefix hhsearch reads (templates).
PDB70_SUFFIXES = (*HHBLITS_DATABASE_SUFFIXES, "_hhm.ffdata", "_hhm.ffindex")


def missing_hhblits_files(prefix: Path) -> list[Path]:
    return [path for suffix in HHBLITS_DATABASE_SUFFIXES if not (path := Path(f"{prefix}{suffix}")).is_file()]


def hhblits_search(binary: str, sequence: str, prefixes: list[Path], cpus: int) -> str:
    """A3M of one query (named :data:`QUERY_NAME`) against the database prefixes, by AlphaFold's wrapper."""
    runner = HHBlits(binary_path=binary, databases=[str(p) for p in prefixes], n_cpu=cpus)
    with tempfile.NamedTemporaryFile("w", suffix=".fasta") as query:
        query.write(f">{QUERY_NAME}\n{sequence}\n")
        query.flush()
        (result,) = runner.query(query.name)
    return result["a3m"]


class HHblitsEngine(ToolSearchEngine):
    """hhblits with AlphaFold 2.3's flags against HH-suite databases (BFD, UniRef30)."""

    name = "hhblits"
    database_format = "hhblits"
    resident = False  # one process per query; the databases stay in the page cache
    binary_setting = "hhblits_binary"
    version_args = ("-h", "HHblits")

    def key_settings(self) -> dict:
        return {"flags": "alphafold-2.3"}  # the wrapper's defaults; extra_paths are in the database fingerprint

    def missing(self, database: DatabaseConfig) -> str | None:
        for prefix in (database.path, *database.extra_paths):
            if files := missing_hhblits_files(prefix):
                return (f"database '{database.name}': no HH-suite database at {prefix} (missing {files[0].name}; "
                        f"build one with: foldflow databases build hhblits FASTA {prefix})")
        return None

    def search(self, sequence: str, database: DatabaseConfig) -> Alignment:
        a3m = hhblits_search(self.binary, sequence, [database.path, *database.extra_paths],
                             self.config.cpus_per_search)
        return Alignment(database.name, "a3m", a3m)
