"""Refolding a designed sequence with a structure model (single-sequence mode) and comparing the result
with the design backbone (TM-align through ``tmtools``: TM-score normalised by the design's length and the
CA-RMSD of TM-align's superposition)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from alphafold.common import protein, residue_constants

from foldflow.design.backbones import Backbone
from foldflow.features import FeatureDict, build_features
from foldflow.models.base import Model


@dataclass
class Refolded:
    plddt: float  # mean pLDDT of the refolded structure
    tm_score: float  # TM-score to the design backbone, normalised by its length
    rmsd: float  # Å, CA atoms aligned by TM-align
    pdb: str  # the refolded structure, pLDDT in the B-factors


def single_sequence_features(sequence: str) -> FeatureDict:
    """AlphaFold's features of the sequence alone: an MSA of one row, no templates."""
    return build_features(sequence, "design", [])


def compare(backbone: Backbone, sequence: str, ca: np.ndarray) -> tuple[float, float]:
    """(TM-score normalised by the backbone's length, CA-RMSD) of ``ca`` against the backbone's CA atoms."""
    from tmtools import tm_align

    result = tm_align(np.asarray(backbone.ca, dtype=np.float64), np.asarray(ca, dtype=np.float64),
                      sequence, sequence)
    return float(result.tm_norm_chain1), float(result.rmsd)


def refold(backbone: Backbone, sequence: str, model: Model, seed: int, pad_to: int) -> Refolded:
    """One prediction of ``sequence`` alone, compared with ``backbone``."""
    prediction = model.predict(single_sequence_features(sequence), seed, pad_to)
    ca = prediction.atom_positions[:, residue_constants.atom_order["CA"]]
    tm_score, rmsd = compare(backbone, sequence, ca)
    structure = protein.Protein(
        atom_positions=prediction.atom_positions, aatype=prediction.aatype, atom_mask=prediction.atom_mask,
        residue_index=prediction.residue_index + 1, chain_index=np.zeros(len(sequence), dtype=np.int32),
        b_factors=np.repeat(prediction.plddt[:, None], residue_constants.atom_type_num, axis=1))
    return Refolded(prediction.mean_plddt, tm_score, rmsd, protein.to_pdb(structure))
