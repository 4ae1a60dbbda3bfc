"""Per-target outputs in AlphaFold 2.3's layout, and the per-run summary table.

For each target ``OUT/<target_id>/``, named as run_alphafold names them
(``<name>`` is a prediction, ``<model>_pred_<i>``): ``unrelaxed_<name>.pdb``
and ``.cif``, ``relaxed_<name>.pdb`` and ``.cif`` for the relaxed ones,
``ranked_<i>.pdb`` and ``.cif`` (relaxed where relaxed; pLDDT in the B-factor
column; chains A, B, ... for complexes), ``ranking_debug.json`` (``plddts``, or
``iptm+ptm`` for complexes, and ``order``), ``relax_metrics.json``,
``timings.json``, ``confidence_<name>.json`` and ``pae_<name>.json``
(AlphaFold DB format), ``msas/`` (a complex: ``msas/<chain>/``) with the
alignments and template hits used, and foldflow's plots (:mod:`foldflow.plots`).
AlphaFold's pickles (``features.pkl``, ``result_<name>.pkl``) are not written.
A target's folder is written beside its final place and renamed into it, so a
crash never leaves half a target. Its last file, ``.foldflow-outputs-key``, holds the key of what it shows
(:func:`foldflow.steps.outputs_key`): a later run whose target has the same key leaves the folder as it is.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from alphafold.common import protein

from foldflow.models.base import Prediction
from foldflow.alignment import Alignment
from foldflow.plots import write_plots
from foldflow.relax import Relaxed
from foldflow.results import TargetResult, summary_table

RANDOM_PARAMS_WARNING = (
    "WARNING: predicted with RANDOM parameters (no --params given): "
    "these structures and scores are NOT meaningful."
)


@dataclass
class TargetOutputs:
    """Everything a target's folder shows, by AlphaFold's prediction names."""

    msas: Mapping[str, Sequence[Alignment]]  # chain id -> alignments (distinct chains)
    template_hits: Mapping[str, str]  # chain id -> template hits (hmmsearch Stockholm or hhsearch .hhr)
    predictions: Mapping[str, Prediction]
    relaxed: Mapping[str, Relaxed]
    relax_requested: bool  # write relax_metrics.json (run_alphafold writes it unless models_to_relax is none)
    timings: Mapping[str, float]  # run_alphafold's timings.json
    multimer: bool
    template_hits_file: str = "pdb_hits.sto"  # AlphaFold's name: pdb_hits.sto (hmmsearch) or .hhr (hhsearch)


def to_protein(prediction: Prediction) -> protein.Protein:
    """The prediction as AlphaFold's Protein: pLDDT in the B-factors, residues numbered from 1 per chain."""
    b_factors = prediction.plddt[:, None] * prediction.atom_mask
    chains = prediction.chain_index if prediction.chain_index is not None else np.zeros_like(prediction.aatype)
    return protein.Protein(
        aatype=prediction.aatype,
        atom_positions=prediction.atom_positions,
        atom_mask=prediction.atom_mask,
        residue_index=prediction.residue_index + 1,
        chain_index=np.asarray(chains),
        b_factors=b_factors,
    )


def confidence_json(plddt: np.ndarray) -> dict:
    """AlphaFold DB confidence format (categories as in AlphaFold 2.3.2)."""
    categories = np.select([plddt > 90, plddt > 70, plddt > 50], ["H", "M", "L"], default="D")
    return {
        "residueNumber": list(range(1, len(plddt) + 1)),
        "confidenceScore": [round(float(x), 2) for x in plddt],
        "confidenceCategory": categories.tolist(),
    }


def pae_json(pae: np.ndarray, max_pae: float) -> list[dict]:
    """AlphaFold DB PAE format."""
    return [{
        "predicted_aligned_error": np.round(pae.astype(np.float64), 2).tolist(),
        "max_predicted_aligned_error": float(max_pae),
    }]


def ranked_names(predictions: Mapping[str, Prediction]) -> list[str]:
    """Prediction names best first, as run_alphafold orders them (by ranking confidence)."""
    return [name for name, _ in sorted(predictions.items(), key=lambda item: item[1].ranking_confidence,
                                       reverse=True)]


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2 if not isinstance(data, list) else None))


def _write_alphafold_json(path: Path, data) -> None:
    """JSON as run_alphafold writes ranking_debug.json, relax_metrics.json and timings.json."""
    path.write_text(json.dumps(data, indent=4))


