"""Deployment files (configs/kuberay, configs/cluster.yaml, docker/, the nightly route) checked against the
references a cluster applies (tests/deploy_checks.py): each check passes on the shipped files and fails on a
copy with the defect it guards against. The nightly route itself runs in tests/test_submit.py."""

import ray
import pytest

from deploy_checks import (HADOLINT, Deployment, all_problems, cluster_image_problems, cluster_problems,
                           container_argv, hadolint, image_problems, kuberay_rule_problems, launcher_problems,
                           ray_versions, schema_problems)
from foldflow.config import load_config
from conftest import ROOT


@pytest.fixture(scope="module")
def shipped() -> Deployment:
    return Deployment.from_repository()


def test_the_shipped_deployment_has_no_problem(shipped):
    assert all_problems(shipped) == []


def test_images_ray_is_the_locked_and_tested_one(shipped):
    """`make test` installs requirements/cpu.lock: the Ray these tests ran is the one the manifests name."""
    assert shipped.locks["cpu"]["ray"] == ray.__version__
    assert set(ray_versions(shipped).values()) == {ray.__version__}


def _group(deployment, manifest, group):
    spec = deployment.manifests[manifest]["spec"]
    spec = spec.get("rayClusterSpec", spec)
    return spec["headGroupSpec"] if group == "head" else {g["groupName"]: g for g in spec["workerGroupSpecs"]}[group]


