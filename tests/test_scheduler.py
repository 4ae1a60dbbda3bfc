"""The scheduler alone, fast: the prediction DAG over in-process stand-in pools (no Ray, no model).

The stand-in workers count every call they get, so each test counts what its
claim is about: calls per step, targets in flight, retries, affinity.
"""

from collections import Counter, deque

import pytest

from foldflow.config import RunConfig
from foldflow.models.base import CompileStats
from foldflow.flow.local import Done, LocalBackend, WorkerLost, start_local
from foldflow.flow.pools import WorkerPool
from foldflow.flow.scheduler import Scheduler
from foldflow.results import TargetResult
from foldflow.runs import RunBook
from foldflow.stages import Placed, Placement, PredictedModel, PreparedTarget
from foldflow.store import Store
from foldflow.targets import Target
from foldflow.flow.workflow import prediction_workflow

CALLS: Counter = Counter()


class StepwiseBackend(LocalBackend):
    """Calls finish one at a time, oldest first, when the scheduler waits: work really is in flight."""

    def __init__(self):
        self.queue: deque = deque()

    def call(self, worker, method, args):
        record, payload = Done(), Done()
        self.queue.append((record, payload, worker, method, args))
        return record, payload

    def ready(self, handles, timeout):
        while self.queue and not any(h.value is not None or h.error is not None for h in handles):
            record, payload, worker, method, args = self.queue.popleft()
            done_record, done_payload = super().call(worker, method, args)
            record.value, record.error, payload.value = done_record.value, done_record.error, done_payload.value
        return [h for h in handles if h.value is not None or h.error is not None]


class Msa:
    def __init__(self, fail=(), lose=None):
        self.fail, self.lose = set(fail), lose or Counter()

    def prepare(self, job):
        CALLS["prepare", job.target.id] += 1
        if self.lose[job.target.id] > 0:
            self.lose[job.target.id] -= 1
            raise WorkerLost("actor died")
        if job.target.id in self.fail:
            raise ValueError(f"bad MSA for {job.target.id}")
        prepared = PreparedTarget({}, "stand-in", {}, 1, job.target.id, {}, 0, "", {"msa": 1}, {"msa": (0.0, 1.0)})
        return Placed(prepared, Placement(1, "msa-node")), {"features": job.target.sequence}


class Model:
    def __init__(self, pid):
        self.pid, self.compiled = pid, set()  # (model, bucket) programs this worker has built

    def predict(self, job, features):
        CALLS["predict", job.target.id, job.item] += 1
        assert features == {"features": job.target.sequence}, "the prepare step's payload reaches the model"
        assert job.inputs == {}, "a prediction takes the features and nothing else"
        self.compiled.add((job.item, 64 if len(job.target.sequence) <= 64 else 96))
        return Placed(PredictedModel(job.item, "", None, len(job.target.sequence), CompileStats(), 0.0, {},
                                     (1.0, 2.0)),
                      Placement(self.pid, "gpu-node")), None


class Writer:
    def write(self, job):
        CALLS["write", job.target.id] += 1
        assert len(job.inputs["predict"]) == 2, "write waits for every model's prediction"
        return Placed(TargetResult(job.target.id, job.target.length), Placement(0, "driver")), None


def targets(*lengths):
    return [Target(f"t{i}", "", "A" * n, "x.fasta") for i, n in enumerate(lengths)]


def scheduler(tmp_path, msa=None, model_workers=1, max_in_flight=4, max_attempts=3,
              models=("model_1_ptm", "model_2_ptm")):
    config = RunConfig(model={"names": list(models), "bucket_lengths": [64, 96]}, relax={"models_to_relax": "none"})
    backend = StepwiseBackend()
    models = iter([Model(pid) for pid in range(10, 10 + model_workers)])
    pools = {"msa": WorkerPool("msa", lambda: start_local(msa or Msa()), backend, 1, 1, 2, 60),
             "model": WorkerPool("model", lambda: start_local(next(models)), backend, model_workers,
                                 model_workers, 1, 60),
             "writer": WorkerPool("writer", lambda: start_local(Writer()), backend, 1, 1, 1, 60)}
    book = RunBook(Store(tmp_path / "store"))
    book.create("r", "x.fasta", str(tmp_path), {}, [], [])
    backends = {name: backend for name in pools}
    return Scheduler(prediction_workflow(config), pools, backends, book, "r", max_in_flight, max_attempts), book


@pytest.fixture(autouse=True)
def reset_calls():
    CALLS.clear()


