"""Search databases built from FASTA, checked, and what the full ones need (``foldflow databases``).

* HH-suite (hhblits): the ``_a3m`` ffindex pair is written directly (one single-sequence A3M per entry,
  entries ending in NUL, the index sorted by name): Debian's ``ffindex_from_fasta`` corrupts entries
  (../shared/NOTES-msa.md). Column states come from ``cstranslate`` with HH-suite's own libraries
  (``-x 0.3 -c 4``, as HH-suite's guide builds databases).
* MMseqs2: ColabFold's layout (:mod:`foldflow.msa.mmseqs`): ``createdb`` of every sequence (``_seq``),
  ``cluster`` at 30 % identity (UniRef30-like), ``createsubdb`` of the representatives (the searched
  database), ``align`` of each representative to its members (``_aln``), then ``createindex``.
* HH-suite PDB70-like (hhsearch templates): the same ``_a3m`` and ``_cs219`` pairs plus ``_hhm``, one HMM
  per entry made by ``hhmake`` through ``ffindex_apply`` (HH-suite's own recipe).
* pyhmmer reads FASTA files as they are.

Each kind is a :class:`DatabaseFormat` (``DATABASE_FORMATS``): it builds one and checks one (files present,
sizes, and a test query that must find itself); each MSA engine names its kind.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from alphafold.data import parsers
from Bio.SeqIO.FastaIO import SimpleFastaParser

from foldflow.msa.hhblits import HHBLITS_DATABASE_SUFFIXES, PDB70_SUFFIXES
from foldflow.msa.mmseqs import colabfold_search, has_index, missing_mmseqs_parts
from foldflow.msa.tools import HHSUITE_DATA, ToolError, cstranslate_binary, find_binary, run

BUILDABLE = ("hhblits", "hhsearch", "mmseqs2")  # the DATABASE_FORMATS foldflow builds

# What the full databases need, from each project's own download scripts and READMEs.
FULL_DOWNLOADS = """\
AlphaFold 2.3 (scripts/download_all_data.sh in google-deepmind/alphafold; about 556 GB to download,
2.62 TB unpacked; use an SSD):
  bfd          hhblits   ~1.8 TB unpacked   download_bfd.sh
  uniref30     hhblits   ~206 GB            download_uniref30.sh   (searched with bfd: extra_paths)
  uniref90     pyhmmer   ~67 GB             download_uniref90.sh
  mgnify       pyhmmer   ~120 GB            download_mgnify.sh
  uniprot      pyhmmer   ~105 GB            download_uniprot.sh    (complexes: msa.pairing_database)
  pdb_seqres   templates ~0.2 GB            download_pdb_seqres.sh
  pdb_mmcif    templates ~238 GB            download_pdb_mmcif.sh
  small_bfd    pyhmmer   ~17 GB             download_small_bfd.sh  (reduced_dbs preset, instead of bfd)
ColabFold (setup_databases.sh in sokrypton/ColabFold: UniRef30 and ColabFoldDB as MMseqs2 databases with
their indices; plan for about 1 TB of fast disk and enough RAM to keep the index in the page cache):
  uniref30         mmseqs2   uniref30_2302_db
  colabfold_envdb  mmseqs2   colabfold_envdb_202108_db
Point each database's path at the prefix the script made (databases[].path, engine per database), then
run `foldflow databases check --config FILE`."""


@dataclass
class BuiltDatabase:
    engine: str
    prefix: Path
    sequences: int
    seconds: float


def read_fasta(path: Path, limit: int | None = None) -> list[tuple[str, str, str]]:
    """(name, header line, sequence) of the first ``limit`` records (all by default), with Biopython's
    parser as foldflow.targets reads FASTA; the name is the header's first word."""
    with open(path) as handle:
        records = itertools.islice(SimpleFastaParser(handle), limit)
        return [(title.split()[0], f">{title}", sequence) for title, sequence in records]


