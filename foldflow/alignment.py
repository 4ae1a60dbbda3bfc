"""The :class:`Alignment` record shared by every MSA engine."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

from alphafold.data import parsers

# Order of databases in the MSA features, as in AlphaFold's DataPipeline (uniref90, bfd, mgnify), with
# ColabFold's (UniRef30, then its environmental database) after BFD; "custom" is a user-supplied A3M.
FEATURE_ORDER = ("uniref90", "bfd", "small_bfd", "uniref30", "colabfold_envdb", "custom", "mgnify")

# AlphaFold's file names for each database's hits, as written under msas/.
FILE_NAMES = {
    "uniref90": "uniref90_hits.sto",
    "mgnify": "mgnify_hits.sto",
    "small_bfd": "small_bfd_hits.sto",
    "bfd": "bfd_uniref_hits.a3m",
    "uniprot": "uniprot_hits.sto",
}


# Searches name the query with this neutral name, so stored alignments do not depend on the FASTA id;
# outputs rename it to the target's id (:meth:`Alignment.with_query_name`).
QUERY_NAME = "query"
_STOCKHOLM_QUERY = re.compile(rf"^(#=G[SR] )?{QUERY_NAME}(\s+)", re.MULTILINE)


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

    def with_query_name(self, name: str) -> Alignment:
        """The alignment with a search's neutral query name replaced by ``name`` (Stockholm rows keep
        their columns); alignments given by the user are returned as they are."""
        if self.format != "sto" or not self.text.startswith("# STOCKHOLM"):
            return self

        def rename(match: re.Match) -> str:
            width = len(QUERY_NAME) + len(match.group(2))
            return f"{match.group(1) or ''}{name}{' ' * max(1, width - len(name))}"

        return replace(self, text=_STOCKHOLM_QUERY.sub(rename, self.text))

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
