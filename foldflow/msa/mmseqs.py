"""MMseqs2 searches as ColabFold's ``colabfold_search`` runs them, many queries per call.

The database is ColabFold's layout (``foldflow databases build mmseqs2`` makes one from FASTA):
``<db>`` the cluster representatives (searched, with a ``createindex`` index when built), ``<db>_seq``
every member sequence and ``<db>_aln`` each representative's alignments to its members. One search makes
the calls of the UniRef branch of ColabFold's ``mmseqs_search_monomer`` with its defaults (see
:func:`colabfold_search_commands`): ``search`` (3 iterations, ``-e 0.1 --max-seqs 10000 -s 8``),
``expandaln`` to the cluster members, ``align`` of the query profile (``--alt-ali 10``, ``-e 10
--max-accept 100000``: ColabFold's filter settings), ``filterresult`` (``--qsc 0.8``) and ``result2msa``
(A3M, ``--filter-msa 1 --diff 3000 --qid 0.0,...,1.0 --max-seq-id 0.95``). tests/test_msa_engines.py
runs ColabFold's function itself (vendored in tests/reference/) and compares calls and A3Ms.

Differences from ColabFold, said in the README: every database is searched from the query sequence
(ColabFold starts its environmental search from the UniRef search's profile), so each database is its own
stored step; the query row is named ``query`` (ColabFold's is ``101``); hits of the pairing database
(``uniprot``) keep the first word of their FASTA header (MMseqs2 shortens ``tr|Q8EYI3|Q8EYI3_LEPIN`` to
``Q8EYI3``; AlphaFold-Multimer reads the species from the full name).

MMseqs2 is fastest on many queries at once: a search for one chain takes the run's next chains that are not
stored yet (``upcoming``) into the same call, up to ``msa.mmseqs_batch_size``, and keeps their alignments
until their targets ask.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from foldflow.config import DatabaseConfig, MsaConfig
from foldflow.alignment import QUERY_NAME, Alignment
from foldflow.msa.engine import ToolSearchEngine
from foldflow.msa.tools import run
from foldflow.steps import search_key

# The run's chains in order: (sequence, searched for pairing: a heteromer's chain).
UpcomingChains = Sequence[tuple[str, bool]]
MMSEQS_DATABASE_PARTS = ("", "_h", "_seq", "_seq_h", "_aln")


def missing_mmseqs_parts(prefix: Path) -> list[Path]:
    return [path for part in MMSEQS_DATABASE_PARTS if not (path := Path(f"{prefix}{part}.dbtype")).is_file()]


def has_index(prefix: Path) -> bool:
    return Path(f"{prefix}.idx").is_file() or Path(f"{prefix}.idx.index").is_file()


def colabfold_search_commands(binary: str, work: Path, database: Path, threads: int,
                              sensitivity: float) -> list[list[str]]:
    """The calls ColabFold's ``mmseqs_search_monomer`` makes for its UniRef branch (filter on, ``use_env``
    off), in its order and with its arguments, queries in ``work/qdb``, one A3M per query unpacked into
    ``work``. An indexed database is read through its index (``{db}.idx`` for the members and their
    alignments too, ``--db-load-mode 2``: the index is read once into the page cache and kept there), one
    without through ``{db}_seq`` and ``{db}_aln``, as ColabFold decides. Left out: ``--prefilter-mode 0``
    (MMseqs2 14 has no such flag; 0, the k-mer prefilter, is the default of the versions that have it) and
    ColabFold's ``rmdb`` clean-ups (``work`` is a temporary directory)."""
    indexed = has_index(database)
    load = "2" if indexed else "0"
    seq, aln = (f"{database}.idx", f"{database}.idx") if indexed else (f"{database}_seq", f"{database}_aln")
    w = lambda name: str(work / name)  # noqa: E731
    threading = ["--threads", str(threads)]
    search_param = ["--num-iterations", "3", "--db-load-mode", load, "-a", "-e", "0.1", "--max-seqs", "10000",
                    "-s", f"{sensitivity:.1f}"]
    filter_param = ["--filter-msa", "1", "--filter-min-enable", "1000", "--diff", "3000",
                    "--qid", "0.0,0.2,0.4,0.6,0.8,1.0", "--qsc", "0", "--max-seq-id", "0.95"]
    expand_param = ["--expansion-mode", "0", "-e", "inf", "--expand-filter-clusters", "1", "--max-seq-id", "0.95"]
    return [
        [binary, "search", w("qdb"), str(database), w("res"), w("tmp"), *threading, *search_param],
        [binary, "mvdb", w("tmp/latest/profile_1"), w("prof_res")],
        [binary, "lndb", w("qdb_h"), w("prof_res_h")],
        [binary, "expandaln", w("qdb"), seq, w("res"), aln, w("res_exp"), "--db-load-mode", load, *threading,
         *expand_param],
        [binary, "align", w("prof_res"), seq, w("res_exp"), w("res_exp_realign"), "--db-load-mode", load,
         "-e", "10", "--max-accept", "100000", *threading, "--alt-ali", "10", "-a"],
        [binary, "filterresult", w("qdb"), seq, w("res_exp_realign"), w("res_exp_realign_filter"),
         "--db-load-mode", load, "--qid", "0", "--qsc", "0.8", "--diff", "0", *threading, "--max-seq-id", "1.0",
         "--filter-min-enable", "100"],
        [binary, "result2msa", w("qdb"), seq, w("res_exp_realign_filter"), w("uniref.a3m"),
         "--msa-format-mode", "6", "--db-load-mode", load, *threading, *filter_param],
        [binary, "unpackdb", w("uniref.a3m"), str(work), "--unpack-name-mode", "0", "--unpack-suffix", ".a3m"],
    ]


