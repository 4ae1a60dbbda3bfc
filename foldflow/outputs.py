"""Per-target outputs in AlphaFold's layout, and the per-run summary table.

For each target ``OUT/<target_id>/``: ``ranked_<i>.pdb`` and ``ranked_<i>.cif``
(pLDDT in the B-factor column), ``unrelaxed_<model>.pdb``,
``ranking_debug.json``, ``timings.json``, ``confidence_<model>.json`` and
``pae_<model>.json`` (AlphaFold DB format), ``plddt.png``/``pae.png`` and
``msas/`` with the alignments used. A target's folder is written beside its
final place and renamed into it, so a crash never leaves half a target.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from alphafold.common import protein

from foldflow.models.base import Prediction
from foldflow.msa.alignment import Alignment
from foldflow.results import TargetResult, summary_table

RANDOM_PARAMS_WARNING = (
    "WARNING: predicted with RANDOM parameters (no --params given): "
    "these structures and scores are NOT meaningful."
)


def to_protein(prediction: Prediction) -> protein.Protein:
    b_factors = prediction.plddt[:, None] * prediction.atom_mask
    return protein.Protein(
        aatype=prediction.aatype,
        atom_positions=prediction.atom_positions,
        atom_mask=prediction.atom_mask,
        residue_index=prediction.residue_index + 1,
        chain_index=np.zeros_like(prediction.aatype),
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


def rank(predictions: Sequence[Prediction]) -> list[Prediction]:
    return sorted(predictions, key=lambda p: p.ranking_confidence, reverse=True)


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2 if not isinstance(data, list) else None))


def _plot(folder: Path, ranked: Sequence[Prediction]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    for p in ranked:
        ax.plot(np.arange(1, len(p.plddt) + 1), p.plddt, label=p.model_name)
    ax.set(xlabel="residue", ylabel="pLDDT", ylim=(0, 100), title="Predicted lDDT")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(folder / "plddt.png", dpi=100)
    plt.close(fig)
    if ranked[0].pae is not None:
        fig, ax = plt.subplots(figsize=(4, 3.5))
        image = ax.imshow(ranked[0].pae, cmap="bwr", vmin=0, vmax=ranked[0].max_pae)
        fig.colorbar(image, ax=ax, label="expected position error (Å)")
        ax.set(xlabel="scored residue", ylabel="aligned residue", title=f"PAE {ranked[0].model_name}")
        fig.tight_layout()
        fig.savefig(folder / "pae.png", dpi=100)
        plt.close(fig)


def _fill_target_folder(folder: Path, target_id: str, alignments: Sequence[Alignment],
                        predictions: Sequence[Prediction], timings: dict[str, float],
                        random_params: bool, plots: bool) -> None:
    msa_dir = folder / "msas"
    msa_dir.mkdir()
    for alignment in alignments:
        (msa_dir / alignment.file_name).write_text(alignment.text)
    ranked = rank(predictions)
    for p in predictions:
        (folder / f"unrelaxed_{p.model_name}.pdb").write_text(protein.to_pdb(to_protein(p)))
        _write_json(folder / f"confidence_{p.model_name}.json", confidence_json(p.plddt))
        if p.pae is not None:
            _write_json(folder / f"pae_{p.model_name}.json", pae_json(p.pae, p.max_pae))
    for i, p in enumerate(ranked):
        prot = to_protein(p)
        (folder / f"ranked_{i}.pdb").write_text(protein.to_pdb(prot))
        (folder / f"ranked_{i}.cif").write_text(protein.to_mmcif(prot, file_id=target_id, model_type="Monomer"))
    _write_json(folder / "ranking_debug.json", {
        "plddts": {p.model_name: round(p.ranking_confidence, 4) for p in predictions},
        "order": [p.model_name for p in ranked],
        **({"warning": RANDOM_PARAMS_WARNING} if random_params else {}),
    })
    _write_json(folder / "timings.json", {k: round(v, 4) for k, v in timings.items()})
    if plots:
        _plot(folder, ranked)
    if random_params:
        (folder / "RANDOM_PARAMETERS_NOT_MEANINGFUL.txt").write_text(RANDOM_PARAMS_WARNING + "\n")


def write_target(out_dir: Path, target_id: str, alignments: Sequence[Alignment],
                 predictions: Sequence[Prediction], timings: dict[str, float],
                 random_params: bool, plots: bool = True) -> Path:
    """Write one target's folder atomically and return its path."""
    final = out_dir / target_id
    staging = Path(tempfile.mkdtemp(prefix=f".{target_id}.", suffix=".tmp", dir=out_dir))
    try:
        _fill_target_folder(staging, target_id, alignments, predictions, timings, random_params, plots)
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