def test_every_step_runs_once_per_target_and_model(tmp_path):
    run, book = scheduler(tmp_path)
    results = run.run(targets(50, 70, 90))
    assert sorted(r.target_id for r in results) == ["t0", "t1", "t2"] and all(r.status == "ok" for r in results)
    expected = Counter({("prepare", t): 1 for t in ("t0", "t1", "t2")})
    expected.update({("predict", t, f"{m}_pred_0"): 1 for t in ("t0", "t1", "t2")
                     for m in ("model_1_ptm", "model_2_ptm")})
    expected.update({("write", t): 1 for t in ("t0", "t1", "t2")})
    assert CALLS == expected
    assert {tid: r["status"] for tid, r in book.targets("r").items()} == {"t0": "ok", "t1": "ok", "t2": "ok"}


def test_targets_in_flight_never_exceed_the_limit(tmp_path):
    run, _ = scheduler(tmp_path, max_in_flight=2)
    in_flight, peak = set(), 0
    original = Msa.prepare

    def watch(self, job):
        nonlocal peak
        in_flight.add(job.target.id)
        peak = max(peak, len(in_flight))
        return original(self, job)

    Msa.prepare = watch
    try:
        run.on_result = lambda result: in_flight.discard(result.target_id)
        assert len(run.run(targets(*[50] * 8))) == 8
    finally:
        Msa.prepare = original
    assert peak == 2


def test_waiting_work_goes_to_the_worker_that_compiled_its_bucket(tmp_path):
    run, _ = scheduler(tmp_path, model_workers=2, models=("model_1_ptm",))
    first, second = run.pools["model"].workers
    run.warm[("model", first)] = {("model_1_ptm", 96)}
    run.warm[("model", second)] = {("model_1_ptm", 64)}
    predict = run.workflow.step("predict")
    waiting = deque([(type("R", (), {"target": t})(), predict, "model_1_ptm") for t in targets(50, 90)])
    worker, work = run._pick("model", [second, first], waiting)
    assert worker is second and work[0].target.length == 50, "the 64 bucket goes to the worker that has it"
    worker, work = run._pick("model", [first], waiting)
    assert worker is first and work[0].target.length == 90
    waiting = deque([(type("R", (), {"target": t})(), predict, "model_1_ptm") for t in targets(90, 50)])
    worker, work = run._pick("model", [second], waiting)
    assert worker is second and work[0].target.length == 50, "skips earlier work of another bucket"


def test_a_lost_worker_is_retried_and_the_attempts_recorded(tmp_path):
    run, book = scheduler(tmp_path, msa=Msa(lose=Counter({"t1": 1})))
    results = {r.target_id: r for r in run.run(targets(50, 60))}
    assert results["t1"].status == "ok" and CALLS["prepare", "t1"] == 2 and CALLS["prepare", "t0"] == 1
    assert book.targets("r")["t1"]["attempts"] == 2 and book.targets("r")["t0"]["attempts"] == 1


def test_a_worker_lost_every_time_fails_the_target_after_max_attempts(tmp_path):
    run, book = scheduler(tmp_path, msa=Msa(lose=Counter({"t0": 99})), max_attempts=3)
    results = {r.target_id: r for r in run.run(targets(50, 60))}
    assert results["t0"].status == "failed" and "WorkerLost: actor died" in results["t0"].error
    assert CALLS["prepare", "t0"] == 3 and book.targets("r")["t0"]["attempts"] == 3
    assert results["t1"].status == "ok"


def test_an_error_fails_its_target_only_without_retries(tmp_path):
    run, book = scheduler(tmp_path, msa=Msa(fail={"t0"}))
    results = {r.target_id: r for r in run.run(targets(50, 60, 70))}
    assert results["t0"].status == "failed" and results["t0"].error == "ValueError: bad MSA for t0"
    assert CALLS["prepare", "t0"] == 1 and not any(key[1] == "t0" for key in CALLS if key[0] != "prepare")
    assert results["t1"].status == results["t2"].status == "ok"
    assert book.targets("r")["t0"]["status"] == "failed"


def test_a_cancelled_run_stops_before_new_work(tmp_path):
    run, book = scheduler(tmp_path)
    book.request_cancel("r")
    assert run.run(targets(50, 60)) == [] and run.cancelled
    assert not CALLS and {r["status"] for r in book.targets("r").values()} == {"cancelled"}


def test_a_step_whose_inputs_are_not_earlier_steps_is_refused():
    from foldflow.flow.workflow import StepSpec, Workflow

    with pytest.raises(ValueError, match="step 'a': inputs \\['b'\\] are not earlier steps"):
        Workflow((StepSpec("a", "p", "a", inputs=("b",)), StepSpec("b", "p", "b")), (), lambda *a: None,
                 lambda *a: None)
