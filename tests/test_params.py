"""The loader for real AlphaFold parameters, tested on a synthetic npz of AlphaFold's exact layout."""

import jax
import numpy as np
import pytest
from alphafold.model import model as af_model

from foldflow.features import build_features
from foldflow.models.alphafold2 import model_config, process_features
from foldflow.models.params import ParamsNotFoundError, load_params, params_path, save_params
from conftest import small_model_config

EVOFORMER = "alphafold/alphafold_iteration/evoformer"
# Keys and shapes of AlphaFold's released params_model_1_ptm.npz (48 Evoformer blocks, stacked).
ALPHAFOLD_KEYS = {
    f"{EVOFORMER}/preprocess_1d//weights": (22, 256),
    f"{EVOFORMER}/evoformer_iteration/triangle_multiplication_outgoing/left_projection//weights": (48, 128, 128),
    f"{EVOFORMER}/evoformer_iteration/triangle_multiplication_outgoing/right_gate//bias": (48, 128),
    f"{EVOFORMER}/evoformer_iteration/triangle_multiplication_incoming/center_layer_norm//scale": (48, 128),
    f"{EVOFORMER}/evoformer_iteration/triangle_multiplication_incoming/layer_norm_input//offset": (48, 128),
    f"{EVOFORMER}/extra_msa_stack/triangle_multiplication_outgoing/left_projection//weights": (4, 128, 128),
    "alphafold/alphafold_iteration/structure_module/fold_iteration/affine_update//weights": (384, 6),
    "alphafold/alphafold_iteration/predicted_lddt_head/logits//weights": (128, 50),
    "alphafold/alphafold_iteration/predicted_aligned_error_head/logits//weights": (128, 64),
}


@pytest.fixture(scope="module")
def expected_tree():
    """Shapes of model_1_ptm's parameters as this model code builds them (traced, not computed)."""
    cfg = model_config("model_1_ptm", small_model_config())
    features = process_features(cfg, build_features("ACDEFGHIKLMNPQRSTVWY", "x", []), 0, pad_to=20)
    return jax.eval_shape(af_model.RunModel(cfg).init, jax.random.PRNGKey(0), features)


@pytest.fixture(scope="module")
def synthetic_params(expected_tree):
    rng = np.random.default_rng(7)
    return jax.tree_util.tree_map(lambda s: rng.standard_normal(s.shape).astype(np.float32), expected_tree)


def test_synthetic_file_has_alphafold_layout(tmp_path, synthetic_params):
    path = tmp_path / "params" / "params_model_1_ptm.npz"
    save_params(synthetic_params, path)
    with np.load(path, allow_pickle=False) as npz:
        shapes = {key: npz[key].shape for key in npz.files}
    assert all("//" in key for key in shapes)
    for key, shape in ALPHAFOLD_KEYS.items():
        assert shapes[key] == shape, key
    assert not any(key.endswith("/projection//weights") for key in shapes)  # unfused, as released
    assert sum(int(np.prod(s)) for s in shapes.values()) == pytest.approx(93.2e6, rel=0.01)


def test_loader_reads_alphafold_layout_into_the_model_tree(tmp_path, expected_tree, synthetic_params):
    save_params(synthetic_params, tmp_path / "params" / "params_model_1_ptm.npz")
    loaded = load_params(params_path(tmp_path, "model_1_ptm"))  # AlphaFold's data_dir/params layout
    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(expected_tree)
    for got, want in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(synthetic_params)):
        np.testing.assert_array_equal(got, want)


def test_missing_params_file_is_named(tmp_path):
    with pytest.raises(ParamsNotFoundError, match="model 'model_2_ptm': no params_model_2_ptm.npz"):
        params_path(tmp_path, "model_2_ptm")
