"""With Ray's local autoscaler (fake multi-node provider): nodes appear for the stage that needs them
and go when idle."""

import os
import sys
import time
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import AutoscalingCluster

import foldflow
from foldflow.config import RunConfig
from conftest import DEMO_FASTA

pytestmark = [pytest.mark.slow, pytest.mark.ray]


class LocalAutoscalingCluster(AutoscalingCluster):
    """AutoscalingCluster with its whole fake multi-node config written out here: Ray 2.60's wheel
    lacks the example YAML that AutoscalingCluster reads its defaults from."""

    def _generate_config(self, head_resources, worker_node_types, autoscaler_v2=False, **config_kwargs):
        assert not autoscaler_v2
        commands = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
                    "head_start_ray_commands", "worker_start_ray_commands")
        return {
            "cluster_name": "fake_multinode", "max_workers": 8, "upscaling_speed": 1.0,
            "idle_timeout_minutes": 0.1, "head_node_type": "ray.head.default",
            "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                         "disable_launch_config_check": True},
            "auth": {"ssh_user": "ubuntu"}, "docker": {}, "file_mounts": {}, "cluster_synced_files": [],
            "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": [],
            **{key: [] for key in commands},
            "available_node_types": {
                **worker_node_types,
                "ray.head.default": {"resources": head_resources, "node_config": {}, "max_workers": 0}},
            **config_kwargs,
        }


@pytest.fixture
def autoscaling_cluster(monkeypatch):
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cluster = LocalAutoscalingCluster(
        head_resources={"CPU": 0},
        worker_node_types={
            "msa_worker": {"resources": {"CPU": 2, "msa": 1}, "node_config": {}, "min_workers": 0, "max_workers": 1},
            "gpu_worker": {"resources": {"CPU": 1, "GPU": 1}, "node_config": {}, "min_workers": 0, "max_workers": 1},
        })
    cluster.start()
    ray.init("auto")
    yield
    ray.shutdown()
    cluster.shutdown()


def alive_worker_nodes() -> list[dict]:
    return [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]


def test_nodes_are_launched_per_stage_and_released_when_idle(autoscaling_cluster, tmp_path):
    assert alive_worker_nodes() == [], "only the head at the start"
    config = RunConfig(store=str(tmp_path / "store"), plots=False,
                       relax={"models_to_relax": "none"}, model={"names": ["simulated_device_0.5s"]},
                       pipeline={"progress": False, "msa_actor_resources": {"msa": 0.5}, "model_actor_gpus": 1,
                                 "idle_timeout_s": 1})
    run = foldflow.predict(DEMO_FASTA, tmp_path / "out", config, run_id="autoscaled")
    assert run.ok, run.failed
    table = run.to_pandas()
    resources = {n["NodeID"]: n["Resources"] for n in ray.nodes()}
    (msa_node,) = set(table["msa_node"])
    (model_node,) = set(table["model_node"])
    assert resources[msa_node].get("msa") == 1 and resources[model_node].get("GPU") == 1
    deadline = time.monotonic() + 120
    while alive_worker_nodes() and time.monotonic() < deadline:
        time.sleep(1)
    assert alive_worker_nodes() == [], "idle worker nodes are released"
