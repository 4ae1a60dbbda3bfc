"""`foldflow submit`: a run submitted as a Ray job to a local head (127.0.0.1) completes into the store; the
nightly route (examples/nightly/nightly.sh, what the KubeRay CronJob runs) exits non-zero when its run fails;
a run inside the cluster (RAY_ADDRESS set, as in KubeRay pods and Ray jobs) joins it without --address."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import foldflow
from conftest import DATA, DEMO_FASTA, ROOT
from ray_head import RAY_ENV as ENV, ray_head

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.xdist_group("ray-heads")]


@pytest.fixture
def cluster():
    """A Ray head on this machine, dashboard on 127.0.0.1 only: (dashboard URL, GCS address); stopped by its
    process id afterwards (tests/ray_head.py), never with `ray stop`."""
    with ray_head() as head:
        yield head.dashboard, head.gcs


def nightly(head: str, targets: Path, store: Path, out: Path, prefix: str) -> subprocess.CompletedProcess:
    """examples/nightly/nightly.sh in its cluster mode, as configs/kuberay/cronjob.yaml runs it."""
    env = {**ENV, "ADDRESS": head, "TARGETS": str(targets), "RESULTS": str(out), "STORE": str(store),
           "CONFIG": str(DATA / "small.yaml"), "FOLDFLOW": str(Path(sys.executable).parent / "foldflow"),
           "PYTHON": sys.executable, "RUN_PREFIX": prefix}
    return subprocess.run([str(ROOT / "examples" / "nightly" / "nightly.sh")], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)


def test_submitted_nightly_runs_complete_into_the_store_and_a_failed_night_exits_non_zero(cluster, tmp_path):
    """The nightly route submits `foldflow submit --wait`: tonight's run completes (exit 0), the CronJob's
    retried pod follows the job submitted before, the run id is never submitted twice, and a night with a bad
    target exits 1 after the others finished (from the store)."""
    head, gcs = cluster
    store, out = tmp_path / "store", tmp_path / "out"
    night = nightly(head, DEMO_FASTA, store, out, "nightly")
    assert night.returncode == 0, night.stdout + night.stderr
    run_id = night.stdout.split()[1]
    assert f"run {run_id} submitted as Ray job foldflow-{run_id}" in night.stdout
    status = foldflow.run_status(run_id, str(store))
    assert status["state"] == "finished" and status["counts"] == {"ok": 4}
    assert (out / "HG003690_101" / "ranked_0.pdb").is_file()
    retried = nightly(head, DEMO_FASTA, store, out, "nightly")
    assert retried.returncode == 0 and f"run {run_id} was submitted before" in retried.stdout, retried.stdout
    again = subprocess.run(
        [sys.executable, "-m", "foldflow", "submit", str(DEMO_FASTA), "--address", head, "--out", str(out),
         "--run-id", run_id, "--python", sys.executable],
        capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300)
    assert again.returncode == 2, "the same run id is never submitted twice"
    errors = [line for line in again.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: run '{run_id}': Ray job foldflow-{run_id} exists already on {head}; "
                      f"submit with another --run-id"]
    bad = tmp_path / "bad.fasta"
    bad.write_text(DEMO_FASTA.read_text() + ">broken\nMKV1LLA\n")
    failed = nightly(head, bad, store, tmp_path / "bad-night", "bad")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAILED" in failed.stdout and foldflow.run_status(failed.stdout.split()[1], str(store))["counts"] == {
        "ok": 4, "invalid": 1}

    # a job that fails before foldflow starts (the cluster's python has no foldflow): `submit` exits 0, and
    # `runs status` with the cluster's address reads the job (the run is not in the store) and says why it failed
    broken = subprocess.run(
        [sys.executable, "-m", "foldflow", "submit", str(DEMO_FASTA), "--address", head, "--out", str(out),
         "--store", str(store), "--run-id", "no-foldflow", "--python", NO_FOLDFLOW_PYTHON],
        capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300)
    assert broken.returncode == 0, broken.stderr
    assert f"foldflow runs status no-foldflow --address {head} --store {store}" in broken.stdout
    status = status_once_job_ended(head, store, "no-foldflow")
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("run no-foldflow: failed, 0% of 0 targets done"), status.stdout
    assert "error: Ray job foldflow-no-foldflow FAILED before the run started: " in status.stdout
    assert "No module named" in status.stdout, "the job's own last log lines say why"
    unknown = subprocess.run([sys.executable, "-m", "foldflow", "runs", "status", "never-submitted", "--store",
                              str(store), "--address", head], capture_output=True, text=True, env=ENV, timeout=120)
    assert unknown.returncode == 2 and f"nor as a Ray job on {head}" in unknown.stderr, unknown.stderr

    # inside the cluster (RAY_ADDRESS set) a run joins it without --address: its driver is the cluster's
    joined = subprocess.run(
        [sys.executable, "-m", "foldflow", "predict", str(DEMO_FASTA), "--out", str(tmp_path / "joined"),
         "--config", str(DATA / "small.yaml"), "--store", str(store), "--run-id", "joined", "--progress", "none"],
        capture_output=True, text=True, cwd=ROOT, env={**ENV, "RAY_ADDRESS": gcs}, timeout=600)
    assert joined.returncode == 0, joined.stderr[-3000:]
    assert "--run-id joined" in " ".join(driver_entrypoints(head))


def driver_entrypoints(head: str) -> list[str]:
    """The command lines of the drivers that joined the cluster (Ray's job list; token auth is chosen before
    Ray is imported, so in a process of its own)."""
    script = ("import json, sys; from ray.job_submission import JobSubmissionClient; print(json.dumps("
              "[j.entrypoint for j in JobSubmissionClient(sys.argv[1]).list_jobs() if j.type == 'DRIVER']))")
    listed = subprocess.run([sys.executable, "-c", script, head], capture_output=True, text=True, env=ENV,
                            timeout=120, check=True)
    return json.loads(listed.stdout.strip().splitlines()[-1])


NO_FOLDFLOW_PYTHON = "/usr/bin/python3"  # Debian's, without foldflow's packages


def status_once_job_ended(head: str, store: Path, run_id: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    """`foldflow runs status RUN --address HEAD` once it no longer says the run is starting."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = subprocess.run([sys.executable, "-m", "foldflow", "runs", "status", run_id, "--store", str(store),
                                 "--address", head], capture_output=True, text=True, env=ENV, timeout=120)
        if ": starting," not in status.stdout or time.monotonic() > deadline:
            return status
        time.sleep(2)
