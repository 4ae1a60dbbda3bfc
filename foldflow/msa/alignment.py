"""The :class:`Alignment` record shared by every MSA engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from alphafold.data import parsers

# Order of databases in the MSA features, as in AlphaFold's DataPipeline
# (uniref90, bfd, mgnify); "custom" is a user-supplied A3M (e.g. ColabFold's).
FEATURE_ORDER = ("uniref90", "bfd", "small_bfd", "custom", "mgnify")

# AlphaFold's file names for each database's hits, as written under msas/.
FILE_NAMES = {
    "uniref90": "uniref90_hits.sto",
    "mgnify": "mgnify_hits.sto",
    "small_bfd": "small_bfd_hits.sto",
    "bfd": "bfd_uniref_hits.a3m",
    "uniprot": "uniprot_hits.sto",
}


class MsaMismatchError(ValueError):
    """An MSA whose query row is not the target's sequence."""


@dataclass(frozen=True)
class Alignment:
    """One database's alignment for one query."""

    database: str
    format: Literal["sto", "a3m"]
    text: str

    @property
    def file_name(self) -> str:
        default = FILE_NAMES.get(self.database)
        if default and default.endswith(self.format):
            return default
        return f"{self.database}_hits.{self.format}"

    def parse(self) -> parsers.Msa:
        if self.format == "sto":
            return parsers.parse_stockholm(self.text)
        return parsers.parse_a3m(self.text)

    @property
    def depth(self) -> int:
        return len(self.parse().sequences)


def check_query_row(alignment: Alignment, sequence: str, where: str) -> None:
    """Raise MsaMismatchError unless the alignment's first row is ``sequence``."""
    msa = alignment.parse()
    if not msa.sequences:
        raise MsaMismatchError(f"{where}: alignment has no sequences")
    query = msa.sequences[0].replace("-", "").upper()
    if query != sequence:
        position = next((i for i, (a, b) in enumerate(zip(query, sequence), 1) if a != b),
                        min(len(query), len(sequence)) + 1)
        raise MsaMismatchError(
            f"{where}: query row ({len(query)} residues) does not match the target sequence "
            f"({len(sequence)} residues), first difference at position {position}")
