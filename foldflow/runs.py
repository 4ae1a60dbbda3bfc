"""Run records in the store: a run's manifest, each target's state, cancel requests.

Layout under the store root::

    runs/<run_id>/run.json            manifest: input, output dir, config, targets (with sequences)
    runs/<run_id>/state.json          running | finished | cancelled | failed (with the error), driver pid, host
    runs/<run_id>/targets/<n>.jsonl   target states, a batch per file: pending | msa | model | relax | output |
                                      ok | failed | cancelled | invalid (the last record of a target wins)
    runs/<run_id>/cancel              present once a cancel was requested

Target states are batched: :meth:`RunBook.set_target` keeps them in memory and :meth:`RunBook.flush` writes
every state changed since the last flush as one file (the scheduler flushes once a second and when the
run's state changes), so a run of 100,000 targets writes a few hundred files, not one per state change.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from foldflow.errors import FoldflowError, InvalidRunIdError
from foldflow.results import TargetResult
from foldflow.store import Store
from foldflow.targets import InvalidTarget, Target

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
FINISHED_TARGET_STATES = ("ok", "failed", "invalid")
RUN_GOING_STATES = ("created", "running")  # a run in these states may still change


class RunNotFoundError(FoldflowError, LookupError):
    pass


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def check_run_id(run_id: str) -> str:
    if not RUN_ID_PATTERN.match(run_id):
        raise InvalidRunIdError(f"run id '{run_id}': use letters, digits, '.', '_' or '-' (at most 128)")
    return run_id


@dataclass
class RunManifest:
    run_id: str
    input: str
    out_dir: str
    config: dict
    targets: list[dict]  # Target fields
    invalid: list[dict]  # InvalidTarget fields
    created: float

    def target_objects(self) -> list[Target]:
        return [Target(**t) for t in self.targets]

    def invalid_objects(self) -> list[InvalidTarget]:
        return [InvalidTarget(**t) for t in self.invalid]


def status_line(status: dict) -> str:
    """Where a run stands, in one line (``runs status``, ``--watch``, ``RunHandle.wait(show=True)``)."""
    counts = ", ".join(f"{k}: {v}" for k, v in status["counts"].items())
    return (f"run {status['run_id']}: {status['state']}, {status['progress']:.0%} of {status['targets']} targets "
            f"done ({status['cached']} from the store)" + (f"; {counts}" if counts else ""))


def unstarted_status(run_id: str, state: str = "starting", error: str | None = None) -> dict:
    """What :meth:`RunBook.status` says of a run that has no records yet (its job or process is starting, or
    failed before foldflow started): the same keys, nothing done."""
    return {"run_id": run_id, "state": state, "error": error, "created": None, "out_dir": "(not created)",
            "input": None, "targets": 0, "counts": {}, "progress": 0.0, "cached": 0, "model_workers": [],
            "msa_workers": [], "failures": {}}


class RunBook:
    """Reads and writes run records in a :class:`Store`."""

    def __init__(self, store: Store):
        self.store = store
        self._unsaved: dict[str, dict[str, dict]] = {}  # run id -> target id -> its latest state, not yet written

    def _path(self, run_id: str, name: str) -> str:
        return f"runs/{run_id}/{name}"

    def create(self, run_id: str, input_path: str, out_dir: str, config: dict,
               targets: list[Target], invalid: list[InvalidTarget]) -> RunManifest:
        manifest = RunManifest(run_id, input_path, out_dir, config, [asdict(t) for t in targets],
                               [asdict(t) for t in invalid], time.time())
        self.store.put_record(self._path(run_id, "run.json"), asdict(manifest))
        for target in targets:
            self.set_target(run_id, target.id, "pending")
        for bad in invalid:
            self.set_target(run_id, bad.id, "invalid", error=bad.error)
        self.flush(run_id)
        return manifest

    def manifest(self, run_id: str) -> RunManifest:
        record = self.store.get_record(self._path(run_id, "run.json"))
        if record is None:
            raise RunNotFoundError(f"run '{run_id}' not found in store {self.store.uri}")
        return RunManifest(**record)

    def exists(self, run_id: str) -> bool:
        return self.store.get_record(self._path(run_id, "run.json")) is not None

    def set_state(self, run_id: str, state: str, **extra) -> None:
        """The run's state (target states set before it are written first)."""
        self.flush(run_id)
        record = {"state": state, "updated": time.time(), "pid": os.getpid(), "host": socket.gethostname(), **extra}
        self.store.put_record(self._path(run_id, "state.json"), record)

    def state(self, run_id: str) -> dict:
        """The run's state record; a "running" run whose driver process is gone reads "interrupted"."""
        record = self.store.get_record(self._path(run_id, "state.json")) or {"state": "created"}
        if record["state"] == "running" and record.get("host") == socket.gethostname() \
                and not _process_alive(record["pid"]):
            record["state"] = "interrupted"
        return record

    def set_target(self, run_id: str, target_id: str, status: str, **info) -> None:
        """A target's state, written with the next :meth:`flush`."""
        record = {"status": status, "updated": time.time(), "target_id": target_id, **info}
        self._unsaved.setdefault(run_id, {})[target_id] = record

    def flush(self, run_id: str) -> None:
        """Write the target states set since the last flush, as one file (named so files sort in time order)."""
        records = self._unsaved.pop(run_id, None)
        if records:
            lines = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records.values())
            name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:6]}.jsonl"
            self.store.put_text(self._path(run_id, f"targets/{name}"), lines)

    def targets(self, run_id: str) -> dict[str, dict]:
        """Each target's latest state: the written batches in order, then any not yet flushed."""
        latest: dict[str, dict] = {}
        for name in self.store.list_dir(self._path(run_id, "targets")):
            if name.endswith(".jsonl"):
                for line in (self.store.get_text(self._path(run_id, f"targets/{name}")) or "").splitlines():
                    record = json.loads(line)
                    latest[record["target_id"]] = record
        latest.update(self._unsaved.get(run_id, {}))
        return latest

    def finished_result(self, record: dict) -> TargetResult | None:
        return TargetResult.from_record(record["result"]) if record.get("result") else None

    def split_finished(self, manifest: RunManifest) -> tuple[dict[str, TargetResult], list[Target]]:
        """(results of targets already ok whose output folder exists, the targets still to run)."""
        states = self.targets(manifest.run_id)
        out_dir = Path(manifest.out_dir)
        finished = {t.id: self.finished_result(states[t.id]) for t in manifest.target_objects()
                    if states.get(t.id, {}).get("status") == "ok" and (out_dir / t.id).is_dir()}
        return finished, [t for t in manifest.target_objects() if t.id not in finished]

    def request_cancel(self, run_id: str) -> None:
        self.manifest(run_id)  # raises for an unknown run
        self.store.put_record(self._path(run_id, "cancel"), {"requested": time.time()})

    def cancel_requested(self, run_id: str) -> bool:
        return self.store.get_record(self._path(run_id, "cancel")) is not None

    def clear_cancel(self, run_id: str) -> None:
        self.store.delete_record(self._path(run_id, "cancel"))

    def run_ids(self) -> list[str]:
        return self.store.list_dir("runs")

    def status(self, run_id: str) -> dict:
        """Where a run stands: state, per-status counts, failures with reasons, progress."""
        manifest = self.manifest(run_id)
        targets = self.targets(run_id)
        counts = Counter(record["status"] for record in targets.values())
        finished = sum(counts[s] for s in FINISHED_TARGET_STATES)
        state = self.state(run_id)
        return {
            "run_id": run_id,
            "state": state["state"],
            "error": state.get("error"),
            "created": manifest.created,
            "out_dir": manifest.out_dir,
            "input": manifest.input,
            "targets": len(targets),
            "counts": dict(sorted(counts.items())),
            "progress": finished / len(targets) if targets else 1.0,
            "cached": sum(1 for r in targets.values() if ((r.get("result") or {}).get("observed") or {}).get("cached")),
            "model_workers": state.get("model_workers", []),
            "msa_workers": state.get("msa_workers", []),
            "failures": {tid: r.get("error") for tid, r in sorted(targets.items())
                         if r["status"] in ("failed", "invalid")},
        }
