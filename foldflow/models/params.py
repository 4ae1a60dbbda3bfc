"""AlphaFold parameters: the ``params_model_*.npz`` layout, real or random-init.

Real parameters come from AlphaFold's ``params_model_<name>.npz`` files
(flat ``scope//name`` keys, unfused triangle-multiplication projections).
Random parameters are initialised once per (model, seed), written in that same
layout to a cache folder and read back through the same loader, so a later
process or actor does not initialise them again.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

import haiku as hk
import numpy as np
from alphafold.model import utils

PARAMS_FILE = "params_{model_name}.npz"


class ParamsNotFoundError(FileNotFoundError):
    pass


def params_path(params_dir: Path, model_name: str) -> Path:
    """``DIR/params_<model>.npz``, or ``DIR/params/params_<model>.npz`` (AlphaFold's data_dir)."""
    name = PARAMS_FILE.format(model_name=model_name)
    for candidate in (params_dir / name, params_dir / "params" / name):
        if candidate.is_file():
            return candidate
    raise ParamsNotFoundError(f"model '{model_name}': no {name} in {params_dir} or {params_dir / 'params'}")


def load_params(path: Path) -> hk.Params:
    """Read an AlphaFold-layout npz into the Haiku tree this model code expects (fused)."""
    with np.load(path, allow_pickle=False) as flat:
        arrays = {key: flat[key] for key in flat.files}
    return utils.flat_params_to_haiku(arrays, fuse=True, to_jnp=False)


def to_alphafold_layout(params: hk.Params) -> dict[str, np.ndarray]:
    """Haiku tree (fused) -> AlphaFold's flat npz layout (unfused projections)."""
    flat = {f"{scope}//{name}": np.asarray(value)
            for scope, entries in params.items() for name, value in entries.items()}
    unfused = utils.flat_params_to_haiku(flat, fuse=False, to_jnp=False)
    return {f"{scope}//{name}": np.asarray(value)
            for scope, entries in unfused.items() for name, value in entries.items()}


def save_params(params: hk.Params, path: Path) -> None:
    """Write in AlphaFold's layout; atomic (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **to_alphafold_layout(params))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def link(source: Path, path: Path) -> None:
    """``path`` names the same file as ``source`` (a hard link; a copy across file systems)."""
    try:
        os.link(source, path)
    except FileExistsError:
        pass
    except OSError:
        tmp = path.with_suffix(".npz.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, path)


def random_params_dir(cache_dir: Path, seed: int, generator: str) -> Path:
    return cache_dir / "params" / f"random-{generator}-seed{seed}"


def cached_or_initialised(path: Path, initialise) -> tuple[hk.Params, float, bool]:
    """Load ``path`` or create it with ``initialise()``; returns (params, seconds, created).

    Processes that need the same file at once (actors starting together, on one node or sharing a cache
    volume) take turns on a lock file: one initialises, the others wait and read its file.
    """
    start = time.perf_counter()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.is_file():
                save_params(initialise(), path)
                return load_params(path), time.perf_counter() - start, True
    return load_params(path), time.perf_counter() - start, False
