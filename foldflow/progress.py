"""A run's live progress per stage, shown as bars (``rich``) or written as JSON lines, on stderr.

The scheduler reports every step of every target as it goes (queued, running, done, cached: done from the
store, failed); :class:`RunProgress` counts them per stage and shows

* ``bars``: one bar per stage (MSA and features, model, relax, output) with its running, cached and failed
  counts and an estimate of the time left;
* ``jsonl``: one JSON object per event (time, run, target, stage, item, state and the stage's counts), for
  schedulers and cron logs;
* ``none``: nothing.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Mapping
from typing import Literal, TextIO

ProgressMode = Literal["bars", "jsonl", "none"]
StepState = Literal["queued", "running", "done", "cached", "failed"]


class RunProgress:
    """Counts of each stage's steps by state; ``totals``: steps per step name in this run (targets x items);
    ``labels``: each step's stage as users read it (the workflow's declaration, :attr:`Workflow.labels`)."""

    def __init__(self, mode: ProgressMode, run_id: str, totals: Mapping[str, int], labels: Mapping[str, str],
                 stream: TextIO | None = None):
        self.mode = mode
        self.run_id = run_id
        self.totals = dict(totals)
        self.labels = dict(labels)
        self.stream = stream or sys.stderr
        self.counts: dict[str, Counter] = {step: Counter() for step in totals}
        self.states: dict[str, dict[tuple[str, str | None], StepState]] = {}  # of targets not finished yet
        self._bars = None
        if mode == "bars":
            self._start_bars()

    def _start_bars(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bars = Progress(TextColumn("{task.description:>14}"), BarColumn(), MofNCompleteColumn(),
                              TextColumn("{task.fields[detail]}"), TimeRemainingColumn(),
                              console=Console(file=self.stream), transient=False)
        self._tasks = {step: self._bars.add_task(self.labels[step], total=total, detail="")
                       for step, total in self.totals.items()}
        self._bars.start()

    def step(self, target_id: str, step: str, item: str | None, state: StepState) -> None:
        """One step of one target changed state."""
        states = self.states.setdefault(target_id, {})
        previous = states.get((step, item))
        if previous == state or step not in self.counts:
            return
        counts = self.counts[step]
        if previous:
            counts[previous] -= 1
        counts[state] += 1
        states[step, item] = state
        if self.mode == "jsonl":
            self.stream.write(json.dumps({
                "time": round(time.time(), 3), "run_id": self.run_id, "target": target_id,
                "stage": self.labels[step], "item": item, "state": state,
                "counts": {"total": self.totals[step], **{s: n for s, n in counts.items() if n}}}) + "\n")
            self.stream.flush()
        elif self._bars is not None:
            finished = counts["done"] + counts["cached"] + counts["failed"]
            detail = " ".join(f"{s} {counts[s]}" for s in ("running", "cached", "failed") if counts[s])
            self._bars.update(self._tasks[step], completed=finished, detail=detail)

    def target_finished(self, target_id: str) -> None:
        """The target has no more steps: its steps' states are let go (the counts keep them)."""
        self.states.pop(target_id, None)

    def target_failed(self, target_id: str, error: str) -> None:
        """A target ended in failure (its reason: one line)."""
        if self.mode == "jsonl":
            self.stream.write(json.dumps({"time": round(time.time(), 3), "run_id": self.run_id, "target": target_id,
                                          "state": "failed", "error": error}) + "\n")
            self.stream.flush()
        elif self._bars is not None:
            self._bars.console.print(f"target '{target_id}' failed: {error}", markup=False, highlight=False)

    def summary(self) -> dict[str, dict[str, int]]:
        """Per stage: steps in each state (states with none left out) and the total."""
        return {self.labels[step]: {"total": self.totals[step], **{s: n for s, n in c.items() if n}}
                for step, c in self.counts.items()}

    def close(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None
