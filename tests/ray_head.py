"""A Ray head on this machine that a test starts and stops itself, by process id: never ``ray stop``, which
stops every Ray on the machine (another test's, a user's, a benchmark's)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")
RAY_ENV = {**os.environ, "RAY_AUTH_MODE": "token"}
AUTH_TOKEN = Path.home() / ".ray" / "auth_token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class RayHead:
    dashboard: str  # http://127.0.0.1:PORT
    gcs: str  # 127.0.0.1:PORT
    pid: int  # the `ray start --block` process; every Ray process of this head is in its process group


@contextmanager
def ray_head(*args: str, env: dict[str, str] | None = None, num_cpus: int = 2,
             gcs_port: int | None = None) -> Iterator[RayHead]:
    """``ray start --head --block`` with every port given explicitly (dashboard on 127.0.0.1 only; workers on
    free ports the system picks, not ray start's range 10002-19999; the dashboard agent, which takes job
    submissions, not on Ray's fixed 52365, which a local Ray of the other pytest worker may hold), in a process
    group of its own; stopped by signalling that group when the block ends."""
    if not AUTH_TOKEN.is_file():  # what the first ray.init() writes; `ray start` only reads it
        subprocess.run([RAY, "get-auth-token", "--generate"], env=RAY_ENV, check=True, capture_output=True)
    dashboard, gcs, client, agent = free_port(), gcs_port or free_port(), free_port(), free_port()
    command = [RAY, "start", "--head", "--block", f"--port={gcs}", f"--ray-client-server-port={client}",
               f"--num-cpus={num_cpus}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
               f"--dashboard-agent-listen-port={agent}", "--include-dashboard=true", "--disable-usage-stats",
               "--min-worker-port=0", "--max-worker-port=0", *args]
    process = subprocess.Popen(command, env={**RAY_ENV, **(env or {})}, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    head = RayHead(f"http://127.0.0.1:{dashboard}", f"127.0.0.1:{gcs}", process.pid)
    try:
        _wait_for_dashboard(head.dashboard, process)
        yield head
    finally:
        _stop_group(process)


def _wait_for_dashboard(url: str, process: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ray start --head exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/version", timeout=2):
                return
        except urllib.error.HTTPError:  # it answers (401: token authentication is on)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"no Ray dashboard at {url} after {timeout_s:.0f} s")


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to `ray start --block` (it stops the processes it started), then SIGKILL to whatever is left of
    its process group (job drivers, fake nodes)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
