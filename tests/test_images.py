"""foldflow's images built and run for real (issue 26): docker/Dockerfile (CPU, head) and docker/Dockerfile.gpu
built with podman on one base (scripts/images.py: Debian bookworm from Debian's packages, as no registry is
reachable here), `foldflow predict` run inside the CPU image as uid 1000, the GPU image checked as far as a
machine without a GPU can (JAX and its CUDA plugin import, foldflow runs, and it would join the CPU image's
head: Ray's own version check, run inside it), and Ray's cluster launcher run on the CPU image
(scripts/launcher/run_local.py: `ray up`, a submitted run on an autoscaled worker container, `ray down`).

The images build in the background from the session's start (tests/conftest.py); this module runs last.
Not marked ``ray``: no Ray starts on the host. The Rays of these tests run inside containers, in network
namespaces of their own.

References, not foldflow's own output: the FASTA's sequence, the host's Debian binaries (HMMER's jackhmmer run
through AlphaFold's wrapper; the packages the parity tests run), the locks' pins, Ray's AWS defaults and Ray's
check_version_info.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import gemmi
import pyarrow.parquet as pq
import pytest
import yaml
from alphafold.data import parsers
from importlib import resources
from packaging.requirements import Requirement

from conftest import DEMO_FASTA, ROOT, debian_binary, load_script
from deploy_checks import RAY_AWS_DEFAULTS, image_version_problems, read_lock
from foldflow.config import bundled_databases
from test_msa_parity import alphafold_jackhmmer

pytestmark = pytest.mark.slow

images = load_script("images")
sys.path.insert(0, str(ROOT / "scripts" / "launcher"))
import run_local  # noqa: E402  (scripts/launcher/run_local.py)
IMAGE_USER = "1000:1000"  # docker/Dockerfile*: USER 1000:1000
# Random parameters and XLA programs of the runs in the image, kept between test sessions (owned by uid 1000).
IMAGE_CACHE = images.CACHE / "foldflow-cache"
CPU_LOCK = read_lock(ROOT / "requirements" / "cpu.lock")
GPU_LOCK = read_lock(ROOT / "requirements" / "gpu.lock")
# The Debian packages whose binaries the parity tests check foldflow against on the host (make tools).
SEARCH_PACKAGES = ("kalign", "hmmer", "hhsuite", "mmseqs2")
# Each tool the images promise, run as the images' user: the launcher's transfers and ssh, the search engines,
# AlphaFold's template realigner, the database downloaders.
TOOL_COMMANDS = ("kalign --version", "jackhmmer -h", "hmmsearch -h", "hhblits -h", "hhsearch -h", "mmseqs version",
                 "rsync --version", "ssh -V", "/usr/sbin/sshd -V", "wget --version", "aria2c --version")
VERSION_INFO = "import json; from ray._private.utils import compute_version_info; print(json.dumps(compute_version_info()))"


def run_in(image: str, *argv: str, volumes: dict[Path, str] | None = None, timeout: float = 1200):
    """``argv`` in a new container of ``image`` as the images' user, with no network."""
    mounts = [f"--volume={host}:{inside}" for host, inside in (volumes or {}).items()]
    return subprocess.run(["podman", "run", "--rm", f"--user={IMAGE_USER}", "--network=none", "--shm-size=2g",
                           *mounts, image, *argv], capture_output=True, text=True, timeout=timeout,
                          env=images.podman_environment())


def output_of(image: str, *argv: str) -> str:
    result = run_in(image, *argv)
    assert result.returncode == 0, f"{shlex.join(argv)} in {image}: {result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def base() -> str:
    for binary in ("podman", "runc", "mmdebstrap"):
        debian_binary(binary, binary)
    return images.base_image()


@pytest.fixture(scope="module")
def cpu_image(base) -> str:
    return images.build_image("cpu", base)


@pytest.fixture(scope="module")
def gpu_image(base, cpu_image) -> str:
    """Built after the CPU image, whose layers (base, Debian packages, Python packages) it reuses."""
    return images.build_image("gpu", base)


def owned_by_image_user(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, 1000, 1000)
    return path


def first_demo_target() -> tuple[str, str]:
    header, sequence = DEMO_FASTA.read_text().split(">")[1].split("\n", 1)
    return header.split()[0], sequence.replace("\n", "")


def test_cpu_image_predicts_a_demo_target_as_uid_1000(cpu_image, tmp_path):
    name, sequence = first_demo_target()
    work = owned_by_image_user(tmp_path / "work")
    (work / "target.fasta").write_text(f">{name}\n{sequence}\n")
    result = run_in(cpu_image, "foldflow", "predict", "/work/target.fasta", "--out", "/work/out",
                    "--store", "/work/store", "--progress", "none",
                    volumes={work: "/work", owned_by_image_user(IMAGE_CACHE): "/var/cache/foldflow"})
    assert result.returncode == 0, result.stderr[-5000:]

    first_line = result.stderr.splitlines()[0]
    assert first_line.startswith("foldflow: ") and "RANDOM parameters" in first_line, first_line
    for mini_data in ("bundled mini databases", "templates from the bundled mini PDB seqres and mmCIF files"):
        assert mini_data in first_line, first_line
    out = work / "out"
    summary = pq.read_table(out / "summary.parquet").to_pandas()
    assert summary[["target_id", "status"]].values.tolist() == [[name, "ok"]]
    written = [p for p in out.rglob("*")]
    assert written and {(p.stat().st_uid, p.stat().st_gid) for p in written} == {(1000, 1000)}

    folder = out / name
    structure = gemmi.read_structure(str(folder / "ranked_0.pdb"))
    (chain,) = structure[0]
    assert gemmi.one_letter_code([residue.name for residue in chain]) == sequence
    assert (folder / "relaxed_model_1_ptm_pred_0.pdb").is_file()  # OpenMM ran in the image

    # The MSA the image searched is the one HMMER's jackhmmer finds on the host, run as AlphaFold runs it.
    (uniref90,) = [db for db in bundled_databases() if db.name == "uniref90"]
    reference = parsers.parse_stockholm(alphafold_jackhmmer(
        debian_binary("jackhmmer", "hmmer"), tmp_path, name, sequence, uniref90.path, 1, uniref90.max_hits))
    ours = parsers.parse_stockholm((folder / "msas" / "uniref90_hits.sto").read_text())
    assert len(reference.sequences) > 1
    assert (ours.descriptions, ours.sequences) == (reference.descriptions, reference.sequences)


