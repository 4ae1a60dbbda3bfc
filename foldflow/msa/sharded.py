"""jackhmmer over a database held as shards, with the same hits and MSA as one search.

Real UniRef90 or BFD do not fit one node's memory, so each shard (every
``count``-th sequence, starting at ``index``) is held by its own resident
searcher. Each iteration builds one HMM, searches every shard with it, and
merges the shards' hits with ``TopHits.merge``, which sums the shards'
search-space sizes (Z, domZ) and thresholds the merged hits again: E-values
and inclusion are those of a search over the whole database. The MSA is then
built from the merged hits exactly as pyhmmer's jackhmmer builds it.

The fan-out is a function given by the caller (``search_shards``), so this
module runs shards in-process in tests and on Ray actors in the pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pyhmmer
from pyhmmer.easel import Alphabet, DigitalSequenceBlock, KeyHash, SequenceFile, TextSequence
from pyhmmer.plan7 import HMM, Background, Builder, Pipeline, TopHits, Trace

from foldflow.config import DatabaseConfig, MsaConfig
from foldflow.alignment import QUERY_NAME, Alignment
from foldflow.msa.engine import DatabaseSearchEngine
from foldflow.msa.jackhmmer import stockholm_alignment

_ALPHABET = Alphabet.amino()
_BUILDER_SEED = 42  # pyhmmer.hmmer.jackhmmer's default

SearchShards = Callable[[HMM], list[TopHits]]


@dataclass
class Shard:
    """One slice of a database, held in memory."""

    database: DatabaseConfig
    index: int
    count: int
    sequences: DigitalSequenceBlock
    load_seconds: float

    @property
    def residues(self) -> int:
        return sum(len(seq) for seq in self.sequences)


def load_shard(database: DatabaseConfig, index: int, count: int) -> Shard:
    """Every ``count``-th sequence of the database starting at ``index`` (only these stay in memory)."""
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} outside 0..{count - 1}")
    start = time.perf_counter()
    with SequenceFile(str(database.path), digital=True, alphabet=_ALPHABET) as handle:
        kept = DigitalSequenceBlock(_ALPHABET, (seq for i, seq in enumerate(handle) if i % count == index))
    return Shard(database, index, count, kept, time.perf_counter() - start)


_JACKHMMER_INCDOME = 0.001  # jackhmmer's default per-domain inclusion (a plain Pipeline uses 0.01)


def _pipeline(config: MsaConfig) -> Pipeline:
    return Pipeline(_ALPHABET, E=config.e_value, incE=config.inclusion_e_value, incdomE=_JACKHMMER_INCDOME,
                    F1=config.filter_f1, F2=config.filter_f2, F3=config.filter_f3)


def search_shard(shard: Shard, hmm: HMM, config: MsaConfig) -> TopHits:
    """One shard's hits for one iteration's HMM (E-values relative to the shard until merged)."""
    return _pipeline(config).search_hmm(hmm, shard.sequences)


def sharded_jackhmmer(query_id: str, sequence: str, database: DatabaseConfig, config: MsaConfig,
                      search_shards: SearchShards) -> Alignment:
    """jackhmmer of one query against all shards of ``database``, as one Stockholm alignment."""
    query = TextSequence(name=query_id.encode(), sequence=sequence).digitize(_ALPHABET)
    builder = Builder(_ALPHABET, seed=_BUILDER_SEED, architecture="hand")
    background = Background(_ALPHABET)
    ranking = KeyHash()
    msa = None
    for iteration in range(1, config.iterations + 1):
        if msa is None:
            hmm, _, _ = builder.build(query, background)
            previous_size = 1
        else:
            hmm, _, _ = builder.build_msa(msa, background)
            previous_size = len(msa.sequences)
        first, *others = search_shards(hmm)
        hits = first.merge(*others)
        hits.sort(by="key")
        new = hits.compare_ranking(ranking)
        msa = hits.to_msa(_ALPHABET, sequences=[query], traces=[Trace.from_sequence(query)],
                          all_consensus_cols=True, digitize=True)
        suffix = f"-i{iteration}"
        msa.name = query.name + (suffix.encode() if isinstance(query.name, bytes) else suffix)
        msa.description = query.description or None
        msa.accession = query.accession or None
        msa.author = "jackhmmer (pyHMMER)"
        if new == 0 and len(msa.sequences) <= previous_size:
            break
    return stockholm_alignment(msa, query_id, database)



ShardFanOut = Callable[[str, HMM], list[TopHits]]  # (database name, HMM) -> each shard's hits


class ShardedPyhmmerEngine(DatabaseSearchEngine):
    """jackhmmer over databases held as ``config.shards`` shards each.

    ``fan_out`` searches every shard of a database with one HMM; the pipeline
    passes one that calls resident shard actors. Without it the shards are
    held in this process (tests, the in-process runner).
    """

    name = "pyhmmer_sharded"
    resident = True
    resident_args = ("fan_out",)

    def __init__(self, config: MsaConfig, fan_out: ShardFanOut | None = None):
        super().__init__(config)
        self.fan_out = fan_out or self._search_local_shards
        self._local: dict[str, list[Shard]] = {}

    @property
    def version(self) -> str:
        return pyhmmer.__version__

    def _search_local_shards(self, database: str, hmm: HMM) -> list[TopHits]:
        if database not in self._local:
            db = self.config.database(database)
            self._local[database] = [load_shard(db, i, self.config.shards) for i in range(self.config.shards)]
        return [search_shard(shard, hmm, self.config) for shard in self._local[database]]

    def search(self, sequence: str, database: DatabaseConfig) -> Alignment:
        return sharded_jackhmmer(QUERY_NAME, sequence, database, self.config,
                                 lambda hmm: self.fan_out(database.name, hmm))