def _write_ffindex(prefix: str, entries: list[tuple[str, bytes]]) -> None:
    data, index = bytearray(), []
    for name, body in sorted(entries):
        record = body + b"\0"
        index.append(f"{name}\t{len(data)}\t{len(record)}\n")
        data += record
    Path(f"{prefix}.ffdata").write_bytes(bytes(data))
    Path(f"{prefix}.ffindex").write_text("".join(index))


def build_hhblits_database(fasta: Path, prefix: Path, limit: int | None = None,
                           hmms: bool = False) -> BuiltDatabase:
    """An HH-suite database of single-sequence entries; with ``hmms`` also their ``_hhm`` (PDB70-like, for
    hhsearch)."""
    start = time.perf_counter()
    records = read_fasta(fasta, limit)
    names = [name for name, _, _ in records]
    if len(set(names)) != len(names):
        raise ToolError(f"{fasta}: sequence names (first word of each header) must be unique for HH-suite")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    _write_ffindex(f"{prefix}_a3m", [(name, f"{header}\n{sequence}\n".encode()) for name, header, sequence in records])
    if hmms:
        run([find_binary("ffindex_apply", "PATH"), f"{prefix}_a3m.ffdata", f"{prefix}_a3m.ffindex",
             "-i", f"{prefix}_hhm.ffindex", "-d", f"{prefix}_hhm.ffdata", "--",
             find_binary("hhmake", "PATH"), "-i", "stdin", "-o", "stdout", "-v", "0"], f"hhmake {prefix}_a3m")
        index = Path(f"{prefix}_hhm.ffindex")
        index.write_text("".join(sorted(index.read_text().splitlines(keepends=True))))
    run([cstranslate_binary(), "-A", HHSUITE_DATA / "cs219.lib", "-D", HHSUITE_DATA / "context_data.lib",
         "-x", "0.3", "-c", "4", "-f", "-I", "a3m", "-i", f"{prefix}_a3m", "-o", f"{prefix}_cs219"],
        f"cstranslate {prefix}_a3m")
    return BuiltDatabase("hhsearch" if hmms else "hhblits", prefix, len(records), time.perf_counter() - start)


def build_mmseqs_database(fasta: Path, prefix: Path, threads: int = 1, min_seq_id: float = 0.3,
                          index: bool = True, limit: int | None = None, binary: str = "mmseqs") -> BuiltDatabase:
    start = time.perf_counter()
    mmseqs = find_binary(binary, "msa.mmseqs_binary")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    threading = ["--threads", str(threads)]
    with tempfile.TemporaryDirectory(prefix="foldflow-mmseqs-build-") as tmp:
        work = Path(tmp)
        source = fasta
        if limit is not None:
            source = work / "subset.fasta"
            source.write_text("".join(f"{header}\n{sequence}\n" for _, header, sequence in read_fasta(fasta, limit)))
        seq, reps, clusters = f"{prefix}_seq", str(prefix), work / "clusters"
        run([mmseqs, "createdb", source, seq], "mmseqs createdb")
        run([mmseqs, "cluster", seq, clusters, work / "tmp", "--min-seq-id", str(min_seq_id), "-c", "0.8",
             *threading], "mmseqs cluster")
        run([mmseqs, "createsubdb", clusters, seq, reps], "mmseqs createsubdb")
        run([mmseqs, "createsubdb", clusters, f"{seq}_h", f"{reps}_h"], "mmseqs createsubdb (headers)")
        run([mmseqs, "align", reps, seq, clusters, f"{prefix}_aln", "-a", *threading], "mmseqs align")
        if index:
            run([mmseqs, "createindex", reps, work / "tmp_index", *threading], "mmseqs createindex")
        sequences = sum(1 for _ in open(f"{seq}.index"))
    return BuiltDatabase("mmseqs2", prefix, sequences, time.perf_counter() - start)


