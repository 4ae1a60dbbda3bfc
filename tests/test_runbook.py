"""Run records: manifests, target states, status and cancel, with hostile ids kept inside the store."""

import pytest

from foldflow.runs import RunBook, RunNotFoundError, check_run_id
from foldflow.store import Store
from foldflow.targets import InvalidTarget, Target


@pytest.fixture
def book(tmp_path):
    return RunBook(Store(tmp_path / "store"))


def test_status_counts_and_failures(book, tmp_path):
    targets = [Target("a", "a", "MKV", "in.fasta"), Target("b", "b", "MKW", "in.fasta")]
    invalid = [InvalidTarget("../../x", "../../x", "in.fasta", "id '../../x' would write outside the output directory")]
    book.create("run-1", "in.fasta", str(tmp_path / "out"), {}, targets, invalid)
    book.set_target("run-1", "a", "ok")
    book.set_target("run-1", "b", "failed", error="ValueError: bad MSA")
    status = book.status("run-1")
    assert status["counts"] == {"failed": 1, "invalid": 1, "ok": 1}
    assert status["progress"] == 1.0
    assert status["failures"] == {"../../x": "id '../../x' would write outside the output directory",
                                  "b": "ValueError: bad MSA"}
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert all(str(p).startswith("store/runs/run-1/") for p in written)


def test_cancel_requests_and_unknown_runs(book, tmp_path):
    book.create("run-2", "in.fasta", str(tmp_path), {}, [], [])
    assert not book.cancel_requested("run-2")
    book.request_cancel("run-2")
    assert book.cancel_requested("run-2")
    book.clear_cancel("run-2")
    assert not book.cancel_requested("run-2")
    with pytest.raises(RunNotFoundError, match="run 'nope' not found"):
        book.request_cancel("nope")
    assert book.run_ids() == ["run-2"]


@pytest.mark.parametrize("run_id", ["../up", "a/b", "", ".hidden", "x" * 129])
def test_run_ids_are_safe_names(run_id):
    with pytest.raises(ValueError, match="run id"):
        check_run_id(run_id)


def test_target_states_are_written_a_batch_per_flush(book, tmp_path):
    targets = [Target(f"t{i}", f"t{i}", "MKV", "in.fasta") for i in range(50)]
    book.create("run-3", "in.fasta", str(tmp_path / "out"), {}, targets, [])
    for target in targets:
        book.set_target("run-3", target.id, "msa")
        book.set_target("run-3", target.id, "ok")
    batches = tmp_path / "store" / "runs" / "run-3" / "targets"
    reader = RunBook(Store(tmp_path / "store"))  # another process: sees what is written only
    assert len(list(batches.iterdir())) == 1 and reader.status("run-3")["counts"] == {"pending": 50}
    assert book.status("run-3")["counts"] == {"ok": 50}, "the writing book sees its unwritten states"
    book.flush("run-3")
    assert len(list(batches.iterdir())) == 2, "100 state changes, one file"
    assert reader.status("run-3")["counts"] == {"ok": 50}
