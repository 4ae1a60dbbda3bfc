"""`foldflow submit`: a run submitted as a Ray job to a local head (127.0.0.1) completes into the store."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import foldflow
from conftest import DATA, DEMO_FASTA, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.ray]
RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def head(tmp_path):
    """A Ray head on this machine, dashboard on 127.0.0.1 only; `ray stop` afterwards."""
    dashboard = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    subprocess.run([RAY, "start", "--head", f"--port={free_port()}", "--dashboard-host=127.0.0.1",
                    f"--dashboard-port={dashboard}", "--num-cpus=2", "--include-dashboard=true",
                    "--disable-usage-stats"], env=env, check=True, capture_output=True)
    yield f"http://127.0.0.1:{dashboard}"
    subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True)


def test_submitted_job_completes_and_its_run_is_in_the_store(head, tmp_path):
    store, out = tmp_path / "store", tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "foldflow", "submit", str(DEMO_FASTA), "--address", head, "--out", str(out),
         "--config", str(DATA / "small.yaml"), "--store", str(store), "--run-id", "submitted-1",
         "--python", sys.executable, "--wait"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "RAY_AUTH_MODE": "token"}, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "run submitted-1 submitted as Ray job foldflow-submitted-1" in result.stdout
    status = foldflow.run_status("submitted-1", str(store))
    assert status["state"] == "finished" and status["counts"] == {"ok": 4}
    assert (out / "HG003690_101" / "ranked_0.pdb").is_file()
    again = subprocess.run(
        [sys.executable, "-m", "foldflow", "submit", str(DEMO_FASTA), "--address", head, "--out", str(out),
         "--run-id", "submitted-1", "--python", sys.executable],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "RAY_AUTH_MODE": "token"}, timeout=300)
    assert again.returncode == 2, "the same run id is never submitted twice"
    errors = [line for line in again.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: run 'submitted-1': Ray job foldflow-submitted-1 exists already on {head}; "
                      f"submit with another --run-id"]
