"""The in-process backend: a pool's workers are plain objects called in this process.

The driver's output writer runs this way on Ray runs, and the scheduler's
fast tests use it for every pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(eq=False)
class Done:
    """A finished in-process call: its value, or the error it raised."""

    value: Any = None
    error: Exception | None = None


class WorkerLost(RuntimeError):
    """An in-process stand-in for a worker whose process died (tests of retries)."""


class LocalBackend:
    def call(self, worker: Any, method: str, args: tuple) -> tuple[Done, Done]:
        args = tuple(self.get(a) if isinstance(a, Done) else a for a in args)  # payloads of earlier steps
        try:
            record, payload = getattr(worker, method)(*args)
        except Exception as error:  # delivered when the scheduler reads the result, as on Ray
            return Done(error=error), Done()
        return Done(record), Done(payload)

    def ready(self, handles: list, timeout: float) -> list:
        return list(handles)

    def get(self, handle: Done) -> Any:
        if handle.error is not None:
            raise handle.error
        return handle.value

    def is_lost(self, error: Exception) -> bool:
        return isinstance(error, WorkerLost)

    def error_text(self, error: Exception) -> str:
        return f"{type(error).__name__}: {error}".splitlines()[0]


def start_local(worker: Any) -> tuple[Any, None]:
    """A pool's ``start_worker`` result for an in-process worker (running at once)."""
    return worker, None
