"""External search tools (HH-suite, MMseqs2): found on this machine before a run, run with one-line errors."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

# Debian packages that install each binary (bookworm: hhsuite 3.3.0, mmseqs2 14-7e284).
PACKAGES = {"hhblits": "hhsuite", "hhsearch": "hhsuite", "hhmake": "hhsuite", "ffindex_apply": "hhsuite", "mmseqs": "mmseqs2"}
# HH-suite's column-state translator: the Debian wrapper script does not start, its SIMD binaries do
# (../shared/NOTES-msa.md); the libraries it needs ship in hhsuite-data.
CSTRANSLATE_BINARIES = [Path("/usr/libexec/hhsuite") / f"cstranslate-{simd}" for simd in ("avx2", "sse2", "plain")]
HHSUITE_DATA = Path("/usr/lib/hhsuite/data")


class ToolError(RuntimeError):
    """An external tool is missing or failed; the message is one line."""


def find_binary(binary: str, setting: str) -> str:
    """The binary's full path; ToolError naming the Debian package and the setting when it is missing."""
    found = shutil.which(binary)
    if found is None:
        package = PACKAGES.get(Path(binary).name, Path(binary).name)
        raise ToolError(f"{binary}: not found (install the Debian package {package}: apt-get install {package}, "
                        f"or set {setting} to its path)")
    return found


def cstranslate_binary() -> str:
    """A working ``cstranslate`` (HH-suite's column-state translation for hhblits databases)."""
    with open("/proc/cpuinfo") as handle:
        flags = handle.read()
    for binary in CSTRANSLATE_BINARIES:
        simd = binary.name.split("-")[1]
        if binary.is_file() and (simd == "plain" or simd in flags):
            return str(binary)
    raise ToolError("cstranslate: not found under /usr/libexec/hhsuite (install the Debian package hhsuite)")


def run(args: Sequence[str | Path], what: str, cwd: Path | None = None) -> str:
    """Run a tool; its stdout, or ToolError with ``what`` and the last two lines the tool printed (a wrapper
    script's "Aborted" line comes after the tool's own message)."""
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, errors="replace", cwd=cwd)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise ToolError(f"{what}: {Path(str(args[0])).name} exited {done.returncode}: "
                        f"{' | '.join(line.strip() for line in lines[-2:]) if lines else 'no output'}")
    return done.stdout


def version_line(args: Sequence[str], pattern: str) -> str:
    """The first line of a tool's output that contains ``pattern`` (its version)."""
    done = subprocess.run(list(args), capture_output=True, text=True)
    text = done.stdout + done.stderr
    return next((line.strip() for line in text.splitlines() if pattern in line), "unknown")
