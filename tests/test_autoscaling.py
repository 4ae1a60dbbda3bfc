"""With Ray's local autoscaler (fake multi-node provider): nodes appear for the stage that needs them
and go when idle."""

import json
import os
import sys
import time
from pathlib import Path

import pytest
import ray

import foldflow
from foldflow.config import RunConfig
from conftest import DEMO_FASTA
from ray_head import free_port, ray_head

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.xdist_group("ray-heads")]


def fake_multinode_config(gcs_address: str, head_resources: dict, worker_node_types: dict) -> dict:
    """The whole config of Ray's fake multi-node provider (what ray.cluster_utils.AutoscalingCluster generates
    from an example YAML that Ray 2.60's wheel lacks; AutoscalingCluster also runs `ray stop`, so not used);
    its nodes join the head at ``gcs_address`` (the provider's default is port 6379)."""
    commands = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
                "head_start_ray_commands", "worker_start_ray_commands")
    return {
        "cluster_name": "fake_multinode", "max_workers": 8, "upscaling_speed": 1.0,
        "idle_timeout_minutes": 0.1, "head_node_type": "ray.head.default",
        "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                     "disable_launch_config_check": True, "gcs_address": gcs_address},
        "auth": {"ssh_user": "ubuntu"}, "docker": {}, "file_mounts": {}, "cluster_synced_files": [],
        "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": [],
        **{key: [] for key in commands},
        "available_node_types": {
            **worker_node_types,
            "ray.head.default": {"resources": head_resources, "node_config": {}, "max_workers": 0}},
    }


@pytest.fixture
def autoscaling_cluster(monkeypatch, tmp_path):
    """A head with no CPUs and the fake multi-node autoscaler (env as AutoscalingCluster sets it), stopped by
    its process id afterwards (tests/ray_head.py)."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    config, gcs_port = tmp_path / "autoscaling.json", free_port()
    config.write_text(json.dumps(fake_multinode_config(
        f"{ray.util.get_node_ip_address()}:{gcs_port}",
        head_resources={"CPU": 0},
        worker_node_types={
            "msa_worker": {"resources": {"CPU": 2, "msa": 1}, "node_config": {}, "min_workers": 0, "max_workers": 1},
            "gpu_worker": {"resources": {"CPU": 1, "GPU": 1}, "node_config": {}, "min_workers": 0, "max_workers": 1},
        })))
    with ray_head(f"--autoscaling-config={config}", num_cpus=0, gcs_port=gcs_port,
                  env={"AUTOSCALER_UPDATE_INTERVAL_S": "1", "RAY_FAKE_CLUSTER": "1", "PATH": os.environ["PATH"],
                       "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}) as head:  # as this process
        ray.init(address=head.gcs)
        yield
        ray.shutdown()


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