def dpkg_versions(packages, image: str | None = None) -> dict[str, str]:
    argv = ["dpkg-query", "-W", "-f", "${Package} ${Version}\n", *packages]
    text = output_of(image, *argv) if image else subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return dict(line.split() for line in text.splitlines())


def test_cpu_image_has_the_tools_and_the_hosts_search_binaries(cpu_image):
    script = "; ".join(f'{command} >/dev/null 2>&1 || echo "failed: {command}"' for command in TOOL_COMMANDS)
    assert output_of(cpu_image, "bash", "-c", script) == ""
    for package in SEARCH_PACKAGES:
        debian_binary({"hmmer": "jackhmmer", "hhsuite": "hhblits", "mmseqs2": "mmseqs"}.get(package, package), package)
    assert dpkg_versions(SEARCH_PACKAGES, cpu_image) == dpkg_versions(SEARCH_PACKAGES)


def test_head_image_loads_the_launchers_aws_node_provider(cpu_image):
    """What Ray's AWS defaults would pip-install on the head (configs/cluster.yaml replaces them) is in the image,
    in a version they accept, and Ray's AWS node provider imports."""
    defaults = yaml.safe_load((resources.files("ray") / RAY_AWS_DEFAULTS).read_text())
    (install,) = [shlex.split(c) for c in defaults["head_setup_commands"] if c.startswith("pip install")]
    requirements = [Requirement(word) for word in install[2:]]
    script = ("import importlib.metadata as m, sys; from ray.autoscaler._private.aws.node_provider import "
              "AWSNodeProvider; print(*(m.version(n) for n in sys.argv[1:]))")
    versions = output_of(cpu_image, "python", "-c", script, *(r.name for r in requirements)).split()
    assert [r.specifier.contains(v) for r, v in zip(requirements, versions)] == [True] * len(requirements), versions


def test_gpu_image_has_jax_with_its_cuda_plugin_and_runs_foldflow(gpu_image):
    script = ("import jax, importlib.metadata as m; "
              "print(jax.__version__, m.version('jax-cuda12-plugin'), m.version('nvidia-cudnn-cu12'))")
    assert output_of(gpu_image, "python", "-c", script).split() == [
        GPU_LOCK["jax"], GPU_LOCK["jax-cuda12-plugin"], GPU_LOCK["nvidia-cudnn-cu12"]]
    version = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert output_of(gpu_image, "foldflow", "--version").split()[-1] == version


def test_every_image_runs_the_same_python_and_ray(cpu_image, gpu_image):
    versions = {image: tuple(json.loads(output_of(image, "python", "-c", VERSION_INFO)))
                for image in (cpu_image, gpu_image)}
    assert image_version_problems(versions) == []
    debian_python = dpkg_versions(["python3.11"], cpu_image)["python3.11"]
    assert versions[cpu_image] == (CPU_LOCK["ray"], debian_python.split("-")[0])

    # Ray's own check of a node joining a head, run in the GPU image against the CPU image's versions; and
    # against a head on another Python patch release, which it must refuse.
    check = ("import sys; from ray._private.utils import check_version_info; "
             "check_version_info({'ray_version': sys.argv[1], 'python_version': sys.argv[2]}, 'gpu worker')")
    assert run_in(gpu_image, "python", "-c", check, *versions[cpu_image]).returncode == 0
    other_patch = re.sub(r"\d+$", lambda m: str(int(m.group()) + 1), versions[cpu_image][1])
    refused = run_in(gpu_image, "python", "-c", check, versions[cpu_image][0], other_patch)
    assert refused.returncode != 0 and "Version mismatch" in refused.stderr, refused.stderr[-2000:]


def test_the_cluster_launcher_adds_a_worker_container_for_a_submitted_run_and_removes_everything(cpu_image, tmp_path):
    """Ray's fake_multinode_docker provider on the CPU image (podman serves the Docker API): `ray up`, one demo
    target submitted with `foldflow submit --wait` whose actors only the worker type can hold, `ray down`."""
    if shutil.which("docker") is None:
        pytest.fail("the Docker CLI is needed (docker compose through podman's Docker API); this kind of machine "
                    "has it at /usr/local/bin/docker")
    run = run_local.run_launcher(tmp_path, cpu_image)
    assert run.submit_status == 0, run.log[-3000:]
    assert "SUCCEEDED" in run.log
    assert run.workers, "the autoscaler started no worker container"
    assert [p.parts[-2] for p in run.outputs] == [first_demo_target()[0]]
    assert run.left == [], "ray down left containers or networks"
