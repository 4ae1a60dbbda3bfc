"""Outputs of several models: AlphaFold's ranking (by ranking confidence) decides ranked_<i> and the order."""

import json

import gemmi
import numpy as np
from alphafold.common import residue_constants

from foldflow.models.base import Prediction
from foldflow.outputs import TargetOutputs, write_target


def prediction(name: str, plddt: float, length: int = 12) -> Prediction:
    positions = np.zeros((length, residue_constants.atom_type_num, 3), dtype=np.float32)
    positions[:, 1, 0] = 3.8 * np.arange(length)
    mask = np.zeros((length, residue_constants.atom_type_num), dtype=np.float32)
    mask[:, 1] = 1.0
    return Prediction(name, np.zeros(length, dtype=np.int32), np.arange(length), positions, mask,
                      np.full(length, plddt, dtype=np.float32), ranking_confidence=plddt)


def outputs(predictions, multimer=False) -> TargetOutputs:
    return TargetOutputs(msas={}, template_hits={}, predictions=predictions, relaxed={}, relax_requested=False,
                         timings={}, multimer=multimer)


def test_ranked_files_follow_the_ranking_confidence_of_each_model(tmp_path):
    scores = {"model_1_ptm_pred_0": 61.0, "model_2_ptm_pred_0": 88.5, "model_3_ptm_pred_0": 42.0}
    folder = write_target(tmp_path, "t", outputs({n: prediction(n, s) for n, s in scores.items()}),
                          random_params=False, plots=False)
    ranking = json.loads((folder / "ranking_debug.json").read_text())
    assert ranking["order"] == ["model_2_ptm_pred_0", "model_1_ptm_pred_0", "model_3_ptm_pred_0"]
    assert ranking == {"plddts": scores, "order": ranking["order"]}
    for rank, name in enumerate(ranking["order"]):
        b_factors = {a.b_iso for r in gemmi.read_structure(str(folder / f"ranked_{rank}.pdb"))[0][0] for a in r}
        assert b_factors == {scores[name]}, (rank, name)
        assert (folder / f"ranked_{rank}.pdb").read_bytes() == (folder / f"unrelaxed_{name}.pdb").read_bytes()
