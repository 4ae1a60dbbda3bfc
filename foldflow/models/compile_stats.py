"""XLA compilation counts and seconds, from JAX's own monitoring events."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from jax import monitoring

from foldflow.models.base import CompileStats

_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
_CACHE_HIT = "/jax/compilation_cache/cache_hits"


class _Monitor:
    def __init__(self) -> None:
        self.total = CompileStats()
        monitoring.register_event_listener(self._on_event)
        monitoring.register_event_duration_secs_listener(self._on_duration)

    def _on_event(self, event: str, **kwargs) -> None:
        if event == _CACHE_HIT:  # also reported as a backend compile below: not built, loaded
            self.total.cache_hits += 1
            self.total.compiles -= 1

    def _on_duration(self, event: str, duration: float, **kwargs) -> None:
        if event == _BACKEND_COMPILE:  # every program XLA had to produce, with or without a disk cache
            self.total.compiles += 1
            self.total.seconds += duration


_monitor: _Monitor | None = None


@contextlib.contextmanager
def measure_compiles() -> Iterator[CompileStats]:
    """Count what XLA compiles inside the ``with`` block (the stats are filled in on exit)."""
    global _monitor
    if _monitor is None:
        _monitor = _Monitor()
    before = CompileStats(**vars(_monitor.total))
    stats = CompileStats()
    try:
        yield stats
    finally:
        stats.compiles = _monitor.total.compiles - before.compiles
        stats.cache_hits = _monitor.total.cache_hits - before.cache_hits
        stats.seconds = _monitor.total.seconds - before.seconds
