"""The in-process runner: one target after the other through the stage functions, without Ray.

For tests, debugging, and a notebook user who wants a few targets now. It
runs exactly the code the Ray actors run (:mod:`foldflow.stage_workers`), so
its outputs are the same bytes as the Ray pipeline's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from foldflow.config import RunConfig
from foldflow.results import TargetResult
from foldflow.runs import RunBook, RunManifest
from foldflow.stage_workers import ModelStage, MsaStage, OutputStage, RelaxStage, StepJob
from foldflow.stages import Placed, failed_result, run_chains
from foldflow.targets import Target


def run_in_process(targets: Sequence[Target], config: RunConfig, out_dir: Path,
                   on_result: Callable[[TargetResult], None] = lambda result: None) -> list[TargetResult]:
    """Predict ``targets`` in this process; a target that fails is recorded, the others go on."""
    msa = MsaStage(config.msa, config.store, upcoming=run_chains(targets))
    model = ModelStage(config.model, config.store, config.model.models_needed({t.is_complex for t in targets}))
    relax = RelaxStage(config.effective_relax(), config.store) if config.relax.models_to_relax != "none" else None
    writer = OutputStage(config, out_dir)
    results = []
    for target in targets:
        prepared: Placed | None = None
        try:
            prepared, features = msa.prepare(StepJob(target))
            predicted = [model.predict(StepJob(target, name, {"prepare": prepared}), features)[0]
                         for name in config.model.runners_for(target.is_complex)]
            inputs = {"prepare": prepared, "predict": predicted}
            if relax is not None:
                inputs["relax"] = relax.relax(StepJob(target, None, {"predict": predicted}))[0]
            result = writer.write(StepJob(target, None, inputs))[0].record
        except Exception as error:  # one target's failure never stops the batch
            result = failed_result(target, f"{type(error).__name__}: {error}".splitlines()[0], prepared, 1)
        on_result(result)
        results.append(result)
    return results


def execute_in_process(manifest: RunManifest, config: RunConfig, book: RunBook) -> tuple[list[TargetResult], bool]:
    """A run's unfinished targets, in this process, with the run's records kept as on Ray."""
    finished, todo = book.split_finished(manifest)
    book.set_state(manifest.run_id, "running")

    def record(result: TargetResult) -> None:
        book.set_target(manifest.run_id, result.target_id, result.status, error=result.error,
                        result=result.to_record(), attempts=1)

    finished.update((r.target_id, r) for r in run_in_process(todo, config, Path(manifest.out_dir), record))
    book.set_state(manifest.run_id, "finished")
    return [finished[t.id] for t in manifest.target_objects() if t.id in finished], False
