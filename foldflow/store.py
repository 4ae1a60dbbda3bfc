"""A content-addressed, durable store of step results and run records.

The store lives on any pyarrow filesystem given by URI (a local path by
default; ``s3://bucket/prefix``, ``gs://...``, ``mock://`` through the same
code). Step results are kept under a key that hashes everything that affects
them (see :mod:`foldflow.steps`): two runs that share work share results.

Nothing is pickled: arrays are ``.npz`` (``allow_pickle=False``), records are
JSON. Every entry is written under a temporary name and moved into place, and
its SHA-256 goes to a sidecar file written last; an entry without a sidecar,
or whose bytes do not match it, is treated as absent (and removed), so a
half-written or corrupted result is recomputed, never loaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.fs as pafs

log = logging.getLogger("foldflow")


def content_key(kind: str, **parts: Any) -> str:
    """SHA-256 of the canonical JSON of ``parts``: the address of one step result."""
    text = json.dumps({"kind": kind, **parts}, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _to_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """npz bytes; object arrays of bytes (AlphaFold's string features) become fixed-width bytes."""
    encoded = {}
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.dtype == object:
            encoded[f"__object__{name}"] = np.array([bytes(v) for v in value.ravel()]).reshape(value.shape)
        else:
            encoded[name] = value
    buffer = io.BytesIO()
    np.savez(buffer, **encoded)
    return buffer.getvalue()


def _from_npz(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {}
        for name in npz.files:
            if name.startswith("__object__"):
                arrays[name.removeprefix("__object__")] = npz[name].astype(object)
            else:
                arrays[name] = npz[name]
    return arrays


class Store:
    """Step results by content key, and run records, on one filesystem."""

    def __init__(self, uri: str | Path):
        uri = str(uri)
        if "://" in uri:
            self.fs, root = pafs.FileSystem.from_uri(uri)
        else:
            self.fs, root = pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve())
        self.uri = uri
        self.root = root.rstrip("/")
        self.fs.create_dir(self.root, recursive=True)

    # -- raw entries -------------------------------------------------------
    def _path(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def _write_atomic(self, path: str, data: bytes) -> None:
        parent = path.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        with self.fs.open_output_stream(tmp) as out:
            out.write(data)
        self.fs.move(tmp, path)

    def _exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type == pafs.FileType.File

    def put_bytes(self, relative: str, data: bytes) -> None:
        path = self._path(relative)
        self._write_atomic(path, data)
        self._write_atomic(f"{path}.sha256", hashlib.sha256(data).hexdigest().encode())

    def get_bytes(self, relative: str) -> bytes | None:
        """The entry's bytes, or None when it is absent, incomplete or fails its checksum."""
        path = self._path(relative)
        if not self._exists(f"{path}.sha256"):
            return None
        with self.fs.open_input_stream(f"{path}.sha256") as handle:
            expected = handle.read().decode().strip()
        try:
            with self.fs.open_input_stream(path) as handle:
                data = handle.read()
        except FileNotFoundError:
            data = None
        if data is None or hashlib.sha256(data).hexdigest() != expected:
            log.warning("store entry %s is corrupt or truncated; it will be recomputed", relative)
            self.delete(relative)
            return None
        return data

    def delete(self, relative: str) -> None:
        for path in (self._path(relative), self._path(relative) + ".sha256"):
            if self._exists(path):
                self.fs.delete_file(path)

    # -- step results --------------------------------------------------------
    @staticmethod
    def step_path(kind: str, key: str, suffix: str) -> str:
        return f"steps/{kind}/{key[:2]}/{key}.{suffix}"

    def put_json(self, kind: str, key: str, record: Any) -> None:
        self.put_bytes(self.step_path(kind, key, "json"), json.dumps(record, sort_keys=True).encode())

    def get_json(self, kind: str, key: str) -> Any | None:
        data = self.get_bytes(self.step_path(kind, key, "json"))
        return None if data is None else json.loads(data)

    def has_json(self, kind: str, key: str) -> bool:
        """Whether the entry is there (complete: its checksum is written last), without reading it."""
        return self._exists(self._path(self.step_path(kind, key, "json")) + ".sha256")

    def put_arrays(self, kind: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        self.put_bytes(self.step_path(kind, key, "npz"), _to_npz(arrays))

    def get_arrays(self, kind: str, key: str) -> dict[str, np.ndarray] | None:
        data = self.get_bytes(self.step_path(kind, key, "npz"))
        return None if data is None else _from_npz(data)

    def count(self, kind: str) -> int:
        """Number of complete entries of one kind (their checksum sidecars)."""
        selector = pafs.FileSelector(self._path(f"steps/{kind}"), recursive=True, allow_not_found=True)
        return sum(1 for info in self.fs.get_file_info(selector) if info.path.endswith(".sha256"))

    # -- the computation ledger ---------------------------------------------------
    def log_computation(self, kind: str, key: str, token: str, event: str) -> None:
        """Note that a computation of one step result started or finished (``event``)."""
        self.put_record(f"computations/{kind}/{key}/{token}.{event}", {"pid": os.getpid(), "time": time.time()})

    def computations(self, kind: str) -> dict[str, Counter]:
        """Per key of one kind: how many computations started and finished, over the store's life.

        A step computed twice (a recomputation the store should have prevented)
        shows ``finished`` 2; a call lost mid-way (its actor died) and retried
        shows ``started`` 2, ``finished`` 1.
        """
        selector = pafs.FileSelector(self._path(f"computations/{kind}"), recursive=True, allow_not_found=True)
        counts: dict[str, Counter] = {}
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.File and not info.base_name.endswith(".tmp"):
                key = info.path.rsplit("/", 2)[-2]
                counts.setdefault(key, Counter())[info.base_name.rsplit(".", 1)[1]] += 1
        return counts

    # -- run records -----------------------------------------------------------
    def put_record(self, relative: str, record: Any) -> None:
        self._write_atomic(self._path(relative), json.dumps(record, indent=1, sort_keys=True).encode())

    def get_record(self, relative: str) -> Any | None:
        text = self.get_text(relative)
        return None if text is None else json.loads(text)

    def put_text(self, relative: str, text: str) -> None:
        self._write_atomic(self._path(relative), text.encode())

    def get_text(self, relative: str) -> str | None:
        path = self._path(relative)
        if not self._exists(path):
            return None
        with self.fs.open_input_stream(path) as handle:
            return handle.read().decode()

    def delete_record(self, relative: str) -> None:
        path = self._path(relative)
        if self._exists(path):
            self.fs.delete_file(path)

    def list_dir(self, relative: str) -> list[str]:
        selector = pafs.FileSelector(self._path(relative), allow_not_found=True)
        return sorted(info.base_name for info in self.fs.get_file_info(selector))
