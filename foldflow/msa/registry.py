"""The MSA engines by name: configs name an engine per database, the stages never test for a kind."""

from __future__ import annotations

from foldflow.config import MsaConfig
from foldflow.msa.engine import MsaEngine
from foldflow.msa.hhblits import HHblitsEngine
from foldflow.msa.jackhmmer import PyhmmerEngine
from foldflow.msa.mmseqs import MMseqs2Engine
from foldflow.msa.precomputed import PrecomputedEngine
from foldflow.msa.sharded import ShardedPyhmmerEngine

_ENGINES: dict[str, type[MsaEngine]] = {
    engine.name: engine
    for engine in (PyhmmerEngine, ShardedPyhmmerEngine, HHblitsEngine, MMseqs2Engine, PrecomputedEngine)}


def register_engine(engine: type[MsaEngine]) -> None:
    """Name another engine (e.g. a new search tool) so configs can choose it (msa.engine, a database's engine)."""
    _ENGINES[engine.name] = engine


def engine_class(name: str) -> type[MsaEngine]:
    if name not in _ENGINES:
        raise ValueError(f"unknown MSA engine '{name}' (msa.engine or a database's engine: one of "
                         f"{', '.join(sorted(n for n in _ENGINES if n != 'precomputed'))})")
    return _ENGINES[name]


def make_engine(name: str, config: MsaConfig, **resident) -> MsaEngine:
    """The engine called ``name``; of ``resident`` (handles from the stage: shard searchers, the run's
    upcoming chains) it gets those its class takes (``resident_args``)."""
    engine = engine_class(name)
    return engine(config, **{k: v for k, v in resident.items() if k in engine.resident_args})


def engines_for(config: MsaConfig, **resident) -> list[MsaEngine]:
    """The engines a run consults: precomputed files first (when configured), then one search engine per
    engine the databases name (unless precomputed files are required)."""
    chain = []
    if config.precomputed_dir is not None:
        chain.append(make_engine("precomputed", config))
    if not config.require_precomputed:
        chain += [make_engine(name, config, **resident) for name in config.search_engines()]
    return chain
