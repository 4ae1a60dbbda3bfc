"""What one worker of a stage asks of its node, as engines and models declare it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resources:
    """CPUs, GPUs (fractions allowed) and memory one worker wants."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_gb: float | None = None