def _size(paths: list[Path]) -> str:
    total = sum(p.stat().st_size for p in paths)
    return f"{total / 2**20:.1f} MiB in {len(paths)} files"


def _entry(data: str, index_line: str) -> str:
    _, offset, length = index_line.split("\t")[:3]
    with open(data, "rb") as handle:
        handle.seek(int(offset))
        return handle.read(int(length)).rstrip(b"\0\n").decode()


def _test_entries_hhblits(prefix: Path, count: int) -> list[tuple[str, str]]:
    """(name, sequence) of the database's first entries."""
    entries = []
    for line in Path(f"{prefix}_a3m.ffindex").read_text().splitlines()[:count]:
        rows = [row for row in _entry(f"{prefix}_a3m.ffdata", line).splitlines()
                if row and not row.startswith(("#", ">"))]
        entries.append((line.split("\t")[0], rows[0].replace("-", "").upper()))
    return entries


def _test_entries_mmseqs(prefix: Path, count: int) -> list[tuple[str, str]]:
    headers = Path(f"{prefix}_seq_h.index").read_text().splitlines()[:count]
    sequences = Path(f"{prefix}_seq.index").read_text().splitlines()[:count]
    return [(_entry(f"{prefix}_seq_h", h).split()[0].lstrip(">"), _entry(f"{prefix}_seq", s))
            for h, s in zip(headers, sequences)]


# A test query is a database entry that must find itself; a short or low-complexity entry may not reach
# hhblits' E-value cut-off, so the first few entries are tried.
TEST_QUERIES = 3


def _a3m_hits(a3m: str) -> list[str]:
    """The hits' sequences (MMseqs2 shortens UniProt names to accessions, so hits are told by sequence)."""
    rows = [line for line in a3m.splitlines() if line and not line.startswith(">")]
    return [row.replace("-", "") for row in rows[1:] if row == row.upper()]


def _hh_hit_names(binary: str, sequence: str, prefix: Path, cpus: int, iterations: list[str]) -> list[str]:
    """Names in hhblits' or hhsearch's hit list (hhblits' A3M drops a hit identical to the query, so the
    .hhr is read)."""
    with tempfile.TemporaryDirectory(prefix="foldflow-hh-check-") as tmp:
        query, hits = Path(tmp) / "query.fasta", Path(tmp) / "hits.hhr"
        query.write_text(f">query\n{sequence}\n")
        run([binary, "-i", query, "-o", hits, *iterations, "-cpu", str(cpus), "-d", prefix],
            f"{Path(binary).name} against {prefix}")
        return [hit.name.split()[0] for hit in parsers.parse_hhr(hits.read_text())]


class DatabaseFormat:
    """One kind of search database: how foldflow builds one from FASTA and checks one (its files, and a test
    query, one of its first entries, that must find itself). An MSA engine names its kind
    (:attr:`foldflow.msa.engine.MsaEngine.database_format`)."""

    name: str  # as `foldflow databases build` and `check` name it
    binary_setting: str = ""  # the setting naming the binary a check searches with

    def build(self, fasta: Path, prefix: Path, threads: int = 1, limit: int | None = None,
              index: bool = True) -> BuiltDatabase:
        raise ValueError(f"foldflow builds databases for {' and '.join(BUILDABLE)}, not '{self.name}' "
                         "(pyhmmer reads FASTA files as they are)")

    def check(self, prefix: Path, binary: str, cpus: int = 1) -> list[str]:
        """Lines describing a complete database; ToolError with one line naming what is missing or wrong."""
        files = self.files(prefix)
        binary = find_binary(binary, self.binary_setting)
        entries = self.test_entries(prefix, TEST_QUERIES)
        for name, sequence in entries:
            if self.finds_itself(binary, prefix, cpus, name, sequence):
                return [f"{prefix}: {self.name} database, {_size(files)}{self.details(prefix)}",
                        f"  test query {name} ({len(sequence)} residues) found itself"]
        raise ToolError(f"{prefix}: searches for its first {len(entries)} sequences did not find them")

    def files(self, prefix: Path) -> list[Path]:
        raise NotImplementedError

    def test_entries(self, prefix: Path, count: int) -> list[tuple[str, str]]:
        raise NotImplementedError

    def finds_itself(self, binary: str, prefix: Path, cpus: int, name: str, sequence: str) -> bool:
        raise NotImplementedError

    def details(self, prefix: Path) -> str:
        return ""