def _query_a3m(text: str, names: dict[str, str]) -> str:
    """result2msa's A3M with its query row named :data:`QUERY_NAME` (queries are searched as q<i>) and hit
    names replaced by ``names`` where given (a header is the name, a tab, then the alignment's numbers)."""
    _, _, rest = text.replace("\x00", "").partition("\n")

    def rename(line: str) -> str:
        name, tab, numbers = line[1:].partition("\t")
        return f">{names.get(name, name)}{tab}{numbers}"

    lines = [rename(line) if line.startswith(">") else line for line in rest.splitlines()]
    return "\n".join([f">{QUERY_NAME}", *lines]) + "\n"


def _full_names(binary: str, work: Path, database: Path, threads: int) -> dict[str, str]:
    """Hit accession -> the first word of its FASTA header. MMseqs2 shortens UniProt names
    (``tr|Q8EYI3|Q8EYI3_LEPIN`` to ``Q8EYI3``); AlphaFold-Multimer reads the species from the full name."""
    table = work / "names.tsv"
    run([binary, "convertalis", work / "qdb", f"{database}_seq", work / "res_exp_realign_filter", table,
         "--format-output", "target,theader", "--threads", str(threads)], f"mmseqs convertalis against {database}")
    names = {}
    for line in table.read_text().splitlines():
        accession, _, header = line.partition("\t")
        names[accession] = header.split()[0] if header.split() else accession
    return names


def colabfold_search(binary: str, sequences: list[str], database: Path, threads: int,
                     sensitivity: float, full_names: bool = False) -> list[str]:
    """A3M per query (in order) from one ColabFold search of all ``sequences`` against ``database``; with
    ``full_names`` the hits keep their full FASTA names (UniProt's species, for pairing)."""
    with tempfile.TemporaryDirectory(prefix="foldflow-mmseqs-") as tmp:
        work = Path(tmp)
        fasta = work / "queries.fasta"
        fasta.write_text("".join(f">q{i}\n{sequence}\n" for i, sequence in enumerate(sequences)))
        # as colabfold_search's main() makes its query database: in input order, as proteins
        run([binary, "createdb", fasta, work / "qdb", "--shuffle", "0", "--dbtype", "1"], "mmseqs createdb")
        for command in colabfold_search_commands(binary, work, database, threads, sensitivity):
            run(command, f"mmseqs {command[1]} against {database}")
        names = _full_names(binary, work, database, threads) if full_names else {}
        return [_query_a3m((work / f"{i}.a3m").read_text(), names) for i in range(len(sequences))]


class MMseqs2Engine(ToolSearchEngine):
    """ColabFold's MMseqs2 search (UniRef30, ColabFoldDB-style databases), the run's chains in batches."""

    name = "mmseqs2"
    database_format = "mmseqs2"
    resident = True  # the index stays in the page cache (--db-load-mode 2); batches are kept until asked
    binary_setting = "mmseqs_binary"
    version_args = ("version", "")
    resident_args = ("upcoming", "stored")

    def __init__(self, config: MsaConfig, upcoming: UpcomingChains = (),
                 stored: Callable[[str], bool] = lambda key: False):
        super().__init__(config)
        self.upcoming = list(upcoming)
        self.stored = stored  # whether a search key's alignment is in the store already
        self._ready: dict[tuple[str, str], Alignment] = {}
        self._searched: set[tuple[str, str]] = set()
        self.calls = 0  # mmseqs searches run (each for a batch of queries)
        self.queries = 0

    def key_settings(self) -> dict:
        return {"recipe": "colabfold_search", "sensitivity": self.config.mmseqs_sensitivity}

    def missing(self, database: DatabaseConfig) -> str | None:
        if parts := missing_mmseqs_parts(database.path):
            return (f"database '{database.name}': no MMseqs2 database at {database.path} (missing {parts[0].name}; "
                    f"build one with: foldflow databases build mmseqs2 FASTA {database.path})")
        return None

    def info(self) -> dict:
        return {"mmseqs_calls": self.calls, "mmseqs_queries": self.queries}

    def _batch(self, sequence: str, database: DatabaseConfig) -> list[str]:
        """``sequence`` and the next chains of the run not searched, stored or batched yet."""
        batch = [sequence]
        for other, pairing in self.upcoming:
            if len(batch) >= self.config.mmseqs_batch_size:
                break
            key = search_key(other, database, self.key_settings(), self.name, self.version)
            if (other in batch or (database.name == "uniprot" and not pairing)
                    or (database.name, other) in self._searched or self.stored(key)):
                continue
            batch.append(other)
        return batch

    def search(self, sequence: str, database: DatabaseConfig) -> Alignment:
        ready = self._ready.pop((database.name, sequence), None)
        if ready is not None:
            return ready
        batch = self._batch(sequence, database)
        pairing_database = database.name == "uniprot"  # AlphaFold-Multimer pairs these hits by species
        texts = colabfold_search(self.binary, batch, database.path, self.config.cpus_per_search,
                                 self.config.mmseqs_sensitivity, full_names=pairing_database)
        self.calls += 1
        self.queries += len(batch)
        for other, text in zip(batch, texts):
            self._searched.add((database.name, other))
            self._ready[(database.name, other)] = Alignment(database.name, "a3m", text)
        return self._ready.pop((database.name, sequence))
