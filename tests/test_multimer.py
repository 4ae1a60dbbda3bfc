"""AlphaFold-Multimer behind foldflow's Model interface: settings, padding, predictions, parameters.

Predictions use random-init parameters and the smallest settings (no recycling, 8 MSA clusters,
16 extra rows), complexes of at most 64 residues (one bucket). The complexes are those of
test_complex_features (real MSAs, species-paired): a heterodimer of 30 + 24 residues and a homodimer
of 2 x 24.
"""

from __future__ import annotations

import numpy as np
import pytest
from alphafold.common import residue_constants
from alphafold.data import pipeline_multimer
from alphafold.model import config as af_config
from Bio.PDB import PDBParser
from Bio.SeqUtils import seq1

from foldflow.complex_features import build_complex_features
from foldflow.config import ModelConfig
from foldflow.models import UnknownModelError, load_model, model_class
from foldflow.models.alphafold2 import AlphaFold2, architecture_key, model_config
from foldflow.models.alphafold2_multimer import AlphaFold2Multimer, msa_depth_bucket, pad_complex_features
from foldflow.outputs import TargetOutputs, write_target
from conftest import small_model_config
from reference import deepmind_confidence
from test_complex_features import SEQUENCES, chain_input

MULTIMER_MODELS = [f"model_{i}_multimer_v3" for i in range(1, 6)]
HETERODIMER = ("abc_walker_a", "abc_signature")
# Padded and unpadded float32 predictions agree to these (measured: see the test's docstring).
PADDING_ATOL = {"positions": 1e-3, "plddt": 0.05, "pae": 0.05, "ptm": 2e-3}


def complex_features(names) -> dict:
    return build_complex_features([chain_input(name, None) for name in names])


def lengths(names) -> list[int]:
    return [len(SEQUENCES[name]) for name in names]


# ---------------------------------------------------------------------------------------------
# names, settings, padding (no model run)


def test_multimer_names_are_registered():
    for name in MULTIMER_MODELS:
        assert model_class(name) is AlphaFold2Multimer
    assert model_class("model_1_ptm") is AlphaFold2
    with pytest.raises(UnknownModelError, match="model_1_multimer_v3"):
        model_class("model_1_multimer_v2")


def test_monomer_class_refuses_multimer_models_and_back():
    with pytest.raises(ValueError, match="is a multimer model"):
        AlphaFold2("model_1_multimer_v3", small_model_config())
    with pytest.raises(ValueError, match="is not a multimer model"):
        AlphaFold2Multimer("model_1_ptm", small_model_config())


@pytest.mark.parametrize("name", ["model_1_multimer_v3", "model_4_multimer_v3"])
def test_settings_override_alphafolds_and_keep_its_own_without_a_value(tmp_path, name):
    theirs = af_config.model_config(name).model
    own = {"num_recycle": theirs.num_recycle, "max_msa_clusters": theirs.embeddings_and_evoformer.num_msa,
           "max_extra_msa": theirs.embeddings_and_evoformer.num_extra_msa}
    cls = model_class(name)
    assert cls.effective_settings(name, ModelConfig(params_dir=tmp_path)) == own  # preset "alphafold"
    assert cls.effective_settings(name, ModelConfig()) == {"num_recycle": 1, "max_msa_clusters": 32,
                                                           "max_extra_msa": 64}  # preset "fast"
    mixed = ModelConfig(params_dir=tmp_path, max_extra_msa=100)
    assert cls.effective_settings(name, mixed) == {**own, "max_extra_msa": 100}
    cfg = model_config(name, ModelConfig(num_recycle=0, max_msa_clusters=8, max_extra_msa=16, bfloat16=False))
    evoformer = cfg.model.embeddings_and_evoformer
    assert (cfg.model.num_recycle, evoformer.num_msa, evoformer.num_extra_msa) == (0, 8, 16)
    assert cfg.model.global_config.bfloat16 is False and cfg.model.global_config.multimer_mode


def test_padding_zero_pads_every_residue_axis():
    """Every axis of the residues' size (54) grows to 64 with zeros; everything else is unchanged."""
    features = complex_features(HETERODIMER)
    num_res = sum(lengths(HETERODIMER))
    padded = pad_complex_features(features, 64)
    assert sorted(padded) == sorted(features)
    for name, value in features.items():
        value = np.asarray(value)
        axes = [axis for axis in range(value.ndim) if value.shape[axis] == num_res]
        if not axes:
            np.testing.assert_array_equal(padded[name], value, err_msg=name)
            continue
        (axis,) = axes
        assert padded[name].shape[axis] == 64, name
        np.testing.assert_array_equal(np.take(padded[name], range(num_res), axis=axis), value, err_msg=name)
        assert not np.take(padded[name], range(num_res, 64), axis=axis).any(), f"{name}: padding is not zero"
    assert {"seq_mask", "asym_id", "sym_id", "entity_id", "msa", "msa_mask", "bert_mask",
            "template_all_atom_positions"} <= {name for name, value in features.items() if num_res in np.shape(value)}


