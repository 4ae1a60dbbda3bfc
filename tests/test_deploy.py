"""Deployment files: checked against Ray's own schema where one exists, else for the keys that matter."""

import json
import re
from importlib import resources

import jsonschema
import pytest
import yaml

from foldflow.config import load_config
from conftest import ROOT

CONFIGS = ROOT / "configs"


def load(path):
    return yaml.safe_load(path.read_text())


def test_cluster_launcher_config_is_valid_for_ray():
    schema = json.loads((resources.files("ray") / "autoscaler" / "ray-schema.json").read_text())
    config = load(CONFIGS / "cluster.yaml")
    jsonschema.validate(config, schema)
    types = config["available_node_types"]
    assert types["msa_cpu"]["labels"] == {"role": "msa"} and types["msa_cpu"]["resources"] == {"msa": 1}
    assert types["gpu"]["labels"] == {"role": "gpu"}
    assert types["head"]["resources"] == {"CPU": 0}
    assert any("--dashboard-host=127.0.0.1" in c for c in config["head_start_ray_commands"])


def test_cluster_run_config_places_stages_on_their_nodes():
    config = load_config(CONFIGS / "cluster-run.yaml")
    assert config.pipeline.msa_actor_labels == {"role": "msa"} and config.pipeline.msa_actor_resources == {"msa": 0.25}
    assert config.pipeline.model_actor_labels == {"role": "gpu"} and config.pipeline.model_actor_gpus == 1
    assert config.pipeline.model_actors_max > config.pipeline.model_actors
    assert config.store.startswith("s3://")


def _worker_groups(spec):
    return {group["groupName"]: group for group in spec["workerGroupSpecs"]}


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_kuberay_manifests_have_an_msa_and_a_gpu_group(name):
    manifest = load(CONFIGS / "kuberay" / name)
    assert manifest["apiVersion"] == "ray.io/v1"
    spec = manifest["spec"] if manifest["kind"] == "RayCluster" else manifest["spec"]["rayClusterSpec"]
    assert manifest["kind"] in {"RayCluster", "RayJob"}
    assert spec["enableInTreeAutoscaling"] is True
    groups = _worker_groups(spec)
    assert set(groups) == {"msa-cpu", "gpu"}
    assert groups["msa-cpu"]["rayStartParams"]["labels"] == "role=msa"
    assert json.loads(json.loads(groups["msa-cpu"]["rayStartParams"]["resources"])) == {"msa": 1}
    assert groups["gpu"]["rayStartParams"]["labels"] == "role=gpu"
    for group in groups.values():
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        (container,) = group["template"]["spec"]["containers"]
        assert container["image"] and container["resources"]["limits"]
    gpu_limits = groups["gpu"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu_limits["nvidia.com/gpu"] == "1"
    if manifest["kind"] == "RayJob":
        assert manifest["spec"]["entrypoint"].startswith("foldflow predict")


def test_nightly_cronjob():
    job = load(CONFIGS / "kuberay" / "cronjob.yaml")
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "CronJob")
    assert len(job["spec"]["schedule"].split()) == 5
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert "ray job submit" in " ".join(container["args"]) and container["image"]


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfiles_build_the_package_and_drop_root(name):
    text = (ROOT / "docker" / name).read_text()
    instructions = [line.split()[0] for line in text.splitlines() if line and not line.startswith(("#", " "))]
    assert instructions[0] == "FROM"
    assert re.search(r"^COPY foldflow ./foldflow$", text, re.M) and "pip install --no-cache-dir ." in text
    assert re.search(r"^USER foldflow$", text, re.M)
    assert set(instructions) <= {"FROM", "RUN", "WORKDIR", "COPY", "ENV", "USER", "ENTRYPOINT", "CMD"}
    if name.endswith("gpu"):
        assert "jax[cuda12]" in text
