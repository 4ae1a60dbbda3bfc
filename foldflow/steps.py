"""Step results by content: what each step's key hashes, and how results go to and from the store.

A key covers everything that changes the result, never a target's display
name: the sequence, each database's fingerprint (path, size, modification
time), the search settings and the engine with its version for an MSA; the
MSAs' keys and the deduplication setting for features; the features' key,
model name and version, parameters' fingerprint, seed, recycles, MSA depths,
precision and padding bucket for a prediction; and the versions of foldflow
and alphafold-colabfold. A changed setting recomputes exactly the steps it
reaches.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import TypeVar

import numpy as np

from foldflow.config import PRESET_SETTINGS, DatabaseConfig, ModelConfig, TemplateConfig
from foldflow.models.base import Prediction
from foldflow.alignment import Alignment
from foldflow.store import Store, content_key

T = TypeVar("T")

VERSIONS = {name: metadata.version(name) for name in ("foldflow", "alphafold-colabfold", "jax")}


def _file_fingerprint(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def prefix_fingerprint(prefix: Path) -> str:
    """A database's files as they are now: a FASTA file, or every file of a database prefix
    (HH-suite ``<prefix>_a3m.ffdata`` ..., MMseqs2 ``<prefix>.dbtype`` ...)."""
    files = [prefix] if prefix.is_file() else sorted(prefix.parent.glob(f"{prefix.name}[._]*"))
    return ";".join(_file_fingerprint(path) for path in files)


def database_fingerprint(db: DatabaseConfig) -> str:
    return ";".join(prefix_fingerprint(prefix) for prefix in (db.path, *db.extra_paths))


def search_key(sequence: str, db: DatabaseConfig, settings: dict, engine: str, engine_version: str) -> str:
    """Key of one search: the sequence, never the target's name (stored alignments use a neutral name)."""
    return content_key("msa", sequence=sequence, database=db.name, fingerprint=database_fingerprint(db),
                       max_hits=db.max_hits, settings=settings, engine=engine,
                       versions={engine: engine_version, "alphafold": VERSIONS["alphafold-colabfold"]})


def alignment_content_key(alignment: Alignment) -> str:
    """Key of an alignment given by the user: its content."""
    return content_key("msa-given", database=alignment.database, format=alignment.format,
                       text=hashlib.sha256(alignment.text.encode()).hexdigest())


def features_key(sequence: str, alignment_keys: list[str], deduplicate: bool,
                 template_keys: list[str] | None = None) -> str:
    """Key of the features: the sequence (a complex's chains joined by ":"), its alignments' and
    templates' keys (features carry no display name)."""
    return content_key("features", sequence=sequence, msas=alignment_keys, templates=template_keys or [],
                       deduplicate=deduplicate,
                       versions={"foldflow": VERSIONS["foldflow"], "alphafold": VERSIONS["alphafold-colabfold"]})


def templates_key(uniref90_key: str, templates: TemplateConfig, engine: str, searcher_version: str) -> str:
    """Key of one chain's templates: its uniref90 alignment (the query's source), the searcher and its
    database (PDB seqres or PDB70), the mmCIF folder, the date limit, the obsolete list and the hit limit."""
    mmcif = templates.mmcif_dir.stat()
    obsolete = templates.obsolete_pdbs
    searched = {"seqres": prefix_fingerprint(templates.pdb_seqres)} if engine == "hmmsearch" else \
        {"engine": "hhsearch", "pdb70": prefix_fingerprint(templates.pdb70)}
    prefilter = "deepmind-2.3: align ratio, duplicate, length" if templates.deepmind_prefilter else "none"
    return content_key(
        "templates", uniref90=uniref90_key, **searched, prefilter=prefilter,
        mmcif=f"{templates.mmcif_dir.resolve()}:{mmcif.st_mtime_ns}",
        obsolete=f"{obsolete.resolve()}:{obsolete.stat().st_mtime_ns}" if obsolete else None,
        max_template_date=templates.max_template_date, max_hits=templates.max_hits,
        versions={engine: searcher_version, "alphafold": VERSIONS["alphafold-colabfold"]})


