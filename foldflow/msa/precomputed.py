"""Precomputed alignments given by the user, checked against the target.

Two layouts are accepted under a directory ``DIR``:

* ``DIR/<target_id>/`` holding AlphaFold-named files (``uniref90_hits.sto``,
  ``mgnify_hits.sto``, ``small_bfd_hits.sto``, ``bfd_uniref_hits.a3m`` or
  OpenFold's ``bfd_uniclust_hits.a3m``; other ``*.a3m``/``*.sto`` files count
  as ``custom``), as AlphaFold writes them to ``msas/``;
* ``DIR/<target_id>.a3m`` or ``.sto``: one MSA, e.g. from ColabFold.

A complex's chains are looked up as ``<complex_id>/<chain_id>`` (``DIR/dimer/A/``,
the layout AlphaFold-Multimer writes under ``msas/``); a ``uniprot_hits.sto``
there is the chain's MSA for species pairing.

Every file's query row must be the target's sequence; a file that does not
match raises :class:`MsaMismatchError`, it is never used silently.
Stockholm hit lists are truncated to the configured ``max_hits`` as
AlphaFold's ``run_msa_tool`` does for precomputed MSAs.
"""

from __future__ import annotations

from pathlib import Path

from alphafold.data import parsers

from foldflow.alignment import Alignment, check_query_row
from foldflow.msa.engine import MsaEngine, MsaStep
from foldflow.steps import VERSIONS, alignment_content_key
from foldflow.targets import Target

_DATABASE_BY_STEM = {
    "uniref90_hits": "uniref90",
    "mgnify_hits": "mgnify",
    "small_bfd_hits": "small_bfd",
    "bfd_uniref_hits": "bfd",
    "bfd_uniclust_hits": "bfd",
    "uniprot_hits": "uniprot",
}
_FORMATS = {".sto": "sto", ".a3m": "a3m"}


def _read(path: Path, database: str, max_hits: dict[str, int]) -> Alignment:
    fmt = _FORMATS[path.suffix]
    limit = max_hits.get(database)
    text = parsers.truncate_stockholm_msa(str(path), limit) if fmt == "sto" and limit else path.read_text()
    return Alignment(database, fmt, text)


def precomputed_files(directory: Path, target_id: str) -> list[tuple[Path, str]]:
    """(file, database) pairs for the target, empty when it has none."""
    folder = directory / target_id
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.suffix in _FORMATS and p.is_file())
        return [(p, _DATABASE_BY_STEM.get(p.stem, "custom")) for p in files]
    for suffix in _FORMATS:
        single = directory / f"{target_id}{suffix}"
        if single.is_file():
            return [(single, "custom")]
    return []


def load_precomputed(directory: Path, target_id: str, sequence: str,
                     max_hits: dict[str, int]) -> list[Alignment]:
    """The target's precomputed alignments, each checked to belong to ``sequence``."""
    alignments = []
    for path, database in precomputed_files(directory, target_id):
        alignment = _read(path, database, max_hits)
        check_query_row(alignment, sequence, f"target '{target_id}': precomputed MSA {path}")
        alignments.append(alignment)
    return alignments


class PrecomputedEngine(MsaEngine):
    """Alignments the user gives under ``msa.precomputed_dir``, found by target id, keyed by content.

    They are inputs, not results: read (and checked) each time, never stored again.
    """

    name = "precomputed"
    database_format = None  # reads given files
    resident = False
    stores_results = False

    @property
    def version(self) -> str:
        return VERSIONS["foldflow"]

    def plan(self, target: Target, pairing: bool = False) -> list[MsaStep]:
        max_hits = {db.name: db.max_hits for db in self.config.databases if db.max_hits}
        found = load_precomputed(self.config.precomputed_dir, target.id, target.sequence, max_hits)
        return [MsaStep(a.database, alignment_content_key(a), lambda a=a: a) for a in found]
