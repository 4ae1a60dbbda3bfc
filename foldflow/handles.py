"""A run started without waiting for it (:func:`foldflow.start`), for notebooks: the cell returns at once.

The run is ``foldflow predict`` in a child process (its own local Ray, or ``--address`` a cluster), so the
notebook's kernel holds no Ray and stays responsive; the handle follows it through the run's records in the
store, as ``foldflow runs status`` does, and reads its result from there when it is done.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from foldflow.api import RunResult
from foldflow.config import RunConfig, dump_config
from foldflow.errors import FoldflowError
from foldflow.options import overrides_from_keywords, predict_args
from foldflow.results import TargetResult
from foldflow.runs import RunBook, check_run_id, new_run_id, status_line, unstarted_status
from foldflow.store import Store


@dataclass
class RunHandle:
    """A run going on in another process: its id, where it stands, and its result once done."""

    run_id: str
    store: str
    out_dir: Path
    log: Path  # the child process's output (warnings, errors)
    process: subprocess.Popen = field(repr=False)

    def status(self) -> dict:
        """Where the run stands (as :func:`foldflow.run_status`); before the run has started: state "starting"."""
        book = RunBook(Store(self.store))
        return book.status(self.run_id) if book.exists(self.run_id) else unstarted_status(self.run_id)

    @property
    def progress(self) -> float:
        """Fraction of the run's targets finished."""
        return self.status()["progress"]

    def done(self) -> bool:
        return self.process.poll() is not None

    def wait(self, timeout: float | None = None, interval: float = 2.0, show: bool = False) -> int:
        """Wait for the run to end (``show``: print a line whenever where it stands changes); its exit code."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last = None
        while not self.done():
            if show and (line := status_line(self.status())) != last:
                print(line, flush=True)
                last = line
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {self.run_id} still going after {timeout} s")
            time.sleep(interval)
        if show:
            print(status_line(self.status()), flush=True)
        return self.process.returncode

    def result(self) -> RunResult:
        """The run's :class:`~foldflow.api.RunResult`, once it has ended (waits for it)."""
        code = self.wait()
        summary = self.out_dir / "summary.parquet"
        if not summary.is_file():
            tail = self.log.read_text(errors="replace").strip().splitlines()[-1:] if self.log.is_file() else []
            raise FoldflowError(f"run {self.run_id} ended (exit {code}) without a summary: {' '.join(tail)}")
        book = RunBook(Store(self.store))
        records = book.targets(self.run_id)
        results = [TargetResult.from_record(r["result"]) for r in records.values() if r and r.get("result")]
        random_params = RunConfig.model_validate(book.manifest(self.run_id).config).model.uses_random_params
        return RunResult(self.run_id, self.out_dir, results, pq.read_table(summary), random_params,
                         cancelled=book.state(self.run_id)["state"] == "cancelled")


def start(fasta: str | Path, out: str | Path, config: RunConfig | str | Path | None = None,
          run_id: str | None = None, **overrides) -> RunHandle:
    """:func:`foldflow.predict` without waiting: start the run in a child process and return its handle at once
    (``overrides``: option names or dotted settings, as for :func:`foldflow.predict`, that have a command-line
    option)."""
    from foldflow.config import load_config

    overrides = overrides_from_keywords(overrides)
    run_id = check_run_id(run_id) if run_id else new_run_id()
    loaded = config if isinstance(config, RunConfig) else load_config(config)
    store = str(overrides.get("store") or loaded.store)
    if "://" not in store:  # a path: the same folder for this process and the child, whatever their folders
        store = str(Path(store).resolve())
    overrides = {**overrides, "store": store}
    if isinstance(config, RunConfig):  # the child reads its settings from a file
        handle = tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=f"foldflow-{run_id}-", delete=False)
        handle.write(dump_config(config))
        handle.close()
        config = handle.name
    args = predict_args(fasta, out, config, {"pipeline.progress": "none", **overrides})
    log = Path(tempfile.gettempdir()) / f"foldflow-{run_id}.log"
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "foldflow", "predict", *args, "--run-id", run_id],
                                   stdout=output, stderr=subprocess.STDOUT)
    return RunHandle(run_id, store, Path(out).resolve(), log, process)