def _container(deployment, manifest, group):
    if manifest == "cronjob":
        return deployment.manifests["cronjob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    return _group(deployment, manifest, group)["template"]["spec"]["containers"][0]


def _env(container, name):
    return next(e for e in container["env"] if e["name"] == name)


def labels_in_ray_start_params(d):
    _group(d, "raycluster", "msa-cpu")["rayStartParams"]["labels"] = "role=msa"


def resources_twice(d):
    _group(d, "rayjob", "msa-cpu")["rayStartParams"]["resources"] = '"{\\"msa\\": 1}"'


def token_auth_on_an_old_ray(d):
    d.manifests["raycluster"]["spec"]["rayVersion"] = "2.50.0"


def a_mistyped_pod_field(d):
    _container(d, "raycluster", "gpu")["resource"] = _container(d, "raycluster", "gpu").pop("resources")


def a_mistyped_cronjob_field(d):
    _env(_container(d, "cronjob", None), "RAY_AUTH_TOKEN")["valueFrom"]["secretKeyRef"]["nme"] = "x"


def an_entrypoint_that_swallows_bash(d):
    d.dockerfiles["Dockerfile"] += 'ENTRYPOINT ["foldflow"]\n'


def no_rsync_in_the_gpu_image(d):
    d.dockerfiles["Dockerfile.gpu"] = d.dockerfiles["Dockerfile.gpu"].replace(" rsync", "")


def a_named_user(d):
    d.dockerfiles["Dockerfile"] = d.dockerfiles["Dockerfile"].replace("USER 1000:1000", "USER foldflow")


def unpinned_packages(d):
    d.dockerfiles["Dockerfile.gpu"] = d.dockerfiles["Dockerfile.gpu"].replace("-c requirements/gpu.lock ", "")


def a_drifted_ray_version(d):
    d.manifests["rayjob"]["spec"]["rayClusterSpec"]["rayVersion"] = "2.61.0"


def the_old_cronjob_command(d):
    container = _container(d, "cronjob", None)
    container["command"] = ["/bin/sh", "-c"]
    container["args"] = ["ray job submit --address http://foldflow-head-svc:8265 -- nightly.sh || ray job status x"]


def a_nightly_that_ignores_failure(d):
    d.nightly = d.nightly.replace('--python "$PYTHON" --wait', '--python "$PYTHON" --wait || true')


def a_nightly_that_does_not_wait(d):
    d.nightly = d.nightly.replace(' --wait', '')


def a_secret_nothing_creates(d):
    _env(_container(d, "cronjob", None), "RAY_AUTH_TOKEN")["valueFrom"]["secretKeyRef"].update(
        name="ray-auth-token", key="token")


def no_token_auth(d):
    del d.manifests["raycluster"]["spec"]["authOptions"]


def a_placeholder_bucket(d):
    d.manifests["rayjob"]["spec"]["entrypoint"] += " --store s3://my-bucket/foldflow-store"


def no_volume_claim_shipped(d):
    del d.manifests["storage"]


def a_single_node_volume(d):
    d.manifests["storage"]["spec"]["accessModes"] = ["ReadWriteOnce"]


def no_fs_group(d):
    del _group(d, "rayjob", "gpu")["template"]["spec"]["securityContext"]["fsGroup"]


def whole_node_requests(d):
    _container(d, "raycluster", "msa-cpu")["resources"]["requests"] = {"cpu": "16", "memory": "128Gi"}


def no_gpu_toleration(d):
    del _group(d, "raycluster", "gpu")["template"]["spec"]["tolerations"]


def a_small_launcher_gpu_node(d):
    d.launcher["available_node_types"]["gpu"]["node_config"]["InstanceType"] = "g5.2xlarge"


def a_launcher_field_ray_does_not_know(d):
    d.launcher["available_node_types"]["gpu"]["max_worker"] = 4


def _replace(deployment, name, old, new):
    assert old in deployment.dockerfiles[name], old
    deployment.dockerfiles[name] = deployment.dockerfiles[name].replace(old, new)


def a_cuda_base_for_the_gpu_image(d):
    _replace(d, "Dockerfile.gpu", "FROM ${BASE_IMAGE}", "FROM nvidia/cuda:12.6.3-base-ubuntu22.04")


def another_python_in_the_gpu_image(d):
    _replace(d, "Dockerfile.gpu", "python3 python3-venv", "python3.11 python3.11-venv")


def other_dependencies_in_the_gpu_image(d):
    _replace(d, "Dockerfile.gpu", "pip install -c requirements/cpu.lock -c requirements/gpu.lock . -r",
             "pip install -c requirements/gpu.lock . -r")


def a_floating_base_tag(d):
    for name in d.dockerfiles:
        _replace(d, name, "ARG BASE_IMAGE=debian:12.11-slim", "ARG BASE_IMAGE=debian:bookworm-slim")


def no_kalign(d):
    _replace(d, "Dockerfile", " kalign ", " ")


def no_ssh_client(d):
    _replace(d, "Dockerfile", " openssh-client ", " ")


def no_downloader(d):
    _replace(d, "Dockerfile.gpu", " wget aria2", "")


def no_boto3_in_the_head_image(d):
    _replace(d, "Dockerfile", " -r requirements/cluster.in", "")


def a_worker_start_without_token_auth(d):
    d.launcher["worker_start_ray_commands"][-1] = "ray start --address=$RAY_HEAD_IP:6379"


def no_token_for_the_nodes(d):
    d.launcher["file_mounts"] = {}


def a_volume_chowned_at_every_start(d):
    group = d.manifests["raycluster"]["spec"]["workerGroupSpecs"][1]
    del group["template"]["spec"]["securityContext"]["fsGroupChangePolicy"]


def no_job_fills_the_volume(d):
    del d.manifests["fill-volume"]


def a_deadline_on_the_nightly_pod(d):
    d.manifests["cronjob"]["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] = 72000


def a_head_size_without_the_autoscaler(d):
    d.docs = d.docs.replace("any node with 2.5 CPUs / 8.5 GiB free", "any node with 2 CPUs / 8 GiB free")


def a_wait_that_hangs_on_failure(d):
    d.docs += "\n```bash\nkubectl wait --for=condition=complete job/foldflow-night-test --timeout=24h\n```\n"


DEFECTS = {  # each defect -> a line of the problems it must cause
    labels_in_ray_start_params: "raycluster: msa-cpu group: rayStartParams['labels'] is not supported",
    resources_twice: "rayjob: msa-cpu group: resources set in both rayStartParams and the group's resources field",
    token_auth_on_an_old_ray: "raycluster: authOptions.mode token needs Ray 2.52.0 or later",
    a_mistyped_pod_field: "raycluster: spec.workerGroupSpecs.1.template.spec.containers.0: Additional properties",
    a_mistyped_cronjob_field: "valueFrom.secretKeyRef: Additional properties are not allowed ('nme' was unexpected)",
    an_entrypoint_that_swallows_bash: "Dockerfile: the launcher's `docker run ... ghcr.io/example/foldflow:0.1.0 bash` "
                                      "runs foldflow bash",
    no_rsync_in_the_gpu_image: "Dockerfile.gpu: no rsync",
    a_named_user: "DL3066: Non-numeric user-id",
    unpinned_packages: "Dockerfile.gpu: pip installs without the tested versions",
    a_drifted_ray_version: "rayjob: rayVersion 2.61.0 is not the images' Ray",
    the_old_cronjob_command: "cronjob: does not run examples/nightly/nightly.sh as it is tested",
    a_nightly_that_ignores_failure: "nightly.sh: a failure can be swallowed",
    a_nightly_that_does_not_wait: "nightly.sh: the cluster mode does not `foldflow submit ... --wait`",
    a_secret_nothing_creates: "cronjob: RAY_AUTH_TOKEN comes from secret ray-auth-token/token, not the cluster's",
    no_token_auth: "raycluster: token authentication is not on",
    a_placeholder_bucket: "rayjob: store s3://my-bucket/foldflow-store is not on the shared volume /data",
    no_volume_claim_shipped: "raycluster: head pod: volume claim foldflow-data is not shipped",
    a_single_node_volume: "rayjob: gpu pod: volume claim foldflow-data is not ReadWriteMany",
    no_fs_group: "rayjob: gpu pod: mounts volumes without fsGroup 1000",
    whole_node_requests: "raycluster: msa-cpu pod: requests {'cpu': '16', 'memory': '128Gi'} do not fit",
    no_gpu_toleration: "raycluster: gpu pod: no toleration for the nvidia.com/gpu taint",
    a_small_launcher_gpu_node: "cluster.yaml: node type gpu (g5.2xlarge: 8 vCPUs, 32 GiB, 1 GPU) is smaller",
    a_launcher_field_ray_does_not_know: "cluster.yaml: Additional properties are not allowed ('max_worker'",
    a_cuda_base_for_the_gpu_image: "Dockerfile.gpu: its base image is not Dockerfile's",
    another_python_in_the_gpu_image: "Dockerfile.gpu: Python is not the base's Debian python3",
    other_dependencies_in_the_gpu_image: "Dockerfile.gpu: its dependency install is not Dockerfile's",
    a_floating_base_tag: "Dockerfile: base image debian:bookworm-slim is a floating tag",
    no_kalign: "Dockerfile: no kalign (AlphaFold's template featuriser",
    no_ssh_client: "Dockerfile: no openssh-client (the head's autoscaler reaches worker hosts with ssh",
    no_downloader: "Dockerfile.gpu: neither wget nor aria2",
    no_boto3_in_the_head_image: "cluster.yaml: head_setup_commands replace Ray's AWS defaults, but the head image "
                                "does not install boto3",
    a_worker_start_without_token_auth: "worker_start_ray_commands: `ray start --address=$RAY_HEAD_IP:6379` starts "
                                       "Ray without RAY_AUTH_MODE=token",
    no_token_for_the_nodes: "cluster.yaml: file_mounts do not give every node the token",
    a_volume_chowned_at_every_start: "raycluster: gpu pod: fsGroup without fsGroupChangePolicy OnRootMismatch",
    no_job_fills_the_volume: "no Job fills the shared volume",
    a_deadline_on_the_nightly_pod: "cronjob: activeDeadlineSeconds ends the pod that follows the Ray job",
    a_head_size_without_the_autoscaler: "raycluster: the head pod asks for 2.5 CPUs, 8.5 GiB (head and autoscaler "
                                        "sidecar); docs/cluster.md says 2 CPUs / 8 GiB",
    a_wait_that_hangs_on_failure: "waits the whole timeout when the Job fails",
}


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda f: f.__name__)
def test_each_defect_is_found(shipped, defect):
    broken = shipped.copy()
    defect(broken)
    problems = all_problems(broken)
    assert any(DEFECTS[defect] in p for p in problems), problems


def _missing(tmp_path):
    return tmp_path / "hadolint"


def _not_executable(tmp_path):
    (tmp_path / "hadolint").write_text("#!/bin/sh\n")
    return tmp_path / "hadolint"


def _stops_on_an_error(tmp_path):
    """The real hadolint, stopped by an option it does not know: exit code 1, nothing on stdout."""
    script = tmp_path / "hadolint"
    script.write_text(f'#!/bin/sh\nexec {HADOLINT} --no-such-option "$@"\n')
    script.chmod(0o755)
    return script


def test_hadolint_runs_clean_on_a_clean_dockerfile(shipped):
    assert hadolint("FROM debian:12\n") == []
    assert all(hadolint(dockerfile) == [] for dockerfile in shipped.dockerfiles.values())


@pytest.mark.parametrize("broken", [_missing, _not_executable, _stops_on_an_error], ids=lambda f: f.__name__[1:])
def test_a_hadolint_that_cannot_run_is_a_problem(shipped, tmp_path, broken):
    problems = hadolint(shipped.dockerfiles["Dockerfile"], broken(tmp_path))
    assert len(problems) == 1 and problems[0].startswith(("hadolint could not run", "hadolint failed")), problems


def test_docker_entrypoint_and_cmd_rules():
    """container_argv follows Docker's rules (docs.docker.com, "Understand how CMD and ENTRYPOINT interact")."""
    assert container_argv('FROM x\nCMD ["foldflow", "--help"]\n', ["bash"]) == ["bash"]
    assert container_argv('FROM x\nCMD ["foldflow", "--help"]\n', []) == ["foldflow", "--help"]
    assert container_argv('FROM x\nENTRYPOINT ["foldflow"]\nCMD ["--help"]\n', ["bash"]) == ["foldflow", "bash"]
    assert container_argv("FROM x\nENTRYPOINT foldflow\n", ["bash"]) == ["/bin/sh", "-c", "foldflow"]


def test_cluster_run_config_places_stages_on_their_nodes():
    config = load_config(ROOT / "configs" / "cluster-run.yaml")
    assert config.pipeline.msa_actor_labels == {"role": "msa"} and config.pipeline.msa_actor_resources == {"msa": 0.25}
    assert config.pipeline.model_actor_labels == {"role": "gpu"} and config.pipeline.model_actor_gpus == 1
    assert config.pipeline.model_actors_max > config.pipeline.model_actors
    assert config.store.startswith("/data/")


def test_kuberay_groups_carry_the_labels_and_resources_the_pools_ask_for(shipped):
    config = load_config(ROOT / "configs" / "cluster-run.yaml")
    for manifest in ("raycluster", "rayjob"):
        msa, gpu = _group(shipped, manifest, "msa-cpu"), _group(shipped, manifest, "gpu")
        assert msa["labels"] == config.pipeline.msa_actor_labels and gpu["labels"] == config.pipeline.model_actor_labels
        assert set(msa["resources"]) == set(config.pipeline.msa_actor_resources)
        assert _container(shipped, manifest, "gpu")["resources"]["requests"]["nvidia.com/gpu"] == "1"
    types = shipped.launcher["available_node_types"]
    assert types["msa_cpu"]["labels"] == config.pipeline.msa_actor_labels
    assert types["gpu"]["labels"] == config.pipeline.model_actor_labels


def test_each_check_family_runs(shipped):
    """Every family of checks has something to check (a check that finds no file would pass on anything)."""
    assert len(shipped.manifests) == 5 and len(shipped.dockerfiles) == 2 and shipped.locks.keys() == {"cpu", "gpu"}
    for check in (schema_problems, kuberay_rule_problems, cluster_problems, image_problems, launcher_problems,
                  cluster_image_problems):
        assert check(shipped) == [], check.__name__
