"""The scheduler alone, fast: the prediction DAG over in-process stand-in pools (no Ray, no model).

The stand-in workers count every call they get, so each test counts what its
claim is about: calls per step, targets in flight, retries, affinity.
"""

import time
from collections import Counter, deque
from dataclasses import replace

import pytest

from foldflow.config import RunConfig
from foldflow.models.base import CompileStats
from foldflow.flow.local import Done, LocalBackend, WorkerLost, start_local
from foldflow.flow.pools import WorkerPool
from foldflow.flow import scheduler as scheduler_module
from foldflow.flow.scheduler import Scheduler
from foldflow.results import TargetResult, TargetScores
from foldflow.runs import RunBook
from foldflow.flow.workers import Worker
from foldflow.stages import ChainAlignments, ChainTemplates, PredictedModel, TargetFeatures
from foldflow.store import Store
from foldflow.targets import Target
from foldflow.flow.workflow import prediction_workflow

CALLS: Counter = Counter()


class StepwiseBackend(LocalBackend):
    """Calls finish one at a time, oldest first, when the scheduler waits: work really is in flight."""

    def __init__(self):
        self.queue: deque = deque()

    def call(self, worker, method, items, payloads):
        handles = [(Done(), Done()) for _ in items]
        self.queue.extend((record, payload, worker, method, args) for (record, payload), args in zip(handles, items))
        return handles

    def ready(self, handles, timeout):
        while self.queue and not any(h.value is not None or h.error is not None for h in handles):
            record, payload, worker, method, args = self.queue.popleft()
            done_record, done_payload = super().call_one(worker, method, args)
            record.value, record.error, payload.value = done_record.value, done_record.error, done_payload.value
        return [h for h in handles if h.value is not None or h.error is not None]


class Msa:
    """The MSA pool's stand-in resident state: targets whose alignments fail, or whose worker is lost."""

    def __init__(self, fail=(), lose=None):
        self.fail, self.lose = set(fail), lose or Counter()


def align(msa, job):
    CALLS["align", job.target.id, job.item] += 1
    if msa.lose[job.target.id] > 0:
        msa.lose[job.target.id] -= 1
        raise WorkerLost("actor died")
    if job.target.id in msa.fail:
        raise ValueError(f"bad MSA for {job.target.id}")
    return ChainAlignments("stand-in", [], {"msa": 1}, (0.0, 1.0)), None


def search_templates(msa, job):
    CALLS["templates", job.target.id, job.item] += 1
    assert isinstance(job.inputs["align"].record, ChainAlignments), "a chain's templates take its own alignments"
    return ChainTemplates(job.item, "", 0, "pdb_hits.sto", {"templates": 1}, (1.0, 2.0)), \
        {"templates": job.target.distinct_chains[job.item]}


def make_features(msa, job, *template_features):
    CALLS["features", job.target.id] += 1
    chains = list(job.target.distinct_chains)
    assert list(job.inputs["align"]) == list(job.inputs["templates"]) == chains, "every distinct chain's records"
    assert template_features == tuple({"templates": job.target.distinct_chains[c]} for c in chains), \
        "each chain's template features, in order"
    return (TargetFeatures(job.target.id, 1, 0, {"features": 1}, (2.0, 3.0)),
            {"features": job.target.sequence})


class Model:
    def __init__(self, pid):
        self.pid, self.compiled = pid, set()  # (model, bucket) programs this worker has built


def predict(model, job, features):
    CALLS["predict", job.target.id, job.item] += 1
    assert features == {"features": job.target.sequence}, "the features step's payload reaches the model"
    assert job.inputs == {}, "a prediction takes the features and nothing else"
    model.compiled.add((job.item, 64 if len(job.target.sequence) <= 64 else 96))
    return PredictedModel(job.item, "", None, len(job.target.sequence), CompileStats(), 0.0, {}, (1.0, 2.0)), None


def write(writer, job):
    CALLS["write", job.target.id] += 1
    assert len(job.inputs["predict"]) == 2, "write waits for every model's prediction"
    SHARED[job.target.id] = sorted(chain for chain, placed in job.inputs["align"].items() if placed.shared)
    assert job.inputs["score"].record.pdockq == 0.5, "write takes the score step's record"
    return TargetResult(job.target.id, job.target.length), None


def score(writer, job):
    CALLS["score", job.target.id] += 1
    return TargetScores(pdockq=0.5), None


STAND_INS = {"align": align, "templates": search_templates, "features": make_features, "predict": predict,
             "score": score, "write": write}
SHARED: dict = {}  # target -> its chains whose alignments another target's call computed


def targets(*lengths):
    return [Target(f"t{i}", "", "A" * n, "x.fasta") for i, n in enumerate(lengths)]


