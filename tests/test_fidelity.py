"""AlphaFold's own defaults with real parameters, its seeds, and its feature processing.

The references are DeepMind's: ``alphafold.model.config.model_config`` for the
settings, ``RunModel.process_features`` for the processed features, and
run_alphafold's seed formula (``model_random_seed = model_index +
random_seed * num_models`` in run_alphafold.py, AlphaFold 2.3).
"""

import numpy as np
import pytest
from alphafold.model import config as af_config
from alphafold.model import model as af_model

from foldflow.api import apply_overrides, describe_setup
from foldflow.config import ModelConfig, RunConfig
from foldflow.relax import RelaxSettings
from foldflow.features import build_features
from foldflow.models.alphafold2 import model_config, process_features
from foldflow.models.predictions import runners_for, seed_for
from foldflow.msa.jackhmmer import ResidentDatabases
from foldflow.config import MsaConfig
from test_msa import ABC_QUERY

SETTINGS = {"num_recycle": lambda c: c.model.num_recycle, "data_recycle": lambda c: c.data.common.num_recycle,
            "max_msa_clusters": lambda c: c.data.eval.max_msa_clusters,
            "max_extra_msa": lambda c: c.data.common.max_extra_msa, "num_ensemble": lambda c: c.data.eval.num_ensemble}


@pytest.mark.parametrize("name", ["model_1_ptm", "model_2_ptm", "model_5"])
def test_real_parameters_run_alphafolds_own_settings(tmp_path, name):
    theirs = af_config.model_config(name)
    ours = model_config(name, ModelConfig(params_dir=tmp_path))
    assert {k: get(ours) for k, get in SETTINGS.items()} == {k: get(theirs) for k, get in SETTINGS.items()}
    assert ours.model.num_recycle == 3 and ours.data.eval.max_msa_clusters == 512


def test_random_parameters_default_to_the_fast_preset_and_explicit_values_win(tmp_path):
    fast = model_config("model_1_ptm", ModelConfig())
    assert (fast.model.num_recycle, fast.data.eval.max_msa_clusters, fast.data.common.max_extra_msa) == (1, 32, 64)
    assert ModelConfig(params_dir=tmp_path).effective_preset == "alphafold"
    assert ModelConfig(params_dir=tmp_path, preset="fast").effective_preset == "fast"
    mixed = model_config("model_1_ptm", ModelConfig(params_dir=tmp_path, num_recycle=1))
    assert (mixed.model.num_recycle, mixed.data.eval.max_msa_clusters) == (1, 512)


# run_alphafold.py (AlphaFold 2.3): RELAX_MAX_ITERATIONS, RELAX_ENERGY_TOLERANCE, RELAX_STIFFNESS,
# RELAX_EXCLUDE_RESIDUES (empty), RELAX_MAX_OUTER_ITERATIONS.
RUN_ALPHAFOLD_RELAX = {"max_iterations": 0, "tolerance": 2.39, "stiffness": 10.0, "max_outer_iterations": 3}


def relax_arguments(config: RunConfig) -> dict:
    """The AmberRelaxation arguments a run of ``config`` relaxes with (as foldflow.stages.relax_target builds them)."""
    relax = config.effective_relax()
    return RelaxSettings(use_gpu=relax.use_gpu, **relax.minimisation()).key_settings()


def test_relaxation_is_run_alphafolds_with_real_parameters_and_bounded_with_the_fast_preset(tmp_path):
    assert relax_arguments(RunConfig(model={"params_dir": tmp_path})) == RUN_ALPHAFOLD_RELAX
    fast = relax_arguments(RunConfig())
    assert fast == {**RUN_ALPHAFOLD_RELAX, "max_iterations": 100, "max_outer_iterations": 1}
    # real parameters given on top of a random-parameter config (the API's params=...) relax as AlphaFold does
    assert relax_arguments(apply_overrides(RunConfig(), {"params": str(tmp_path)})) == RUN_ALPHAFOLD_RELAX
    explicit = RunConfig(relax={"max_iterations": 5})
    assert relax_arguments(explicit) == {**fast, "max_iterations": 5}
    assert "relaxation cut short (100 minimisation steps)" in describe_setup(RunConfig())[0]
    assert "relaxation" not in describe_setup(RunConfig(relax={"models_to_relax": "none"}))[0]