def test_padding_puts_msa_rows_in_depth_buckets():
    assert [msa_depth_bucket(n) for n in (1, 512, 513, 1024, 1025, 5000)] == [512, 512, 1024, 1024, 2048, 8192]
    deeper = pipeline_multimer.pad_msa(complex_features(HETERODIMER), 600)
    padded = pad_complex_features(deeper, 64)
    assert padded["msa"].shape == (1024, 64) and padded["cluster_bias_mask"].shape == (1024,)
    assert not padded["msa_mask"][600:].any()
    with pytest.raises(ValueError, match="no known residue axis"):
        pad_complex_features({**deeper, "new_feature": np.zeros(3)}, 64)
    with pytest.raises(ValueError, match="cannot pad"):
        pad_complex_features(deeper, 10)


# ---------------------------------------------------------------------------------------------
# predictions (random parameters)


@pytest.fixture(scope="module")
def heterodimer_model() -> AlphaFold2Multimer:
    return load_model("model_1_multimer_v3", small_model_config(bfloat16=False))


@pytest.fixture(scope="module")
def heterodimer(heterodimer_model):
    """Float32 predictions: padded to 64 residues, unpadded (54), and padded with MSA rows 512 -> 1024."""
    model = heterodimer_model
    features = complex_features(HETERODIMER)
    return {"padded": model.predict(features, 0, 64),
            "unpadded": model.predict(features, 0, sum(lengths(HETERODIMER))),
            "1024 rows": model.predict(pipeline_multimer.pad_msa(features, 600), 0, 64)}


def assert_complex_prediction(prediction, names) -> None:
    sizes = lengths(names)
    num_res = sum(sizes)
    assert prediction.atom_positions.shape == (num_res, 37, 3) and prediction.pae.shape == (num_res, num_res)
    assert prediction.plddt.shape == prediction.aatype.shape == prediction.residue_index.shape == (num_res,)
    np.testing.assert_array_equal(prediction.chain_index, np.repeat(np.arange(len(names)), sizes))
    sequence = "".join(SEQUENCES[name] for name in names)
    np.testing.assert_array_equal(prediction.aatype, [residue_constants.restype_order[a] for a in sequence])
    np.testing.assert_array_equal(prediction.residue_index, np.concatenate([np.arange(n) for n in sizes]))
    assert (prediction.msa_clusters, prediction.extra_msa_rows, prediction.recycles) == (8, 16, 0)
    assert np.ptp(prediction.atom_positions[:, 1], axis=0).min() > 1.0, "atoms do not collapse (zero_init=False)"


@pytest.mark.slow
def test_heterodimer_prediction(heterodimer):
    assert_complex_prediction(heterodimer["padded"], HETERODIMER)


@pytest.mark.slow
def test_confidences_are_deepminds_on_the_real_residues(heterodimer_model, heterodimer):
    """pTM, ipTM, ranking confidence and PAE of the padded prediction (computed inside the fork's model over 64
    residues, padding masked) equal DeepMind's AlphaFold 2.3.2 confidence functions (tests/reference/
    deepmind_confidence.py, called as its model.get_confidence_metrics calls them) on the 54 real residues'
    PAE-head probabilities. Measured: pTM and ipTM within 2e-5, PAE within 0.009 Å (outputs are float16)."""
    prediction, num_res = heterodimer["padded"], sum(lengths(HETERODIMER))
    model = heterodimer_model
    # AlphaFold's raw output for the same inputs (the same compiled program): what the prediction was read from.
    result, _ = model._runner.predict(model.model_inputs(complex_features(HETERODIMER), 0, 64), random_seed=0)
    np.testing.assert_array_equal(result["structure_module"]["final_atom_positions"][:num_res],
                                  prediction.atom_positions)
    probabilities = np.asarray(result["aligned_confidence_probs"][:num_res, :num_res], np.float64)
    with np.errstate(divide="ignore"):
        logits = np.log(probabilities)  # softmax(log p) = p
    head = model.config.model.heads.predicted_aligned_error  # DeepMind's PredictedAlignedErrorHead breaks
    breaks = np.linspace(0.0, head.max_error_bin, head.num_bins - 1)
    asym_id = np.repeat(np.arange(1, len(HETERODIMER) + 1), lengths(HETERODIMER))

    ptm = deepmind_confidence.predicted_tm_score(logits, breaks, asym_id=None)
    iptm = deepmind_confidence.predicted_tm_score(logits, breaks, asym_id=asym_id, interface=True)
    pae = deepmind_confidence.compute_predicted_aligned_error(logits, breaks)
    assert prediction.ptm == pytest.approx(ptm, abs=5e-4)
    assert prediction.iptm == pytest.approx(iptm, abs=5e-4)
    assert prediction.ranking_confidence == pytest.approx(0.8 * iptm + 0.2 * ptm, abs=5e-4)
    np.testing.assert_allclose(prediction.pae, pae["predicted_aligned_error"], atol=0.03)
    assert prediction.max_pae == pae["max_predicted_aligned_error"]


