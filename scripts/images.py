"""Build foldflow's images (docker/Dockerfile, docker/Dockerfile.gpu) with podman where no image registry is
reachable, as tests/test_images.py does:

    python scripts/images.py            # the base, then both images; prints their tags

tests/conftest.py starts this script in the background as a test session that runs tests/test_images.py
begins, so the downloads overlap the other tests; the image tests run last, wait for its lock and find every
layer built.

The base is the Debian release of the Dockerfiles' default BASE_IMAGE (debian:12.11-slim, bookworm), built from
Debian's packages (``mmdebstrap --variant=minbase``, the archive apt uses) and imported with ``podman import``;
its tarball is cached under .cache/images/, named after what builds it, and both images are built on it, so
they share one Python build. podman keeps the images' layers and a pip download cache (the Dockerfiles' cache
mount) between builds.

Needs root, and the Debian packages podman, runc and mmdebstrap (``make tools``). podman reads
docker/containers.conf (CONTAINERS_CONF): runc and ulimits within this VM's hard limits. pip inside a build
reaches the package index through this machine's CA bundle, mounted into the build with a pip.conf naming it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "images"
CONTAINERS_CONF = ROOT / "docker" / "containers.conf"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# The release, variant and package sources of debian:12.11-slim (bookworm, with its updates).
SUITE = "bookworm"
VARIANT = "minbase"
SOURCES = ("deb http://deb.debian.org/debian bookworm main",
           "deb http://deb.debian.org/debian bookworm-updates main",
           "deb http://deb.debian.org/debian-security bookworm-security main")
IMAGES = {"cpu": "docker/Dockerfile", "gpu": "docker/Dockerfile.gpu"}
BUILD_TIMEOUT_S = 3600
IMAGE_TAG = "localhost/foldflow-{name}:test"


def podman_environment() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, timeout: float = BUILD_TIMEOUT_S) -> str:
    """``podman ARGS``'s standard output; a failure raises with its standard error."""
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                            env=podman_environment())
    if result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


def mmdebstrap_command(tarball: Path) -> list[str]:
    return ["mmdebstrap", f"--variant={VARIANT}", SUITE, str(tarball), *SOURCES]


def base_key() -> str:
    """What builds the base, as a short hash: a change of release, variant or sources is a new base."""
    return hashlib.sha256(" ".join(mmdebstrap_command(Path("base.tar"))).encode()).hexdigest()[:12]


@contextmanager
def build_lock() -> Iterator[None]:
    """One builder at a time (the background build and the tests, or two test sessions on one machine)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def base_tarball() -> Path:
    """The base's root file system as a tarball, built once per key."""
    tarball = CACHE / f"{SUITE}-{VARIANT}-{base_key()}.tar"
    if not tarball.exists():
        partial = tarball.with_suffix(".partial.tar")
        subprocess.run(mmdebstrap_command(partial), check=True, capture_output=True, timeout=BUILD_TIMEOUT_S)
        partial.rename(tarball)
    return tarball


def _base_image() -> str:
    tag = f"localhost/foldflow-base:{SUITE}-{base_key()}"
    if subprocess.run(["podman", "image", "exists", tag], env=podman_environment()).returncode != 0:
        podman("import", "--change", 'CMD ["/bin/bash"]', str(base_tarball()), tag)
    return tag


def base_image() -> str:
    """The base imported into podman (once per key): the BASE_IMAGE both images are built on."""
    with build_lock():
        return _base_image()


def pip_config() -> Path:
    """A pip.conf that points pip at this machine's CA bundle (mounted into the build next to it)."""
    config = CACHE / "pip.conf"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[global]\ncert = /run/host-ca-certificates.crt\n")
    return config


def image_id(tag: str) -> str | None:
    result = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True,
                            text=True, env=podman_environment())
    return result.stdout.strip() if result.returncode == 0 else None


def build_image(name: str, base: str) -> str:
    """``docker/Dockerfile`` (cpu) or ``docker/Dockerfile.gpu`` (gpu) built on ``base``; returns its tag. The
    image the tag named before is removed (its layers that the new one shares stay)."""
    with build_lock():
        return _build_image(name, base)


def _build_image(name: str, base: str) -> str:
    tag = IMAGE_TAG.format(name=name)
    previous = image_id(tag)
    podman("build", "--pull=never", "--layers", "--build-arg", f"BASE_IMAGE={base}",
           "--volume", f"{HOST_CA_BUNDLE}:/run/host-ca-certificates.crt:ro",
           "--volume", f"{pip_config()}:/etc/pip.conf:ro",
           "-f", str(ROOT / IMAGES[name]), "-t", tag, str(ROOT))
    if previous not in (None, image_id(tag)):
        subprocess.run(["podman", "rmi", previous], capture_output=True, env=podman_environment())
    return tag


def main() -> None:
    with build_lock():
        base = _base_image()
        print(base, flush=True)
        for name in (sys.argv[1:] or IMAGES):
            print(_build_image(name, base), flush=True)


if __name__ == "__main__":
    main()
