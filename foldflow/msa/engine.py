"""One interface for every way of getting a target's alignments, and the registry that names them.

An engine turns a target into :class:`MsaStep`\\ s, one per alignment: each
step carries its store key (what affects its result, never the target's
display name) and how to compute it. Engines declare the databases they
need, the resources one search wants, a version for the keys, and whether
they hold state resident (databases in memory).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from foldflow.compute import Resources
from foldflow.config import DatabaseConfig, MsaConfig
from foldflow.msa.alignment import QUERY_NAME, Alignment
from foldflow.steps import search_key
from foldflow.targets import Target


@dataclass(frozen=True)
class MsaStep:
    """One alignment to obtain: ``key`` addresses its stored result, ``compute`` makes it."""

    database: str
    key: str
    compute: Callable[[], Alignment]


class MsaEngine(ABC):
    """A way to get alignments: search engines, or files given by the user."""

    name: ClassVar[str]
    resident: ClassVar[bool]  # holds databases (or other state) in memory between targets
    stores_results: ClassVar[bool] = True  # False: results are inputs already (files), not stored again

    def __init__(self, config: MsaConfig):
        self.config = config

    @property
    @abstractmethod
    def version(self) -> str:
        """The tool's version: part of every key this engine makes."""

    def databases(self) -> list[DatabaseConfig]:
        """Databases this engine reads (checked to exist before a run starts)."""
        return []

    def resources(self) -> Resources:
        return Resources(cpus=self.config.cpus_per_search)

    @abstractmethod
    def plan(self, target: Target) -> list[MsaStep]:
        """The alignments of ``target``; empty when this engine has none for it."""

    def warm(self) -> None:
        """Load resident state now (before the first target needs it)."""

    def info(self) -> dict:
        """Facts about resident state for run records (load seconds, residues held)."""
        return {}


class DatabaseSearchEngine(MsaEngine):
    """A search engine: one search of the target's sequence per configured database."""

    def databases(self) -> list[DatabaseConfig]:
        return list(self.config.databases)

    def resources(self) -> Resources:
        size_gb = sum(db.path.stat().st_size for db in self.config.databases if db.path.is_file()) / 2**30
        return Resources(cpus=self.config.cpus_per_search, memory_gb=round(size_gb, 3) or None)

    @abstractmethod
    def search(self, sequence: str, database: DatabaseConfig) -> Alignment:
        """Search ``sequence`` (named :data:`QUERY_NAME`) against one database."""

    def plan(self, target: Target) -> list[MsaStep]:
        return [MsaStep(db.name, search_key(target.sequence, db, self.config, self.name, self.version),
                        lambda db=db: self.search(target.sequence, db))
                for db in self.config.databases]


_ENGINES: dict[str, Callable[..., MsaEngine]] = {}
_builtin_registered = False


def register_engine(name: str, factory: Callable[..., MsaEngine]) -> None:
    _ENGINES[name] = factory


def engine_names() -> list[str]:
    _register_builtin()
    return sorted(_ENGINES)


def make_engine(name: str, config: MsaConfig, **resident) -> MsaEngine:
    """The engine called ``name``; ``resident`` passes handles some engines use (e.g. shard searchers)."""
    _register_builtin()
    if name not in _ENGINES:
        raise ValueError(f"unknown MSA engine '{name}' (known: {', '.join(sorted(_ENGINES))})")
    return _ENGINES[name](config, **resident)


def engines_for(config: MsaConfig, **resident) -> list[MsaEngine]:
    """The engines a run consults in order: precomputed files first (when configured), then the
    search engine (unless precomputed files are required)."""
    chain = []
    if config.precomputed_dir is not None:
        chain.append(make_engine("precomputed", config))
    if not config.require_precomputed:
        chain.append(make_engine(config.engine, config, **resident))
    return chain


def _register_builtin() -> None:
    global _builtin_registered
    if _builtin_registered:
        return
    _builtin_registered = True
    from foldflow.msa.jackhmmer import PyhmmerEngine
    from foldflow.msa.precomputed import PrecomputedEngine
    from foldflow.msa.sharded import ShardedPyhmmerEngine

    for engine in (PyhmmerEngine, ShardedPyhmmerEngine, PrecomputedEngine):
        _ENGINES.setdefault(engine.name, engine)