@pytest.mark.slow
def test_padding_does_not_change_the_float32_prediction(heterodimer):
    """pad_to=64 against pad_to=54 (no padding), float32. Measured on a 2-core CPU: 4.6e-4 A at most in
    atom positions, identical pLDDT, pTM and ipTM, 0.008 A in PAE (one float16 step; outputs are float16)."""
    padded, unpadded = heterodimer["padded"], heterodimer["unpadded"]
    mask = unpadded.atom_mask > 0
    np.testing.assert_array_equal(padded.atom_mask, unpadded.atom_mask)
    assert np.abs(padded.atom_positions - unpadded.atom_positions)[mask].max() < PADDING_ATOL["positions"]
    np.testing.assert_allclose(padded.plddt, unpadded.plddt, atol=PADDING_ATOL["plddt"])
    np.testing.assert_allclose(padded.pae, unpadded.pae, atol=PADDING_ATOL["pae"])
    assert padded.ptm == pytest.approx(unpadded.ptm, abs=PADDING_ATOL["ptm"])
    assert padded.iptm == pytest.approx(unpadded.iptm, abs=PADDING_ATOL["ptm"])


@pytest.mark.slow
def test_msa_depth_padding_does_not_change_the_prediction(heterodimer):
    """Zero MSA rows (512 -> 1024) change nothing, bit for bit: the model samples them last and its
    random numbers are padding-consistent (alphafold.model.utils.padding_consistent_rng)."""
    padded, deeper = heterodimer["padded"], heterodimer["1024 rows"]
    for field in ("atom_positions", "plddt", "pae", "ptm", "iptm", "ranking_confidence"):
        np.testing.assert_array_equal(getattr(deeper, field), getattr(padded, field), err_msg=field)


@pytest.mark.slow
def test_pdb_has_one_chain_per_chain_index(heterodimer, tmp_path):
    """foldflow's writer puts each chain in a chain of its own (A, B), residues numbered from 1 per chain, CA
    atoms and pLDDT where the prediction has them; read back with Biopython."""
    prediction = heterodimer["padded"]
    outputs = TargetOutputs(msas={}, template_hits={}, predictions={"model_1_multimer_v3_pred_0": prediction},
                            relaxed={}, relax_requested=False, timings={}, multimer=True)
    folder = write_target(tmp_path, "heterodimer", outputs, random_params=True, plots=False)
    structure = PDBParser(QUIET=True).get_structure("heterodimer", folder / "ranked_0.pdb")
    chains = list(structure[0])
    assert [chain.id for chain in chains] == ["A", "B"]
    starts = np.cumsum([0] + lengths(HETERODIMER))
    ca = residue_constants.atom_order["CA"]
    for chain, name, start in zip(chains, HETERODIMER, starts):
        residues = list(chain)
        assert seq1("".join(residue.get_resname() for residue in residues)) == SEQUENCES[name]
        assert [residue.id[1] for residue in residues] == list(range(1, len(SEQUENCES[name]) + 1))
        rows = slice(start, start + len(residues))
        np.testing.assert_allclose([residue["CA"].coord for residue in residues],
                                   prediction.atom_positions[rows, ca], atol=1e-3)
        np.testing.assert_allclose([residue["CA"].bfactor for residue in residues], prediction.plddt[rows],
                                   atol=0.01)


# ---------------------------------------------------------------------------------------------
# parameters


def test_models_of_one_architecture_share_random_parameters():
    """Random parameters are created once per architecture (same seed, same tree: the same numbers)."""
    keys = {name: architecture_key(name) for name in
            [f"model_{i}_ptm" for i in range(1, 6)] + ["model_1"] + MULTIMER_MODELS}
    assert keys["model_1_ptm"] == keys["model_2_ptm"] != keys["model_3_ptm"]
    assert keys["model_3_ptm"] == keys["model_4_ptm"] == keys["model_5_ptm"]
    assert keys["model_1"] != keys["model_1_ptm"], "the pTM head is part of the tree"
    assert len({keys[name] for name in MULTIMER_MODELS}) == 1
    assert keys[MULTIMER_MODELS[0]] not in {keys["model_1_ptm"], keys["model_3_ptm"]}
