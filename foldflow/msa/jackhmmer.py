"""jackhmmer with pyhmmer against databases held in memory.

A :class:`ResidentDatabases` reads each FASTA database once (on first use) and
answers many queries; the thresholds are AlphaFold 2.3's (``-E 1e-4 --incE 1e-4 --F1 5e-4
--F2 5e-5 --F3 5e-7 -N 1``), and hit limits are applied with AlphaFold's own
``truncate_stockholm_msa``.
"""

from __future__ import annotations

import io
import tempfile
import time
from dataclasses import dataclass

import pyhmmer
from alphafold.data import parsers
from pyhmmer.easel import Alphabet, DigitalSequenceBlock, SequenceFile, TextSequence

from foldflow.config import DatabaseConfig, MsaConfig
from foldflow.alignment import QUERY_NAME, Alignment
from foldflow.msa.engine import DatabaseSearchEngine

_ALPHABET = Alphabet.amino()


@dataclass
class LoadedDatabase:
    config: DatabaseConfig
    sequences: DigitalSequenceBlock
    load_seconds: float

    @property
    def residues(self) -> int:
        return sum(len(seq) for seq in self.sequences)


def load_database(config: DatabaseConfig) -> LoadedDatabase:
    if not config.path.is_file():
        raise FileNotFoundError(f"database '{config.name}': no such file {config.path}")
    start = time.perf_counter()
    with SequenceFile(str(config.path), digital=True, alphabet=_ALPHABET) as handle:
        sequences = handle.read_block()
    return LoadedDatabase(config, sequences, time.perf_counter() - start)


def _stockholm_text(msa: pyhmmer.easel.MSA, name: str) -> str:
    msa.name = name.encode() if isinstance(msa.name, bytes) else name
    buffer = io.BytesIO()
    msa.write(buffer, "stockholm")
    return buffer.getvalue().decode()


def _truncate(stockholm: str, max_hits: int | None) -> str:
    """AlphaFold's own truncation (query plus the first ``max_hits - 1`` hits)."""
    if max_hits is None:
        return stockholm
    with tempfile.NamedTemporaryFile("w", suffix=".sto") as handle:
        handle.write(stockholm)
        handle.flush()
        return parsers.truncate_stockholm_msa(handle.name, max_hits)


def stockholm_alignment(msa: pyhmmer.easel.MSA, query_id: str, database: DatabaseConfig) -> Alignment:
    """jackhmmer's MSA as AlphaFold reads it: Stockholm named after the query, hits truncated."""
    return Alignment(database.name, "sto", _truncate(_stockholm_text(msa, query_id), database.max_hits))


class ResidentDatabases:
    """Databases read on first use and kept; :meth:`search` runs jackhmmer for one query."""

    def __init__(self, config: MsaConfig):
        self.config = config
        self._loaded: dict[str, LoadedDatabase] = {}

    def database(self, name: str) -> LoadedDatabase:
        if name not in self._loaded:
            self._loaded[name] = load_database(self.config.database(name))
        return self._loaded[name]

    @property
    def loaded(self) -> list[LoadedDatabase]:
        return list(self._loaded.values())

    def search(self, query_id: str, sequence: str) -> list[Alignment]:
        """One alignment per configured database, in configuration order."""
        return [self.search_one(query_id, sequence, db.name) for db in self.config.databases]

    def search_one(self, query_id: str, sequence: str, database: str) -> Alignment:
        db = self.database(database)
        cfg = self.config
        query = TextSequence(name=query_id.encode(), sequence=sequence).digitize(_ALPHABET)
        (result,) = pyhmmer.hmmer.jackhmmer(
            [query], db.sequences,
            max_iterations=cfg.iterations, checkpoints=False, cpus=cfg.cpus_per_search,
            E=cfg.e_value, incE=cfg.inclusion_e_value,
            F1=cfg.filter_f1, F2=cfg.filter_f2, F3=cfg.filter_f3,
        )
        return stockholm_alignment(result.msa, query_id, db.config)


class PyhmmerEngine(DatabaseSearchEngine):
    """jackhmmer (pyhmmer) against databases held in this process's memory."""

    name = "pyhmmer"
    resident = True

    def __init__(self, config: MsaConfig):
        super().__init__(config)
        self.databases_held = ResidentDatabases(config)

    @property
    def version(self) -> str:
        return pyhmmer.__version__

    def warm(self) -> None:
        for db in self.config.databases:
            self.databases_held.database(db.name)

    def info(self) -> dict:
        loaded = self.databases_held.loaded
        return {"load_seconds": sum(db.load_seconds for db in loaded), "residues": sum(db.residues for db in loaded)}

    def search(self, sequence: str, database: DatabaseConfig) -> Alignment:
        return self.databases_held.search_one(QUERY_NAME, sequence, database.name)