def _write_msas(folder: Path, outputs: TargetOutputs) -> None:
    """msas/ as AlphaFold writes it: a monomer's files directly, a complex's per chain (msas/A/...)."""
    msa_dir = folder / "msas"
    msa_dir.mkdir()
    for chain, alignments in outputs.msas.items():
        chain_dir = msa_dir / chain if outputs.multimer else msa_dir
        chain_dir.mkdir(exist_ok=True)
        for alignment in alignments:
            (chain_dir / alignment.file_name).write_text(alignment.text)
        if chain in outputs.template_hits:
            (chain_dir / outputs.template_hits_file).write_text(outputs.template_hits[chain])


def _fill_target_folder(folder: Path, target_id: str, outputs: TargetOutputs, random_params: bool,
                        plots: bool) -> None:
    _write_msas(folder, outputs)
    model_type = "Multimer" if outputs.multimer else "Monomer"
    order = ranked_names(outputs.predictions)
    unrelaxed = {name: to_protein(p) for name, p in outputs.predictions.items()}
    for index, (name, p) in enumerate(outputs.predictions.items()):
        (folder / f"unrelaxed_{name}.pdb").write_text(protein.to_pdb(unrelaxed[name]))
        (folder / f"unrelaxed_{name}.cif").write_text(
            protein.to_mmcif(unrelaxed[name], file_id=str(index), model_type=model_type))
        _write_json(folder / f"confidence_{name}.json", confidence_json(p.plddt))
        if p.pae is not None:
            _write_json(folder / f"pae_{name}.json", pae_json(p.pae, p.max_pae))
    relaxed = {name: protein.from_pdb_string(r.pdb) for name, r in outputs.relaxed.items()}
    for name, r in outputs.relaxed.items():
        (folder / f"relaxed_{name}.pdb").write_text(r.pdb)
        (folder / f"relaxed_{name}.cif").write_text(
            protein.to_mmcif(relaxed[name], file_id="0", model_type=model_type))
    for index, name in enumerate(order):
        pdb = outputs.relaxed[name].pdb if name in relaxed else protein.to_pdb(unrelaxed[name])
        (folder / f"ranked_{index}.pdb").write_text(pdb)
        (folder / f"ranked_{index}.cif").write_text(
            protein.to_mmcif(relaxed.get(name, unrelaxed[name]), file_id=str(index), model_type=model_type))
    label = "iptm+ptm" if outputs.multimer else "plddts"
    _write_alphafold_json(folder / "ranking_debug.json", {
        label: {name: float(p.ranking_confidence) for name, p in outputs.predictions.items()}, "order": order})
    if outputs.relax_requested:
        _write_alphafold_json(folder / "relax_metrics.json", {
            name: {"remaining_violations": r.violations_per_residue,
                   "remaining_violations_count": float(sum(r.violations_per_residue))}
            for name, r in outputs.relaxed.items()})
    _write_alphafold_json(folder / "timings.json", dict(outputs.timings))
    if plots:
        write_plots(folder, outputs.msas, [(name, outputs.predictions[name]) for name in order])
    if random_params:
        (folder / "RANDOM_PARAMETERS_NOT_MEANINGFUL.txt").write_text(RANDOM_PARAMS_WARNING + "\n")


OUTPUTS_KEY_FILE = ".foldflow-outputs-key"


def written_with(folder: Path, key: str) -> bool:
    """Whether the folder holds the outputs of this key (written whole: the key file is written last)."""
    marker = folder / OUTPUTS_KEY_FILE
    return marker.is_file() and marker.read_text() == key


def write_target(out_dir: Path, target_id: str, outputs: TargetOutputs, random_params: bool,
                 plots: bool, key: str | None = None) -> Path:
    """Write one target's folder atomically (marked with the ``key`` of what it shows, when given); returns its
    path."""
    final = out_dir / target_id
    staging = Path(tempfile.mkdtemp(prefix=f".{target_id}.", suffix=".tmp", dir=out_dir))
    try:
        _fill_target_folder(staging, target_id, outputs, random_params, plots)
        if key is not None:
            (staging / OUTPUTS_KEY_FILE).write_text(key)
        staging.chmod(0o755)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return final


def write_summary(path: Path, results: Sequence[TargetResult]) -> pa.Table:
    """The run's summary table (columns declared in :mod:`foldflow.results`), written atomically."""
    table = summary_table(results)
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return table
