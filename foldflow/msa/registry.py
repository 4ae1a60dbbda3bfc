"""The MSA engines by name: configs name an engine, the stages never test for a kind."""

from __future__ import annotations

from collections.abc import Callable

from foldflow.config import MsaConfig
from foldflow.msa.engine import MsaEngine
from foldflow.msa.jackhmmer import PyhmmerEngine
from foldflow.msa.precomputed import PrecomputedEngine
from foldflow.msa.sharded import ShardedPyhmmerEngine

_ENGINES: dict[str, Callable[..., MsaEngine]] = {
    engine.name: engine for engine in (PyhmmerEngine, ShardedPyhmmerEngine, PrecomputedEngine)}


def register_engine(name: str, factory: Callable[..., MsaEngine]) -> None:
    """Name another engine (e.g. a new search tool) so configs can choose it with ``msa.engine``."""
    _ENGINES[name] = factory


def make_engine(name: str, config: MsaConfig, **resident) -> MsaEngine:
    """The engine called ``name``; ``resident`` passes handles some engines use (e.g. shard searchers)."""
    if name not in _ENGINES:
        raise ValueError(f"unknown MSA engine '{name}' (msa.engine: one of {', '.join(sorted(_ENGINES))})")
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
