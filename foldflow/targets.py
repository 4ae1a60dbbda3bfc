"""FASTA input -> validated, hashed :class:`Target` records, monomers and complexes.

A complex is written either as one record whose chains are separated by ``:``
(ColabFold's convention: ``>dimer`` then ``SEQA:SEQB``) or as several records
carrying the same ``complex=<name>`` tag in their headers (``>chainA
complex=dimer``, ``>chainB complex=dimer``), joined in file order into the
target ``<name>``. Chains are named A, B, ... in that order.

Every problem is reported as an :class:`InvalidTarget` (or, for problems with
the file as a whole, an :class:`InputError`) whose message is one line naming
the record and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from Bio.SeqIO.FastaIO import SimpleFastaParser

from foldflow.errors import FoldflowError

AMINO_ACIDS = frozenset("ACDEFGHIKLMNPQRSTVWYX")
NUCLEOTIDES = frozenset("ACGTUN")
FASTA_SUFFIXES = (".fasta", ".fa", ".faa", ".fas")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_MIN_NUCLEOTIDE_CHECK_LENGTH = 10
CHAIN_SEPARATOR = ":"
# AlphaFold writes chain ids A-Z, a-z, 0-9 (alphafold.common.protein.PDB_MAX_CHAINS).
MAX_CHAINS = 62
_COMPLEX_TAG = re.compile(r"(?:^|\s)complex=(\S+)")


class InputError(FoldflowError, ValueError):
    """The input as a whole cannot be read (missing, empty, binary, no FASTA)."""


@dataclass(frozen=True)
class Target:
    """One monomer or complex to predict."""

    id: str  # safe to use as a file name
    description: str  # the full FASTA header
    sequence: str  # a complex's chains joined by ":" (ColabFold's notation)
    source: str  # file the record came from

    @cached_property  # (the scheduler asks for a target's chains at every step)
    def chains(self) -> tuple[str, ...]:
        return tuple(self.sequence.split(CHAIN_SEPARATOR))

    @property
    def is_complex(self) -> bool:
        return len(self.chains) > 1

    @property
    def length(self) -> int:
        """Residues in all chains: what the model's length bucket counts."""
        return sum(len(chain) for chain in self.chains)

    @property
    def sequence_hash(self) -> str:
        return sequence_hash(self.sequence)

    @cached_property
    def distinct_chains(self) -> dict[str, str]:
        """Chain id of each distinct sequence's first occurrence -> the sequence (a homomer's chain once)."""
        first: dict[str, str] = {}
        for index, sequence in enumerate(self.chains):
            first.setdefault(sequence, chain_id(index))
        return {chain: sequence for sequence, chain in first.items()}

    @property
    def pairing(self) -> bool:
        """Its chains' MSAs are paired by species: AlphaFold-Multimer pairs only a heteromer's."""
        return len(set(self.chains)) > 1

    def chain(self, chain: str) -> Target:
        """One distinct chain as a target of its own, named ``<id>/<chain>`` in a complex."""
        return Target(f"{self.id}/{chain}" if self.is_complex else self.id, self.description,
                      self.distinct_chains[chain], self.source)


@dataclass(frozen=True)
class InvalidTarget:
    """A record that cannot be predicted, with the reason in one line."""

    id: str
    description: str
    source: str
    error: str

    def message(self) -> str:
        return f"{self.source}: target '{self.description or self.id}': {self.error}"


@dataclass(frozen=True)
class TargetBatch:
    targets: list[Target]
    invalid: list[InvalidTarget]


def sequence_hash(sequence: str) -> str:
    return hashlib.sha256(sequence.encode("ascii")).hexdigest()


def safe_target_id(raw_id: str) -> str:
    """A file-name-safe id: runs of characters other than [A-Za-z0-9._-] become '_'."""
    return _UNSAFE_CHARS.sub("_", raw_id).strip("_")


def _path_escape_problem(raw_id: str) -> str | None:
    parts = re.split(r"[/\\]", raw_id)
    if raw_id.startswith(("/", "\\", "~")) or ".." in parts or re.match(r"^[A-Za-z]:[/\\]", raw_id):
        return f"id '{raw_id}' would write outside the output directory"
    return None


def chain_id(index: int) -> str:
    """AlphaFold's chain id of the ``index``-th chain (0-based): A-Z, then a-z, then 0-9."""
    from alphafold.common.protein import PDB_CHAIN_IDS

    return PDB_CHAIN_IDS[index]


def _chain_problem(chain: str) -> str | None:
    if not chain:
        return "empty sequence"
    bad = sorted(set(chain) - AMINO_ACIDS)
    if bad:
        position = next(i for i, c in enumerate(chain, 1) if c in bad)
        shown = ", ".join(repr(c) for c in bad[:5])
        return f"characters that are not amino acids: {shown} (first at position {position})"
    if len(chain) >= _MIN_NUCLEOTIDE_CHECK_LENGTH and set(chain) <= NUCLEOTIDES:
        return "looks like a nucleotide sequence (only A/C/G/T/U/N); give the protein sequence"
    return None