def scheduler(tmp_path, msa=None, model_workers=1, max_in_flight=4, max_attempts=3,
              models=("model_1_ptm", "model_2_ptm"), msa_calls=2, **stand_ins):
    """The prediction workflow's DAG (templates on, relax off) with stand-in step functions (``stand_ins``
    replace some) over in-process pools; ``msa_calls``: calls the one MSA worker takes at once."""
    config = RunConfig(model={"names": list(models), "bucket_lengths": [64, 96], "predictions_per_model": 1},
                       relax={"models_to_relax": "none"})
    workflow = prediction_workflow(config)
    functions = {**STAND_INS, **stand_ins}
    workflow = replace(workflow, steps=tuple(replace(step, run=functions[step.name]) for step in workflow.steps))
    backend = StepwiseBackend()
    models = iter([Worker(Model(pid)) for pid in range(10, 10 + model_workers)])
    pools = {"msa": WorkerPool("msa", lambda: start_local(Worker(msa or Msa())), backend, 1, 1, msa_calls, 60),
             "model": WorkerPool("model", lambda: start_local(next(models)), backend, model_workers,
                                 model_workers, 1, 60),
             "writer": WorkerPool("writer", lambda: start_local(Worker(None)), backend, 1, 1, 1, 60)}
    book = RunBook(Store(tmp_path / "store"))
    book.create("r", "x.fasta", str(tmp_path), {}, [], [])
    backends = {name: backend for name in pools}
    return Scheduler(workflow, pools, backends, book, "r", max_in_flight, max_attempts), book


@pytest.fixture(autouse=True)
def reset_calls():
    CALLS.clear()
    SHARED.clear()


def test_every_step_runs_once_per_target_chain_and_model(tmp_path):
    run, book = scheduler(tmp_path)
    results = run.run(targets(50, 70, 90))
    assert sorted(r.target_id for r in results) == ["t0", "t1", "t2"] and all(r.status == "ok" for r in results)
    expected = Counter({(step, t, "A"): 1 for t in ("t0", "t1", "t2") for step in ("align", "templates")})
    expected.update({(step, t): 1 for t in ("t0", "t1", "t2") for step in ("features", "score", "write")})
    expected.update({("predict", t, f"{m}_pred_0"): 1 for t in ("t0", "t1", "t2")
                     for m in ("model_1_ptm", "model_2_ptm")})
    assert CALLS == expected
    assert {tid: r["status"] for tid, r in book.targets("r").items()} == {"t0": "ok", "t1": "ok", "t2": "ok"}


def test_quick_steps_share_calls_while_targets_wait_and_slow_steps_never_do(tmp_path, monkeypatch):
    monkeypatch.setattr(scheduler_module, "BATCH_SECONDS", 0.005)  # the stand-ins take microseconds
    monkeypatch.setattr(scheduler_module, "LINGER_SECONDS", 0.02)

    def slow_predict(model, job, features):
        time.sleep(0.01)  # a step longer than BATCH_SECONDS per item
        return predict(model, job, features)

    run, _ = scheduler(tmp_path, max_in_flight=6, predict=slow_predict)
    backend, batches = run.backends["msa"], []
    call = backend.call

    def counted(worker, function, items, payloads):
        batches.append((function.__name__, len(items)))
        return call(worker, function, items, payloads)

    backend.call = counted
    results = run.run(targets(*range(50, 74)))  # 24 targets, 6 in flight: the rest wait for admission
    assert len(results) == 24 and all(r.status == "ok" for r in results)
    items = Counter()
    for (step, *_), n in CALLS.items():
        items[step] += n
    assert items == {"align": 24, "templates": 24, "features": 24, "predict": 48, "score": 24, "write": 24}
    calls = Counter(name for name, _ in batches)
    assert {name for name, size in batches if size > 1} >= {"align", "search_templates", "make_features", "score", "write"}
    assert calls["write"] < 24 and calls["align"] < 24, "quick steps' items share calls"
    assert {size for name, size in batches if name == "slow_predict"} == {1}, "a slow step's items never share"


def test_targets_in_flight_never_exceed_the_limit(tmp_path):
    in_flight, peak = set(), 0

    def watch(msa, job, *template_features):
        nonlocal peak
        in_flight.add(job.target.id)
        peak = max(peak, len(in_flight))
        return make_features(msa, job, *template_features)

    run, _ = scheduler(tmp_path, max_in_flight=2, features=watch)
    run.on_result = lambda result: in_flight.discard(result.target_id)
    results = run.run(targets(*range(50, 58)))
    assert len(results) == 8 and all(r.status == "ok" for r in results) and peak == 2


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
    assert results["t1"].status == "ok" and CALLS["align", "t1", "A"] == 2 and CALLS["align", "t0", "A"] == 1
    assert book.targets("r")["t1"]["attempts"] == 2 and book.targets("r")["t0"]["attempts"] == 1


