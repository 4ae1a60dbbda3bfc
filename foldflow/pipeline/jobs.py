"""Submitting a run to a Ray cluster as a Ray job (Ray Jobs API).

The job runs ``foldflow predict ... --address auto`` on the cluster with the
caller's folder as its working directory, so relative paths in the command
and the config resolve there. The run id doubles as the job's submission id:
Ray refuses a second job with the same id, so a retried submit never starts
a run twice.
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

# Ray's token authentication must be chosen before Ray is imported (see NOTES on Ray 2.60).
os.environ.setdefault("RAY_AUTH_MODE", "token")

from ray.job_submission import JobStatus, JobSubmissionClient  # noqa: E402

from foldflow.errors import ClusterConnectionError, JobExistsError  # noqa: E402

WORKING_DIR_EXCLUDES = [".venv", ".cache", ".git", "results", "**/__pycache__"]
FINISHED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}


def submission_id(run_id: str) -> str:
    return f"foldflow-{run_id}"


def job_client(address: str) -> JobSubmissionClient:
    """The Ray Jobs client of a cluster's dashboard; ClusterConnectionError when it cannot be reached."""
    try:
        return JobSubmissionClient(address)
    except ConnectionError as error:
        raise ClusterConnectionError(f"Ray dashboard {address}: {error}") from None


def submit_run(address: str, run_id: str, predict_args: list[str], working_dir: Path,
               python: str = "python") -> str:
    """Submit ``foldflow predict <predict_args>`` as a Ray job; returns the job's submission id.

    Raises ClusterConnectionError when the dashboard cannot be reached and
    JobExistsError when a job with this run id was submitted before.
    """
    entrypoint = shlex.join([python, "-m", "foldflow", "predict", *predict_args,
                             "--run-id", run_id, "--address", "auto", "--progress", "jsonl"])
    client = job_client(address)
    try:
        return client.submit_job(
            entrypoint=entrypoint, submission_id=submission_id(run_id),
            runtime_env={"working_dir": str(working_dir), "excludes": WORKING_DIR_EXCLUDES},
            metadata={"foldflow_run_id": run_id})
    except RuntimeError as error:
        if f"{submission_id(run_id)} already exists" not in str(error):
            raise
        raise JobExistsError(f"run '{run_id}': Ray job {submission_id(run_id)} exists already on {address}; "
                             f"submit with another --run-id", submission_id(run_id)) from None


def job_state(address: str, run_id: str, log_lines: int = 5) -> tuple[str, str] | None:
    """(the Ray job's status, its last ``log_lines`` log lines) for a run submitted to ``address`` (a dashboard
    URL or a cluster address); None when no job has this run's id."""
    client = job_client(address)
    job_id = submission_id(run_id)
    try:
        status = client.get_job_status(job_id)
    except RuntimeError as error:
        if "status code 404" in str(error) or "does not exist" in str(error):
            return None
        raise
    lines = client.get_job_logs(job_id).strip().splitlines()
    return str(status), "\n".join(lines[-log_lines:])


def wait_for_job(address: str, job_id: str, timeout_s: float | None = None, poll_s: float = 1.0
                 ) -> tuple[str, str]:
    """Wait until the job ends (at most ``timeout_s``, default: however long it runs); returns (status, the
    job's log)."""
    client = job_client(address)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while (status := client.get_job_status(job_id)) not in FINISHED:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {status} after {timeout_s:.0f} s")
        time.sleep(poll_s)
    return str(status), client.get_job_logs(job_id)