def _sequence_problem(sequence: str, max_length: int) -> str | None:
    """What is wrong with a monomer's or a complex's (":"-joined) sequence, in one line."""
    chains = sequence.split(CHAIN_SEPARATOR)
    if len(chains) > MAX_CHAINS:
        return f"{len(chains)} chains, more than the {MAX_CHAINS} AlphaFold can name"
    for index, chain in enumerate(chains):
        problem = _chain_problem(chain)
        if problem:
            return f"chain {chain_id(index)}: {problem}" if len(chains) > 1 else problem
    length = sum(len(c) for c in chains)
    if length > max_length:
        what = f"complex of {length} residues in {len(chains)} chains" if len(chains) > 1 else \
            f"sequence of {length} residues"
        return f"{what} is longer than the maximum of {max_length} (max_length)"
    return None


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    data = path.read_bytes()
    if not data.strip():
        raise InputError(f"{path}: file is empty")
    if b"\x00" in data:
        raise InputError(f"{path}: binary file, not FASTA text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); is it a FASTA file?") from None
    if any(ord(c) < 32 and c not in "\t\r\n" for c in text):
        raise InputError(f"{path}: contains control characters, not FASTA text")
    if not text.lstrip().startswith(">"):
        raise InputError(f"{path}: no FASTA header ('>') before the first sequence line")
    return text


def _clean_sequence(raw: str) -> str:
    chains = "".join(raw.split()).upper().split(CHAIN_SEPARATOR)
    return CHAIN_SEPARATOR.join(chain[:-1] if chain.endswith("*") else chain for chain in chains)


def complex_tag(header: str) -> str | None:
    """The ``complex=<name>`` tag of a header, if any."""
    match = _COMPLEX_TAG.search(header)
    return match.group(1) if match else None


def _join_complexes(records: list[Target | InvalidTarget], max_length: int) -> list[Target | InvalidTarget]:
    """Records tagged ``complex=<name>`` joined, in order, into one target per name."""
    joined: list[Target | InvalidTarget] = []
    groups: dict[str, list[Target | InvalidTarget]] = {}
    for record in records:
        name = complex_tag(record.description)
        if name is None:
            joined.append(record)
        elif name not in groups:
            groups[name] = [record]
            joined.append(record)  # placeholder: the complex takes its first chain's place
        else:
            groups[name].append(record)
    for name, members in groups.items():
        place = joined.index(members[0])
        source = members[0].source
        complex_id = safe_target_id(name)
        bad = next((m for m in members if isinstance(m, InvalidTarget)), None)
        if bad is not None:
            joined[place] = InvalidTarget(complex_id, name, source, f"chain '{bad.id}': {bad.error}")
            continue
        sequence = CHAIN_SEPARATOR.join(m.sequence for m in members)
        problem = _path_escape_problem(name) or _sequence_problem(sequence, max_length)
        description = f"{name}: " + " | ".join(m.description for m in members)
        joined[place] = (InvalidTarget(complex_id, description, source, problem) if problem
                         else Target(complex_id, description, sequence, source))
    return joined


def parse_fasta_file(path: Path, max_length: int) -> list[Target | InvalidTarget]:
    """Parse one FASTA file; each record becomes a Target or an InvalidTarget."""
    text = _read_text(path)
    records: list[Target | InvalidTarget] = []
    for header, raw_sequence in SimpleFastaParser(io.StringIO(text)):
        header = header.strip()
        raw_id = header.split(maxsplit=1)[0] if header else ""
        source = str(path)
        target_id = safe_target_id(raw_id)
        sequence = _clean_sequence(raw_sequence)
        if not raw_id:
            problem = "empty header: every record needs an id after '>'"
        else:
            problem = _path_escape_problem(raw_id)
        if not problem and (not target_id or target_id.startswith(".")):
            problem = f"id '{raw_id}' has no characters usable in a file name"
        problem = problem or _sequence_problem(sequence, max_length)
        if problem:
            records.append(InvalidTarget(target_id or raw_id, header, source, problem))
        else:
            records.append(Target(target_id, header, sequence, source))
    if not records:
        raise InputError(f"{path}: no FASTA records found")
    return _join_complexes(records, max_length)


def fasta_files(path: Path) -> list[Path]:
    """The FASTA file itself, or the FASTA files of a directory in name order."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FASTA_SUFFIXES and p.is_file())
        if not files:
            raise InputError(f"{path}: directory holds no FASTA files ({', '.join(FASTA_SUFFIXES)})")
        return files
    return [path]


def load_targets(path: Path | str, max_length: int = 2500) -> TargetBatch:
    """Read and validate every record of a FASTA file or a directory of them.

    The same id twice with the same sequence is kept once; with different
    sequences both records are invalid.
    """
    by_id: dict[str, Target] = {}
    invalid: list[InvalidTarget] = []
    for file in fasta_files(Path(path)):
        for record in parse_fasta_file(file, max_length):
            if isinstance(record, InvalidTarget):
                invalid.append(record)
                continue
            earlier = by_id.get(record.id)
            if earlier is None:
                by_id[record.id] = record
            elif earlier.sequence != record.sequence:
                error = (f"duplicate id '{record.id}' with a different sequence "
                         f"(first seen in {earlier.source})")
                invalid.append(InvalidTarget(record.id, record.description, record.source, error))
    duplicated = {bad.id for bad in invalid if bad.error.startswith("duplicate id")}
    for target_id in duplicated:
        first = by_id.pop(target_id)
        invalid.append(InvalidTarget(first.id, first.description, first.source,
                                     f"duplicate id '{first.id}' with a different sequence"))
    return TargetBatch(targets=list(by_id.values()), invalid=invalid)
