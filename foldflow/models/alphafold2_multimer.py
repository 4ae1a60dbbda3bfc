"""AlphaFold-Multimer (``model_[1-5]_multimer_v3``): :class:`AlphaFold2` for complexes.

The multimer model takes the raw features of :func:`foldflow.complex_features.build_complex_features`
(it samples and masks the MSA itself, with padding-consistent random numbers). foldflow pads them:
every per-residue axis to the bucket (zeros, so ``seq_mask`` and ``asym_id``/``sym_id``/``entity_id``
are 0 on padding) and the MSA rows to a power of two (AlphaFold's own ``pad_msa``: zero rows, which
the model samples last), so XLA compiles once per bucket and depth bucket, not once per complex.
Outputs are sliced back to the real residues; chains are numbered from 0 (AlphaFold's ``asym_id``
minus 1), in the features' order: chains grouped by sequence (entity), as AlphaFold merges them.
"""

from __future__ import annotations

import numpy as np
from alphafold.data import pipeline_multimer

from foldflow.complex_features import MIN_MSA_ROWS, ChainInput, build_complex_features
from foldflow.models.alphafold2 import AlphaFold2

# The residue axis of every feature build_complex_features makes that has one (the others are scalars
# or, cluster_bias_mask, per MSA row).
RESIDUE_AXIS = {
    **dict.fromkeys(("aatype", "residue_index", "seq_mask", "asym_id", "sym_id", "entity_id", "entity_mask",
                     "deletion_mean", "all_atom_mask", "all_atom_positions"), 0),
    **dict.fromkeys(("msa", "msa_mask", "deletion_matrix", "bert_mask", "template_aatype",
                     "template_all_atom_mask", "template_all_atom_positions"), 1),
}
NO_RESIDUE_AXIS = frozenset({"seq_length", "num_alignments", "num_templates", "assembly_num_chains",
                             "cluster_bias_mask"})
# The init complex: two distinct chains, so the pairing path is taken too.
_INIT_CHAINS = ("ACDEFGHIKL", "MNPQRSTVWY")


def msa_depth_bucket(rows: int) -> int:
    """MSA rows the model is compiled for: pad_msa's 512, past it the next power of two."""
    return max(MIN_MSA_ROWS, 1 << (rows - 1).bit_length())


def pad_complex_features(features: dict[str, np.ndarray], pad_to: int) -> dict[str, np.ndarray]:
    """Zero-pad every per-residue axis to ``pad_to`` and the MSA rows to :func:`msa_depth_bucket`."""
    num_res = len(features["aatype"])
    if pad_to < num_res:
        raise ValueError(f"cannot pad {num_res} residues to {pad_to}")
    unknown = set(features) - set(RESIDUE_AXIS) - NO_RESIDUE_AXIS
    if unknown:
        raise ValueError(f"complex features with no known residue axis: {sorted(unknown)}")
    padded = {}
    for name, value in features.items():
        value = np.asarray(value)
        if name in RESIDUE_AXIS:
            widths = [(0, 0)] * value.ndim
            widths[RESIDUE_AXIS[name]] = (0, pad_to - num_res)
            value = np.pad(value, widths)
        padded[name] = value
    return pipeline_multimer.pad_msa(padded, msa_depth_bucket(len(padded["msa"])))


def init_features(cfg: object = None) -> dict[str, np.ndarray]:
    """Inputs for random initialisation (the same for every multimer config): a two-chain complex, with the zero "previous cycle" arrays that
    the model's init needs (without them modules_multimer raises NameError: num_residues)."""
    features = build_complex_features([ChainInput(sequence, f"init_{i}") for i, sequence in enumerate(_INIT_CHAINS)])
    num_res = len(features["aatype"])
    prev = {"prev_msa_first_row": np.zeros((num_res, 256), np.float32),
            "prev_pair": np.zeros((num_res, num_res, 128), np.float32),
            "prev_pos": np.zeros((num_res, 37, 3), np.float32)}
    return {**features, "prev": prev}


class AlphaFold2Multimer(AlphaFold2):
    """A resident AlphaFold-Multimer model: complex features in, a :class:`Prediction` with chains out."""

    family = "multimer"
    init_features = staticmethod(init_features)

    def model_inputs(self, features: dict[str, np.ndarray], seed: int, pad_to: int) -> dict[str, np.ndarray]:
        return pad_complex_features(features, pad_to)

    def _input_fields(self, processed, num_res: int) -> dict:
        evoformer = self.config.model.embeddings_and_evoformer
        rows = len(processed["msa"])
        clusters = min(rows, evoformer.num_msa)
        return {"aatype": np.asarray(processed["aatype"][:num_res]),
                "residue_index": np.asarray(processed["residue_index"][:num_res]),
                "chain_index": np.asarray(processed["asym_id"][:num_res]).astype(np.int32) - 1,
                "msa_clusters": clusters,
                "extra_msa_rows": min(rows - clusters, evoformer.num_extra_msa)}

    def _confidence_fields(self, result) -> dict:
        """AlphaFold 2.3's multimer ranking, 0.8 ipTM + 0.2 pTM: the fork's is the same on a 0-100 scale."""
        return {"ranking_confidence": float(result["ranking_confidence"]) / 100,
                "ptm": float(result["ptm"]), "iptm": float(result["iptm"])}
