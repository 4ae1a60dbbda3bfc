"""Durable runs: resume after the driver is SIGKILLed, cancel, killed actors, incremental re-runs."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import foldflow
from foldflow.runs import RunBook
from foldflow.store import Store
from conftest import DATA, DEMO_FASTA, four_targets, small_run_config

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SMALL_CONFIG = DATA / "small.yaml"


def foldflow_process(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "foldflow", *map(str, args)], env=os.environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def foldflow_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "foldflow", *map(str, args)], env=os.environ,
                          capture_output=True, text=True, timeout=900)


def wait_for(condition, timeout=600.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def ok_targets(book: RunBook, run_id: str) -> set[str]:
    return {tid for tid, record in book.targets(run_id).items() if record and record["status"] == "ok"}


def files_without_timings(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "timings.json"}


@pytest.fixture
def reference(four_targets_run) -> Path:
    """An uninterrupted run of the four targets, in its own store (``out/`` and ``store/`` under this folder)."""
    return Path(four_targets_run.out_dir).parent


def test_cancel_then_sigkill_then_resume_gives_identical_outputs(tmp_path, reference):
    fasta = four_targets(tmp_path)
    store, out = tmp_path / "store", tmp_path / "out"
    book = RunBook(Store(store))
    predict = ("predict", fasta, "--out", out, "--config", SMALL_CONFIG, "--msa-dir", tmp_path / "msas",
               "--store", store, "--run-id", "nightly-1")

    # 1. cancel: running work stops, finished work stays
    process = foldflow_process(*predict)
    wait_for(lambda: ok_targets(book, "nightly-1") if book.exists("nightly-1") else False, what="a first target")
    assert foldflow_cli("runs", "cancel", "nightly-1", "--store", store).returncode == 0
    assert process.wait(timeout=120) == 1, process.stderr.read()
    status = foldflow.run_status("nightly-1", str(store))
    assert status["state"] == "cancelled" and 1 <= status["counts"]["ok"] < 4
    finished_first = ok_targets(book, "nightly-1")

    # 2. resume, then SIGKILL the driver (and the local Ray it started) mid-run
    process = foldflow_process("runs", "resume", "nightly-1", "--store", store)
    wait_for(lambda: book.state("nightly-1")["state"] == "running", what="the resumed run to start")
    watcher = foldflow_process("runs", "status", "nightly-1", "--store", store, "--watch", "--interval", "0.2")
    first_line = watcher.stdout.readline()
    wait_for(lambda: len(ok_targets(book, "nightly-1")) > len(finished_first), what="progress after resume")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    # the watcher, another process, followed the resumed run and stopped when its driver was gone
    watched = [first_line, *watcher.communicate(timeout=60)[0].splitlines()]
    assert watcher.returncode == 0 and len(watched) >= 2, watched
    assert "run nightly-1: running" in watched[0] and "run nightly-1: interrupted" in watched[-1], watched
    assert len(ok_targets(book, "nightly-1")) < 4, "the kill came too late to test anything"
    shown = foldflow_cli("runs", "status", "nightly-1", "--store", store)
    assert "run nightly-1: interrupted" in shown.stdout and "ok:" in shown.stdout

    # 3. resume after the crash finishes the run
    resumed = foldflow_cli("runs", "resume", "nightly-1", "--store", store)
    assert resumed.returncode == 0, resumed.stderr
    assert foldflow.run_status("nightly-1", str(store))["counts"] == {"ok": 4}

    # every target exactly once, byte-identical to the uninterrupted run (but for timings)
    targets = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert targets == ["HG003686_698", "HG003690_101", "HG003690_137", "short"]
    assert not list(out.glob(".*"))
    for target in targets:
        assert files_without_timings(out / target) == files_without_timings(reference / "out" / target), target
    # across cancel, resume, SIGKILL and resume: every step computed exactly once (counted, not stored)
    for kind in ("features", "prediction"):
        finished = {key: c["finished"] for key, c in Store(store).computations(kind).items()}
        assert len(finished) == 4 and set(finished.values()) == {1}, (kind, finished)


def test_killed_actors_are_restarted_and_nothing_is_lost(tmp_path):
    fasta = four_targets(tmp_path)
    config = small_run_config(tmp_path / "store", max_in_flight=2)
    config.msa.precomputed_dir = tmp_path / "msas"
    book = RunBook(Store(config.store))
    killed: dict[str, int] = {}

    def kill_workers():
        def workers() -> dict:
            run_ids = book.run_ids()
            return (book.state(run_ids[0]).get("workers") or {}) if run_ids else {}

        wait_for(lambda: workers().get("msa"), what="an MSA worker to report")
        killed["msa"] = workers()["msa"][0]["pid"]
        os.kill(killed["msa"], signal.SIGKILL)
        wait_for(lambda: workers().get("model"), what="a model worker to report")
        wait_for(lambda: any(c["started"] > c["finished"] for c in Store(config.store).computations("prediction")
                             .values()), what="a prediction in progress (started in the ledger, not finished)")
        killed["model"] = workers()["model"][0]["pid"]
        os.kill(killed["model"], signal.SIGKILL)

    killer = threading.Thread(target=kill_workers, daemon=True)
    killer.start()
    run = foldflow.predict(fasta, tmp_path / "out", config, run_id="killed-actors")
    killer.join(timeout=10)
    assert set(killed) == {"msa", "model"}
    assert run.ok, run.failed
    assert sorted(r.target_id for r in run.results) == ["HG003686_698", "HG003690_101", "HG003690_137", "short"]
    predictions = Store(config.store).computations("prediction")
    assert len(predictions) == 4 and {c["finished"] for c in predictions.values()} == {1}, predictions
    assert any(c["started"] == 2 for c in predictions.values()), "the killed actor's prediction was lost and retried"


def test_second_run_computes_nothing_and_a_grown_batch_only_the_new_target(tmp_path, reference):
    """The reference run computed the four targets once; a copy of its store is the first night."""
    fasta = four_targets(tmp_path)
    shutil.copytree(reference / "store", tmp_path / "store")
    config = small_run_config(tmp_path / "store")
    config.msa.precomputed_dir = tmp_path / "msas"

    second = foldflow.predict(fasta, tmp_path / "out", config, run_id="night-2").to_pandas()
    assert second["msa_searches"].sum() == 0 and second["model_calls"].sum() == 0
    assert second["cached"].all()

    grown = tmp_path / "grown.fasta"
    grown.write_text(fasta.read_text() + ">" + DEMO_FASTA.read_text().split(">")[4])
    third = foldflow.predict(grown, tmp_path / "out", config, run_id="night-3").to_pandas().set_index("target_id")
    assert third.loc["HG003686_84", "model_calls"] == 1 and third.loc["HG003686_84", "msa_searches"] == 3
    assert third.drop(index="HG003686_84")["cached"].all()
    predictions = Store(config.store).computations("prediction")
    assert len(predictions) == 5 and {c["finished"] for c in predictions.values()} == {1}, "each computed once"
    assert {r["run_id"] for r in foldflow.list_runs(config.store)} == {"reference", "night-2", "night-3"}
