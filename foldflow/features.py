"""AlphaFold monomer (and per-chain) input features from a target's alignments (numpy only).

Built with ``alphafold.data.pipeline``'s own functions in the order its
DataPipeline uses (uniref90, bfd, mgnify), so the result equals what
AlphaFold's DataPipeline produces from the same MSA files.

The ``alphafold-colabfold`` fork of ``make_msa_features`` no longer removes
rows repeated across databases; DeepMind's AlphaFold 2.3 does. With
``deduplicate=True`` (the default) foldflow removes them first, as DeepMind's
pipeline does; with ``deduplicate=False`` the features are the fork's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from alphafold.common import residue_constants
from alphafold.data import parsers, pipeline

from foldflow.alignment import FEATURE_ORDER, Alignment

FeatureDict = dict[str, np.ndarray]


def deduplicate_msas(msas: Sequence[parsers.Msa]) -> list[parsers.Msa]:
    """Drop rows whose aligned sequence appeared earlier (in this or an earlier MSA)."""
    seen: set[str] = set()
    kept = []
    for msa in msas:
        rows = [i for i, seq in enumerate(msa.sequences) if not (seq in seen or seen.add(seq))]
        kept.append(parsers.Msa(
            sequences=[msa.sequences[i] for i in rows],
            deletion_matrix=[msa.deletion_matrix[i] for i in rows],
            descriptions=[msa.descriptions[i] for i in rows],
        ))
    return [msa for msa in kept if msa.sequences]


def feature_msas(sequence: str, alignments: Sequence[Alignment]) -> list[parsers.Msa]:
    """Parsed MSAs in AlphaFold's feature order; the query alone when there are none."""
    usable = sorted((a for a in alignments if a.database in FEATURE_ORDER),
                    key=lambda a: FEATURE_ORDER.index(a.database))
    msas = [a.parse() for a in usable]
    if not msas:
        msas = [parsers.Msa(sequences=[sequence], deletion_matrix=[[0] * len(sequence)],
                            descriptions=["query"])]
    return msas


def empty_template_features(num_res: int) -> FeatureDict:
    """One all-gap template with a zero mask: the model sees no template information."""
    atoms = residue_constants.atom_type_num
    aatype = residue_constants.sequence_to_onehot("-" * num_res, residue_constants.HHBLITS_AA_TO_ID)
    return {
        "template_aatype": np.asarray(aatype, dtype=np.float32)[None],
        "template_all_atom_masks": np.zeros((1, num_res, atoms), dtype=np.float32),
        "template_all_atom_positions": np.zeros((1, num_res, atoms, 3), dtype=np.float32),
        "template_domain_names": np.array([b"none"], dtype=np.object_),
        "template_sequence": np.array([b"none"], dtype=np.object_),
        "template_sum_probs": np.zeros((1, 1), dtype=np.float32),
    }


def build_features(sequence: str, description: str, alignments: Sequence[Alignment],
                   deduplicate: bool = True, templates: FeatureDict | None = None) -> FeatureDict:
    """Sequence, MSA and template features for one chain (no templates: one empty template)."""
    msas = feature_msas(sequence, alignments)
    if deduplicate:
        msas = deduplicate_msas(msas)
    num_res = len(sequence)
    return {
        **pipeline.make_sequence_features(sequence=sequence, description=description, num_res=num_res),
        **pipeline.make_msa_features(msas),
        **(templates if templates is not None else empty_template_features(num_res)),
    }


def msa_depth(features: FeatureDict) -> int:
    return int(features["msa"].shape[0])
