"""Per-stage progress: counts by state as steps move (a retried step goes back to queued), rendered as rich bars
or as JSON lines."""

import io
import json

from foldflow.config import RunConfig
from foldflow.flow.workflow import prediction_workflow
from foldflow.progress import RunProgress

TOTALS = {"features": 2, "predict": 4, "write": 2}
LABELS = prediction_workflow(RunConfig(relax={"models_to_relax": "none"})).labels


def replay(progress: RunProgress) -> None:
    """Two targets, two predictions each; t2's first prediction is lost once and retried; t1 comes from the store."""
    for target in ("t1", "t2"):
        progress.step(target, "features", None, "queued")
        progress.step(target, "features", None, "running")
    progress.step("t1", "features", None, "cached")
    progress.step("t2", "features", None, "done")
    for target in ("t1", "t2"):
        for item in ("m1", "m2"):
            progress.step(target, "predict", item, "queued")
            progress.step(target, "predict", item, "running")
    progress.step("t2", "predict", "m1", "queued")  # its actor was lost: submitted again
    progress.step("t2", "predict", "m1", "running")
    for target, state in (("t1", "cached"), ("t2", "done")):
        for item in ("m1", "m2"):
            progress.step(target, "predict", item, state)
        progress.step(target, "write", None, "queued")
        progress.step(target, "write", None, "running")
    progress.step("t1", "write", None, "done")
    progress.step("t2", "write", None, "failed")
    progress.target_failed("t2", "disk full")


def test_counts_follow_each_step_to_its_last_state():
    progress = RunProgress("none", "r1", TOTALS, LABELS)
    replay(progress)
    assert progress.summary() == {"features": {"total": 2, "cached": 1, "done": 1},
                                  "model": {"total": 4, "cached": 2, "done": 2},
                                  "output": {"total": 2, "done": 1, "failed": 1}}


def test_json_lines_carry_each_event_and_the_stage_counts():
    stream = io.StringIO()
    replay(RunProgress("jsonl", "r1", TOTALS, LABELS, stream))
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(events) == 6 + 14 + 6 + 1  # features, predict (with the retry), write; the failure
    retried = [e["state"] for e in events if e.get("target") == "t2" and e.get("item") == "m1"]
    assert retried == ["queued", "running", "queued", "running", "done"]
    assert events[-1] == {**events[-1], "target": "t2", "state": "failed", "error": "disk full"}
    last_model = [e for e in events if e.get("stage") == "model"][-1]
    assert last_model["counts"] == {"total": 4, "cached": 2, "done": 2} and last_model["run_id"] == "r1"


def test_bars_show_each_stage_with_its_counts():
    stream = io.StringIO()
    progress = RunProgress("bars", "r1", TOTALS, LABELS, stream)
    replay(progress)
    progress.close()
    text = stream.getvalue()
    for line in ("features", "model", "output"):
        assert line in text
    assert "4/4" in text and "cached 2" in text and "failed 1" in text
    assert "target 't2' failed: disk full" in text
