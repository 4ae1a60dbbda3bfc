"""One prediction run on Ray: start or join Ray, run the batch, write the run's summary."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from foldflow.config import RunConfig
from foldflow.outputs import TargetResult
from foldflow.pipeline.driver import BatchDriver
from foldflow.pipeline.runtime import ray_session
from foldflow.targets import Target

log = logging.getLogger("foldflow")


def run_targets(targets: Sequence[Target], config: RunConfig, out_dir: Path) -> list[TargetResult]:
    """Predict every target; failures are recorded per target, never raised."""
    if not targets:
        return []
    with ray_session(config.pipeline.address), tqdm(
            total=len(targets), desc="targets", unit="target", disable=not config.pipeline.progress) as bar:
        def report(result: TargetResult) -> None:
            bar.update()
            if result.status != "ok":
                bar.write(f"target '{result.target_id}' failed: {result.error}")

        driver = BatchDriver(config, out_dir, on_result=report)
        results = driver.run(list(targets))
    order = {t.id: i for i, t in enumerate(targets)}
    return sorted(results, key=lambda r: order[r.target_id])
