"""Actor pools grow while work waits and shrink idle actors, with real Ray actors."""

import time

import pytest
import ray

import foldflow
from foldflow.config import RunConfig
from foldflow.pipeline.actors import RayBackend
from foldflow.flow.pools import WorkerPool
from foldflow.pipeline.placement import UnplaceableStageError, check_placeable, placement_options
from foldflow.runs import RunBook
from foldflow.store import Store
from conftest import DEMO_FASTA

pytestmark = pytest.mark.ray


@ray.remote(num_cpus=0)
class Idle:
    def ping(self) -> str:
        return "pong"


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def start_idle():
    actor = Idle.remote()
    return actor, actor.ping.remote()


def test_pool_grows_only_while_work_waits_and_shrinks_after_idle(local_ray):
    pool = WorkerPool("test", start_idle, RayBackend(), min_size=1, max_size=3, capacity=1, idle_timeout_s=0.2,
                      stop_worker=lambda actor: ray.kill(actor, no_restart=True))
    assert len(pool.workers) == 1
    ray.get(list(pool.pending.values()))
    pool.poll_started()
    assert not pool.grow(work_waiting=True)  # a free actor takes the work
    first = pool.free()[0]
    pool.acquire(first)
    assert not pool.grow(work_waiting=False)
    assert pool.grow(work_waiting=True) and len(pool.workers) == 2
    pool.acquire(pool.free()[0])
    assert not pool.grow(work_waiting=True), "a worker still starting takes the next work: no growth"
    ray.get(list(pool.pending.values()))
    pool.poll_started()
    assert pool.grow(work_waiting=True) and len(pool.workers) == 3
    pool.acquire(pool.free()[0])
    assert not pool.grow(work_waiting=True), "never beyond the maximum"
    assert ray.get([a.ping.remote() for a in pool.workers]) == ["pong"] * 3
    for actor in pool.workers:
        pool.release(actor)
    assert pool.shrink() == [], "not idle long enough yet"
    time.sleep(0.3)
    removed = pool.shrink()
    assert len(removed) == 2 and len(pool.workers) == 1, "down to the minimum"
    deadline = time.monotonic() + 30  # ray.kill is asynchronous: a call made just after it may still run
    with pytest.raises(ray.exceptions.RayActorError):
        while time.monotonic() < deadline:
            ray.get(removed[0].ping.remote(), timeout=30)
            time.sleep(0.1)


def test_placement_options():
    assert placement_options(1) == {"num_cpus": 1}
    assert placement_options(2, 0.5, {"msa": 1}, {"role": "gpu"}, 1.5) == {
        "num_cpus": 2, "num_gpus": 0.5, "resources": {"msa": 1}, "label_selector": {"role": "gpu"},
        "memory": int(1.5 * 2**30)}


def test_check_placeable_reads_resources_memory_and_labels():
    nodes = [{"Alive": True, "Resources": {"CPU": 16.0, "memory": 64 * 2**30, "msa": 1.0}, "Labels": {"role": "msa"}},
             {"Alive": True, "Resources": {"CPU": 8.0, "GPU": 1.0}, "Labels": {"role": "gpu"}},
             {"Alive": False, "Resources": {"CPU": 8.0, "GPU": 4.0}, "Labels": {}}]
    check_placeable("MSA", placement_options(4, resources={"msa": 1}, labels={"role": "msa"}, memory_gb=32), nodes)
    check_placeable("model", placement_options(1, gpus=0.5, labels={"role": "gpu"}), nodes)
    for stage, options in [("MSA", placement_options(4, memory_gb=128)),
                           ("model", placement_options(1, gpus=2)),
                           ("model", placement_options(1, gpus=1, labels={"role": "msa"}))]:
        with pytest.raises(UnplaceableStageError, match=f"^{stage} actors ask for"):
            check_placeable(stage, options, nodes)


@pytest.mark.slow
def test_model_pool_grows_when_features_wait(local_ray, tmp_path):
    # 4 s per prediction: long enough that, even on a loaded machine, the next targets' features wait while the
    # first predictions run (at 1 s a slow MSA stage under CI load kept the model pool from ever being full)
    config = RunConfig(store=str(tmp_path / "store"), plots=False,
                       relax={"models_to_relax": "none"}, model={"names": ["simulated_device_4.0s"]},
                       pipeline={"progress": False, "model_actors": 1, "model_actors_max": 2,
                                 "model_actor_cpus": 0, "msa_actor_cpus": 0.5, "max_in_flight": 4})
    run = foldflow.predict(DEMO_FASTA, tmp_path / "out", config, run_id="grow")
    assert run.ok
    state = RunBook(Store(config.store)).state("grow")
    assert state["pools"]["model"]["started"] == 2, state["pools"]


def test_a_run_on_a_shared_ray_leaves_no_actor_behind(local_ray, tmp_path):
    """A notebook's Ray outlives the run: the run's actors must not keep holding CPUs, GPUs or nodes."""
    config = RunConfig(store=str(tmp_path / "store"), plots=False,
                       relax={"models_to_relax": "none"}, model={"names": ["simulated_device_0s"]},
                       msa={"engine": "pyhmmer_sharded", "shards": 2, "shard_actor_cpus": 0.125},  # 3 dbs x 2
                       pipeline={"progress": False, "msa_actor_cpus": 0.5, "model_actor_cpus": 0.5})
    run = foldflow.predict(DEMO_FASTA, tmp_path / "out", config, run_id="no-leftovers")
    assert run.ok
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray.available_resources().get("CPU", 0) == 2, "every actor of the run released its CPUs"