class FastaDatabase(DatabaseFormat):
    """A FASTA file, searched as it is (pyhmmer)."""

    name = "fasta"

    def check(self, prefix: Path, binary: str = "", cpus: int = 1) -> list[str]:
        if not prefix.is_file():
            raise ToolError(f"{prefix}: no such FASTA file")
        return [f"{prefix}: FASTA, {_size([prefix])}, {len(read_fasta(prefix))} sequences"]


class HHsuiteDatabase(DatabaseFormat):
    """HH-suite's ffindex layout: for hhblits (BFD/UniRef30-like), or with HMMs for hhsearch (PDB70-like)."""

    def __init__(self, hmms: bool):
        self.hmms = hmms
        self.name = "hhsearch" if hmms else "hhblits"
        self.binary_setting = "msa.templates.hhsearch_binary" if hmms else "msa.hhblits_binary"

    def build(self, fasta: Path, prefix: Path, threads: int = 1, limit: int | None = None,
              index: bool = True) -> BuiltDatabase:
        return build_hhblits_database(fasta, prefix, limit, hmms=self.hmms)

    def files(self, prefix: Path) -> list[Path]:
        files = [Path(f"{prefix}{suffix}") for suffix in (PDB70_SUFFIXES if self.hmms else HHBLITS_DATABASE_SUFFIXES)]
        if missing := [path for path in files if not path.is_file()]:
            raise ToolError(f"{prefix}: not an HH-suite database for {self.name} (missing {missing[0]})")
        return files

    def test_entries(self, prefix: Path, count: int) -> list[tuple[str, str]]:
        return _test_entries_hhblits(prefix, count)

    def finds_itself(self, binary: str, prefix: Path, cpus: int, name: str, sequence: str) -> bool:
        return name in _hh_hit_names(binary, sequence, prefix, cpus, [] if self.hmms else ["-n", "1"])


class MMseqsDatabase(DatabaseFormat):
    """ColabFold's MMseqs2 layout (clustered at 30 % identity, with an index)."""

    name = "mmseqs2"
    binary_setting = "msa.mmseqs_binary"

    def build(self, fasta: Path, prefix: Path, threads: int = 1, limit: int | None = None,
              index: bool = True) -> BuiltDatabase:
        return build_mmseqs_database(fasta, prefix, threads, index=index, limit=limit)

    def files(self, prefix: Path) -> list[Path]:
        if missing := missing_mmseqs_parts(prefix):
            raise ToolError(f"{prefix}: not an MMseqs2 database in ColabFold's layout (missing {missing[0]})")
        return sorted(p for p in prefix.parent.glob(f"{prefix.name}[._]*") if p.is_file())

    def test_entries(self, prefix: Path, count: int) -> list[tuple[str, str]]:
        return _test_entries_mmseqs(prefix, count)

    def finds_itself(self, binary: str, prefix: Path, cpus: int, name: str, sequence: str) -> bool:
        # MMseqs2 shortens UniProt names to accessions: the hit is told by its sequence
        return sequence in _a3m_hits(colabfold_search(binary, [sequence], prefix, cpus, 8.0)[0])

    def details(self, prefix: Path) -> str:
        return f", index {'present' if has_index(prefix) else 'absent'}"


DATABASE_FORMATS: dict[str, DatabaseFormat] = {
    f.name: f for f in (FastaDatabase(), HHsuiteDatabase(hmms=False), HHsuiteDatabase(hmms=True), MMseqsDatabase())}
