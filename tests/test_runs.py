"""Durable runs: resume after the driver is SIGKILLed, cancel, killed actors, incremental re-runs."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
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


Ledger = dict[tuple[str, str], Counter]


def ledger(store: Store) -> Ledger:
    """Every computation the store's ledger counts, of every kind: (kind, key) -> started / finished."""
    return {(kind, key): counts for kind in store.list_dir("computations")
            for key, counts in store.computations(kind).items()}


def unfinished(store: Store, kind: str) -> set[tuple[str, str]]:
    """(key, token) of each computation of ``kind`` that the ledger shows started and not finished: in
    flight, or cut by a kill (a key may have both, and finished computations besides)."""
    found = set()
    for key, counts in store.computations(kind).items():
        if counts["started"] > counts["finished"]:
            events = [name.rsplit(".", 1) for name in store.list_dir(f"computations/{kind}/{key}")]
            found |= {(key, token) for token, event in events if event == "started"} - \
                {(key, token) for token, event in events if event == "finished"}
    return found


def unfinished_of_every_kind(store: Store) -> set[tuple[str, str, str]]:
    """(kind, key, token) of every computation started and not finished."""
    return {(kind, key, token) for kind in store.list_dir("computations") for key, token in unfinished(store, kind)}


def stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP): its state in /proc/<pid>/stat is T."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "T"


def kill_mid_computation(store: Store, kind: str, timeout: float = 600.0) -> str:
    """SIGKILL the process computing a step of ``kind`` while it computes it: the process (the ledger names
    it) is stopped (SIGSTOP) and killed only if the ledger then shows that computation still unfinished and
    the store lacks its result; else it goes on (SIGCONT) and the ledger is watched again. Returns the
    step's key."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for key, token in unfinished(store, kind):
            pid = store.get_record(f"computations/{kind}/{key}/{token}.started")["pid"]
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:  # a computation cut earlier
                continue
            wait_for(lambda: stopped(pid), timeout=10, what=f"process {pid} to stop")
            stored = store.has_json(kind, key) or store.get_arrays(kind, key) is not None
            if (key, token) in unfinished(store, kind) and not stored:
                os.kill(pid, signal.SIGKILL)
                return key
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.005)
    raise AssertionError(f"no {kind} computation caught in flight")


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

    # 2. resume, then SIGKILL the driver (and the local Ray it started) mid-prediction
    before_resume = unfinished_of_every_kind(Store(store))  # computations the cancel cut
    process = foldflow_process("runs", "resume", "nightly-1", "--store", store)
    wait_for(lambda: book.state("nightly-1")["state"] == "running", what="the resumed run to start")
    watcher = foldflow_process("runs", "status", "nightly-1", "--store", store, "--watch", "--interval", "0.2")
    first_line = watcher.stdout.readline()
    wait_for(lambda: len(ok_targets(book, "nightly-1")) > len(finished_first), what="progress after resume")
    wait_for(lambda: any(kind == "prediction" for kind, _, _ in unfinished_of_every_kind(Store(store)) - before_resume),
             what="a prediction started by the resumed run, not finished")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    cut = {(kind, key) for kind, key, _ in unfinished_of_every_kind(Store(store)) - before_resume}
    assert any(kind == "prediction" for kind, _ in cut), f"the kill cut no prediction mid-way: {cut}"
    at_kill = ledger(Store(store))
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
    # across cancel, resume, SIGKILL and resume: every step computed exactly once (counted, not stored), and
    # each computation the kill cut was started once more (twice in all, unless the cancel had cut it too)
    for kind in ("features", "prediction"):
        finished = {key: c["finished"] for key, c in Store(store).computations(kind).items()}
        assert len(finished) == 4 and set(finished.values()) == {1}, (kind, finished)
    final = ledger(Store(store))
    for step in cut:
        assert final[step] == {"started": at_kill[step]["started"] + 1, "finished": 1}, (step, at_kill[step])


def test_killed_actors_are_restarted_and_nothing_is_lost(tmp_path):
    """An MSA worker killed mid-search and a model worker killed mid-prediction (only those workers compute
    those steps): each cut computation is started again (the ledger: started twice, finished once) and the
    run finishes every target."""
    fasta = four_targets(tmp_path)
    config = small_run_config(tmp_path / "store", max_in_flight=2)
    config.msa.precomputed_dir = tmp_path / "msas"
    store = Store(config.store)
    cut: dict[str, str] = {}  # kind -> the key whose computation the kill cut

    def kill_workers():
        cut["msa"] = kill_mid_computation(store, "msa")
        cut["prediction"] = kill_mid_computation(store, "prediction")

    killer = threading.Thread(target=kill_workers, daemon=True)
    killer.start()
    run = foldflow.predict(fasta, tmp_path / "out", config, run_id="killed-actors")
    killer.join(timeout=10)
    assert set(cut) == {"msa", "prediction"}
    assert run.ok, run.failed
    assert sorted(r.target_id for r in run.results) == ["HG003686_698", "HG003690_101", "HG003690_137", "short"]
    for kind, key in cut.items():
        assert store.computations(kind)[key] == {"started": 2, "finished": 1}, f"the cut {kind} was not retried"
    predictions = store.computations("prediction")
    assert len(predictions) == 4 and {c["finished"] for c in predictions.values()} == {1}, predictions


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
    folders = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    written = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for folder in folders for p in (folder, *folder.rglob("*"))}
    third = foldflow.predict(grown, tmp_path / "out", config, run_id="night-3").to_pandas().set_index("target_id")
    assert third.loc["HG003686_84", "model_calls"] == 1 and third.loc["HG003686_84", "msa_searches"] == 3
    assert third.drop(index="HG003686_84")["cached"].all()
    assert third["outputs_written"].to_dict() == {**{p.name: False for p in folders}, "HG003686_84": True}
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in written} == written, "earlier folders not rewritten"
    predictions = Store(config.store).computations("prediction")
    assert len(predictions) == 5 and {c["finished"] for c in predictions.values()} == {1}, "each computed once"
    assert {r["run_id"] for r in foldflow.list_runs(config.store)} == {"reference", "night-2", "night-3"}