def outputs_key(target_id: str, step_keys: list[str], relax_settings: dict | None, relaxed: list[str],
                plots: bool, random_params: bool) -> str:
    """Key of a target's output folder: its name, the store keys of the step results it shows (the features',
    which cover its alignments and templates, and the predictions'), the relaxation settings and which
    predictions were relaxed, whether it has plots and the random-parameters notice, and foldflow's version
    (the layout's)."""
    return content_key("outputs", target=target_id, steps=step_keys, relax=relax_settings, relaxed=sorted(relaxed),
                       plots=plots, random_params=random_params, versions={"foldflow": VERSIONS["foldflow"]})


def relax_key(prediction: str, settings: dict, openmm_version: str) -> str:
    """Key of one relaxation: the prediction's key, AlphaFold's relaxation settings, OpenMM's version."""
    return content_key("relax", prediction=prediction, settings=settings,
                       versions={"openmm": openmm_version, "alphafold": VERSIONS["alphafold-colabfold"]})


def prediction_key(features: str, model_name: str, model_version: str, settings: ModelConfig, pad_to: int,
                   seed: int) -> str:
    from foldflow.models import model_class

    model_settings = {"seed": seed, "bfloat16": settings.bfloat16,
                      **{name: settings.preset_value(name) for name in PRESET_SETTINGS}}
    return content_key("prediction", features=features, model=model_name, model_version=model_version,
                       params=model_class(model_name).params_fingerprint(model_name, settings),
                       settings=model_settings, pad_to=pad_to,
                       versions={"alphafold": VERSIONS["alphafold-colabfold"], "jax": VERSIONS["jax"]})


# -- encoding --------------------------------------------------------------------------------------
def alignment_to_record(alignment: Alignment) -> dict:
    return asdict(alignment)


def alignment_from_record(record: dict) -> Alignment:
    return Alignment(**record)


_PREDICTION_ARRAYS = ("aatype", "residue_index", "atom_positions", "atom_mask", "plddt", "pae", "chain_index")


def prediction_to_arrays(prediction: Prediction) -> dict[str, np.ndarray]:
    arrays = {name: getattr(prediction, name) for name in _PREDICTION_ARRAYS
              if getattr(prediction, name) is not None}
    scalars = {k: v for k, v in asdict(prediction).items() if k not in _PREDICTION_ARRAYS}
    arrays["scalars"] = np.array(json.dumps(scalars))
    return arrays


def prediction_from_arrays(arrays: dict[str, np.ndarray]) -> Prediction:
    scalars = json.loads(str(arrays["scalars"]))
    return Prediction(**scalars, **{name: arrays.get(name) for name in _PREDICTION_ARRAYS})


class StepCache:
    """Look a step result up in the store, or compute and store it; counts what was computed and
    notes every computation's start and end in the store's ledger."""

    def __init__(self, store: Store):
        self.store = store
        self.computed: dict[str, int] = {}

    def _cached(self, kind: str, key: str, compute: Callable[[], T], put, get,
                encode: Callable[[T], object], decode: Callable[[object], T]) -> T:
        found = get(kind, key)
        if found is not None:
            return decode(found)
        token = uuid.uuid4().hex
        self.store.log_computation(kind, key, token, "started")
        result = compute()
        put(kind, key, encode(result))
        self.store.log_computation(kind, key, token, "finished")
        self.computed[kind] = self.computed.get(kind, 0) + 1
        return result

    def alignment(self, key: str, compute: Callable[[], Alignment]) -> Alignment:
        return self._cached("msa", key, compute, self.store.put_json, self.store.get_json,
                            alignment_to_record, alignment_from_record)

    def has_alignment(self, key: str) -> bool:
        return self.store.has_json("msa", key)

    def features(self, key: str, compute: Callable[[], dict]) -> dict[str, np.ndarray]:
        return self._cached("features", key, compute, self.store.put_arrays, self.store.get_arrays,
                            lambda f: f, lambda f: f)

    def arrays(self, kind: str, key: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Any step result that is a dict of arrays (templates, relaxations)."""
        return self._cached(kind, key, compute, self.store.put_arrays, self.store.get_arrays,
                            lambda a: a, lambda a: a)

    def prediction(self, key: str, compute: Callable[[], Prediction]) -> Prediction:
        return self._cached("prediction", key, compute, self.store.put_arrays, self.store.get_arrays,
                            prediction_to_arrays, prediction_from_arrays)

    def take_counts(self) -> dict[str, int]:
        counts, self.computed = self.computed, {}
        return counts