def test_predictions_and_seeds_follow_run_alphafold():
    """run_alphafold 2.3 names predictions <model>_pred_<i> and gives prediction i of n the seed
    i + random_seed * n (run_alphafold.py: model_random_seed = model_index + random_seed * num_models)."""
    settings = ModelConfig(names=["monomer_ptm", "multimer"], random_seed=12345, preset="alphafold")
    monomer = runners_for(settings, False)
    assert monomer == [f"model_{i}_ptm_pred_0" for i in range(1, 6)]
    assert [seed_for(settings, r, False) for r in monomer] == [i + 12345 * 5 for i in range(5)]
    multimer = runners_for(settings, True)  # --num_multimer_predictions_per_model=5 by default
    assert multimer[:6] == [f"model_1_multimer_v3_pred_{i}" for i in range(5)] + ["model_2_multimer_v3_pred_0"]
    assert [seed_for(settings, r, True) for r in multimer] == [i + 12345 * 25 for i in range(25)]
    two = ModelConfig(names=["monomer"], predictions_per_model=2, preset="alphafold")
    assert runners_for(two, False)[:3] == ["model_1_pred_0", "model_1_pred_1", "model_2_pred_0"]
    assert ModelConfig(preset="alphafold").model_names == (
        [f"model_{i}" for i in range(1, 6)] + [f"model_{i}_multimer_v3" for i in range(1, 6)])


def _feature_cases():
    uniref = ResidentDatabases(MsaConfig()).search("abc", ABC_QUERY)
    return [("query only, 20 residues", ABC_QUERY[:20], []),
            ("searched MSAs, 79 residues", ABC_QUERY, uniref)]


@pytest.mark.parametrize("depths", [(8, 16), (512, 5120)])
@pytest.mark.parametrize("case", range(2))
def test_padded_feature_processing_cropped_back_equals_runmodels(case, depths):
    """foldflow pads inside AlphaFold's own input pipeline (make_fixed_size with the bucket length);
    cropped back to the real residues, every feature equals RunModel.process_features'."""
    _, sequence, alignments = _feature_cases()[case]
    raw = build_features(sequence, "query", alignments)
    settings = ModelConfig(max_msa_clusters=depths[0], max_extra_msa=depths[1], num_recycle=1)
    cfg = model_config("model_1_ptm", settings)
    runner = af_model.RunModel(cfg)
    theirs = runner.process_features(dict(raw), random_seed=7)
    again = runner.process_features(dict(raw), random_seed=7)
    # AlphaFold's own pipeline draws this training-only crop seed from a process-wide counter: two of its
    # own calls with the same seed differ, and inference never reads it. Every other feature is compared.
    unstable = {name for name in theirs if not np.array_equal(theirs[name], again[name])}
    assert unstable <= {"random_crop_to_size_seed"}
    num_res = len(sequence)
    ours = process_features(cfg, raw, 7, pad_to=num_res + 24)
    assert set(ours) == set(theirs)
    for name, expected in ((n, v) for n, v in theirs.items() if n not in unstable):
        got = ours[name]
        crop = tuple(slice(0, min(a, b)) for a, b in zip(got.shape, expected.shape))
        residue_axes = [axis for axis, size in enumerate(expected.shape) if size == num_res and got.shape[axis] != size]
        assert got.shape[:len(expected.shape)] == tuple(
            num_res + 24 if axis in residue_axes else size for axis, size in enumerate(expected.shape)), name
        if np.issubdtype(expected.dtype, np.integer) or expected.dtype == bool:
            np.testing.assert_array_equal(got[crop], expected, err_msg=name)
        else:
            np.testing.assert_allclose(got[crop], expected, rtol=1e-6, atol=1e-6, err_msg=name)
        padding = tuple(slice(num_res, None) if axis in residue_axes else slice(None)
                        for axis in range(expected.ndim))
        if name == "seq_mask":
            assert not got[padding].any(), "padded residues are masked out"
