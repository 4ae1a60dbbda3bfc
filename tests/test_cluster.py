"""Placement, pool scaling and node loss on a real multi-node Ray cluster simulated on this machine."""

import threading
import time

import pytest
import ray
from ray.cluster_utils import Cluster

import foldflow
from foldflow.runs import RunBook
from foldflow.store import Store
from conftest import DEMO_FASTA, small_run_config

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.xdist_group("ray-heads")]


@pytest.fixture
def cluster():
    """A head with no CPUs for actors, one MSA node and two (fake) GPU nodes, like configs/cluster.yaml."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = {
        "msa": cluster.add_node(num_cpus=2, resources={"msa": 1}, labels={"role": "msa"}),
        "gpu-a": cluster.add_node(num_cpus=1, num_gpus=1, labels={"role": "gpu"}),
        "gpu-b": cluster.add_node(num_cpus=1, num_gpus=1, labels={"role": "gpu"}),
    }
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    yield cluster, nodes
    ray.shutdown()
    cluster.shutdown()


def cluster_config(tmp_path, **pipeline):
    config = small_run_config(tmp_path / "store", msa_actor_resources={"msa": 0.5}, msa_actor_labels={"role": "msa"},
                              model_actor_gpus=1, model_actor_labels={"role": "gpu"}, **pipeline)
    return config


def test_actors_land_on_their_node_types_and_losing_the_model_node_mid_run_loses_no_target(cluster, tmp_path):
    ray_cluster, nodes = cluster
    # writers on any node, here the one their labels name (the nodes share this machine's disk)
    config = cluster_config(tmp_path, max_in_flight=2, writer_nodes="any", writer_actor_labels={"role": "msa"})
    book = RunBook(Store(config.store))
    removed = []

    def remove_model_node():
        def model_workers():
            return book.state("node-loss").get("workers", {}).get("model") if book.exists("node-loss") else None

        deadline = time.monotonic() + 600
        while not model_workers() and time.monotonic() < deadline:
            time.sleep(0.2)
        while time.monotonic() < deadline and not any(  # a prediction started and not finished: in flight
                c["started"] > c["finished"] for c in Store(config.store).computations("prediction").values()):
            time.sleep(0.1)
        node_id = model_workers()[0]["node_id"]
        node = next(n for n in nodes.values() if n.node_id == node_id)
        ray_cluster.remove_node(node)
        removed.append(node_id)

    thread = threading.Thread(target=remove_model_node, daemon=True)
    thread.start()
    run = foldflow.predict(DEMO_FASTA, tmp_path / "out", config, run_id="node-loss")
    thread.join(timeout=10)
    assert removed, "the model node was not removed during the run"
    assert run.ok, run.failed
    table = run.to_pandas()
    assert sorted(table["target_id"]) == sorted(["HG003686_698", "HG003690_137", "HG003690_101", "HG003686_84"])
    assert set(table["msa_node"]) == {nodes["msa"].node_id}
    assert {w["node_id"] for w in book.state("node-loss")["workers"]["writer"]} == {nodes["msa"].node_id}
    assert set(table["model_node"]) <= {nodes["gpu-a"].node_id, nodes["gpu-b"].node_id}
    survivor = ({nodes["gpu-a"].node_id, nodes["gpu-b"].node_id} - set(removed)).pop()
    assert survivor in set(table["model_node"]), "targets were retried on the other GPU node"
    predictions = Store(config.store).computations("prediction")
    assert len(predictions) == 4 and {c["finished"] for c in predictions.values()} == {1}, predictions
    assert any(c["started"] == 2 for c in predictions.values()), "the lost node's prediction was retried"
