"""A design campaign streamed through Ray Data: a lazy range of design indices -> backbones (tasks) ->
ProteinMPNN (an autoscaling actor pool) -> refold and filter (an actor pool of the prediction pipeline's
model worker) -> relaxation (when asked) -> Parquet written while the campaign runs.

Durable: Ray Data's row checkpointing (``CheckpointConfig`` on the ``id`` column, the backbone index) keeps
under the output folder which indices were written; running the campaign again into the same folder
skips them, after a crash or a SIGKILL as after a finished run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import ray
from ray.data import ActorPoolStrategy
from ray.data.checkpoint import CheckpointConfig

from foldflow.config import RunConfig
from foldflow.design.campaign import Refolder, Relaxer, SequenceDesigner, backbone_rows, summary_rows
from foldflow.design.sources import design_count
from foldflow.pipeline.runtime import ray_session

DESIGNS_FOLDER = "designs"  # Parquet files under the output folder
CHECKPOINT_FOLDER = ".checkpoint"
MAX_BLOCKS = 2000
BLOCK_BYTES = 64 << 10


@dataclass
class DesignRun:
    out_dir: Path
    designs: int  # backbones in the campaign
    seconds: float

    @property
    def parquet(self) -> Path:
        return self.out_dir / DESIGNS_FOLDER


def design_dataset(config: RunConfig, out_dir: Path) -> ray.data.Dataset:
    """The campaign as a lazy Dataset (nothing runs until it is written)."""
    d = config.design
    # Blocks of about this size flow from stage to stage: a batch of designs (whose PDB texts are 20-50 kB
    # each) leaves a stage as soon as it is done, so the first designs reach the Parquet files while later
    # ones are still being generated (with Ray's default 128 MiB, thousands of designs pass at once).
    ray.data.DataContext.get_current().target_max_block_size = BLOCK_BYTES
    actors = {"batch_size": d.batch_size, "batch_format": "pandas", "num_cpus": d.actor_cpus}
    count = design_count(d)
    # One batch per block (a crash loses at most the blocks in flight), at most MAX_BLOCKS blocks to plan.
    ds = ray.data.range(count, override_num_blocks=max(1, min(math.ceil(count / d.batch_size), MAX_BLOCKS)))
    ds = ds.map_batches(backbone_rows, fn_kwargs={"config": d}, batch_size=d.batch_size, batch_format="numpy",
                        num_cpus=d.actor_cpus)
    ds = ds.map_batches(SequenceDesigner, fn_constructor_kwargs={"config": d}, num_gpus=d.mpnn_gpus,
                        compute=ActorPoolStrategy(min_size=d.mpnn_actors[0], max_size=d.mpnn_actors[1]), **actors)
    ds = ds.map_batches(Refolder, fn_constructor_kwargs={"config": d, "model": config.model,
                                                         "store_uri": config.store},
                        num_gpus=d.refold_gpus,
                        compute=ActorPoolStrategy(min_size=d.refold_actors[0], max_size=d.refold_actors[1]), **actors)
    if d.relax:
        ds = ds.map_batches(Relaxer, fn_constructor_kwargs={"settings": config.effective_relax()},
                            compute=ActorPoolStrategy(min_size=1, max_size=d.refold_actors[1]), **actors)
    return ds.map_batches(summary_rows, batch_format="pandas", num_cpus=d.actor_cpus)


def run_design(config: RunConfig, out_dir: Path) -> DesignRun:
    """Run (or resume) the campaign into ``out_dir``."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    d = config.design
    # A local Ray offers every actor pool at its largest plus room for the read, map and write tasks (with
    # too few CPUs the write tasks wait for ever behind the actors; the OS shares the cores).
    largest = d.actor_cpus * (d.mpnn_actors[1] + d.refold_actors[1] + (d.refold_actors[1] if d.relax else 0))
    with ray_session(config.pipeline.cluster_address(), min_cpus=largest + 2):
        context = ray.data.DataContext.get_current()
        context.checkpoint_config = CheckpointConfig(
            id_column="id", checkpoint_path=str(out_dir / CHECKPOINT_FOLDER), delete_checkpoint_on_success=False)
        context.enable_progress_bars = config.pipeline.progress == "bars"
        design_dataset(config, out_dir).write_parquet(str(out_dir / DESIGNS_FOLDER))
    return DesignRun(out_dir, design_count(config.design), time.perf_counter() - start)
