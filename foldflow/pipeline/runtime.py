"""Connecting to Ray: a local Ray started (and stopped) for the user, or an existing cluster."""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator

import ray


@contextlib.contextmanager
def ray_session(address: str | None, log_to_driver: bool = False, min_cpus: float = 0) -> Iterator[bool]:
    """Use Ray if it is already initialised; else join the cluster at ``address``
    (``PipelineConfig.cluster_address``) or, when it is None, start a local Ray.

    A local Ray offers at least ``min_cpus`` CPUs (what the pools' first actors ask for), so every
    stage starts on a laptop with fewer cores than actors (the OS shares the cores).

    Yields whether the Ray in use is a local one started here, whose nodes never
    change (no autoscaler). A local Ray started here is shut down on exit; the
    dashboard, if any, binds to 127.0.0.1.
    """
    if ray.is_initialized():
        yield False
        return
    if address is None:
        # "local": a Ray of its own, even when `ray start` left one running on this machine
        ray.init(address="local", include_dashboard=False, log_to_driver=log_to_driver,
                 logging_level=logging.WARNING, configure_logging=True,
                 num_cpus=max(os.cpu_count() or 1, math.ceil(min_cpus)))
    else:
        logging.getLogger(__name__).info("joining the Ray cluster at %s", address)
        ray.init(address=address, log_to_driver=log_to_driver, logging_level=logging.WARNING)
    try:
        yield address is None
    finally:
        ray.shutdown()