def test_a_worker_lost_every_time_fails_the_target_after_max_attempts(tmp_path):
    run, book = scheduler(tmp_path, msa=Msa(lose=Counter({"t0": 99})), max_attempts=3)
    results = {r.target_id: r for r in run.run(targets(50, 60))}
    assert results["t0"].status == "failed" and "WorkerLost: actor died" in results["t0"].error
    assert CALLS["align", "t0", "A"] == 3 and book.targets("r")["t0"]["attempts"] == 3
    assert results["t1"].status == "ok"


def test_an_error_fails_its_target_only_without_retries(tmp_path):
    run, book = scheduler(tmp_path, msa=Msa(fail={"t0"}))
    results = {r.target_id: r for r in run.run(targets(50, 60, 70))}
    assert results["t0"].status == "failed" and results["t0"].error == "ValueError: bad MSA for t0"
    assert CALLS["align", "t0", "A"] == 1 and not any(key[1] == "t0" for key in CALLS if key[0] != "align")
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
        Workflow((StepSpec("a", "p", "a", align, inputs=("b",)), StepSpec("b", "p", "b", align)), (),
                 lambda *a: None, lambda *a: None)


MULTIMER = ("model_1_multimer_v3", "model_2_multimer_v3")


def complexes(*chains: str) -> list[Target]:
    """Complexes of the chains named (each letter a distinct 50-residue chain), e.g. "AB", "BC"."""
    sequence = {name: name * 50 for name in "ACDEFGH"}
    return [Target(f"c{i}", "", ":".join(sequence[c] for c in names), "x.fasta") for i, names in enumerate(chains)]


def test_a_chain_two_complexes_in_flight_share_is_aligned_once(tmp_path):
    run, _ = scheduler(tmp_path, models=MULTIMER)
    results = run.run(complexes("AC", "CD"))
    assert all(r.status == "ok" for r in results)
    chains = {t.id: t.distinct_chains for t in complexes("AC", "CD")}
    searched = Counter()
    for (step, target, *item), n in CALLS.items():
        if step in ("align", "templates"):
            searched[step, chains[target][item[0]][0]] += n
    # c1's chain A is the sequence of c0's chain B: one search and one template search per distinct chain
    assert searched == {(step, chain): 1 for step in ("align", "templates") for chain in "ACD"}
    assert CALLS["align", "c0", "B"] == 1 and CALLS["align", "c1", "A"] == 0
    assert SHARED == {"c0": [], "c1": ["A"]}, "the record reached c1 marked as computed for another target"
    assert CALLS["features", "c0"] == CALLS["features", "c1"] == 1


def test_a_shared_chain_lost_with_its_worker_is_searched_again_for_both(tmp_path):
    run, book = scheduler(tmp_path, msa=Msa(lose=Counter({"c0": 2})), models=MULTIMER)  # c0's first two searches: A and B
    results = {r.target_id: r for r in run.run(complexes("AC", "CD"))}
    assert results["c0"].status == results["c1"].status == "ok"
    assert book.targets("r")["c0"]["attempts"] == 2 and book.targets("r")["c1"]["attempts"] == 1
    assert CALLS["align", "c0", "B"] + CALLS["align", "c1", "A"] == 2, "the shared chain: lost once, then once"


def test_a_shared_chain_that_fails_fails_every_target_waiting_for_it(tmp_path):
    run, _ = scheduler(tmp_path, msa=Msa(fail={"c0"}), msa_calls=2, models=MULTIMER)
    results = {r.target_id: r for r in run.run(complexes("AC", "CD", "EF"))}
    assert results["c0"].status == results["c1"].status == "failed" and results["c2"].status == "ok"
    assert results["c1"].error == "ValueError: bad MSA for c0"
    assert CALLS["align", "c1", "A"] == 0


def test_queued_shared_work_of_a_failed_target_passes_to_the_target_waiting_for_it(tmp_path):
    # one MSA call at a time: c0's chain A fails while its chain B, shared with c1, is still queued
    run, _ = scheduler(tmp_path, msa=Msa(fail={"c0"}), msa_calls=1, models=MULTIMER)
    results = {r.target_id: r for r in run.run(complexes("AC", "CD"))}
    assert results["c0"].status == "failed" and results["c1"].status == "ok"
    assert CALLS["align", "c0", "A"] == 1 and CALLS["align", "c0", "B"] == 0 and CALLS["align", "c1", "A"] == 1
    assert SHARED["c1"] == []
