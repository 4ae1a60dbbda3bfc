"""The loader for real AlphaFold parameters, tested on a synthetic npz of AlphaFold's exact layout."""

import jax
import numpy as np
import pytest
from alphafold.model import data as af_data
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


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, synthetic_params):
    """An AlphaFold data_dir whose params/params_model_1_ptm.npz foldflow wrote from the synthetic tree."""
    directory = tmp_path_factory.mktemp("data_dir")
    save_params(synthetic_params, directory / "params" / "params_model_1_ptm.npz")
    return directory


def test_synthetic_file_has_alphafold_layout(data_dir):
    with np.load(data_dir / "params" / "params_model_1_ptm.npz", allow_pickle=False) as npz:
        shapes = {key: npz[key].shape for key in npz.files}
    assert all("//" in key for key in shapes)
    for key, shape in ALPHAFOLD_KEYS.items():
        assert shapes[key] == shape, key
    assert not any(key.endswith("/projection//weights") for key in shapes)  # unfused, as released
    assert sum(int(np.prod(s)) for s in shapes.values()) == pytest.approx(93.2e6, rel=0.01)


def assert_tree_is(tree, expected_tree, synthetic_params) -> None:
    """``tree`` has the structure the model code builds and the synthetic numbers."""
    assert jax.tree_util.tree_structure(tree) == jax.tree_util.tree_structure(expected_tree)
    for got, want in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(synthetic_params)):
        np.testing.assert_array_equal(got, want)


def test_loader_reads_alphafold_layout_into_the_model_tree(data_dir, expected_tree, synthetic_params):
    loaded = load_params(params_path(data_dir, "model_1_ptm"))  # AlphaFold's data_dir/params layout
    assert_tree_is(loaded, expected_tree, synthetic_params)


def test_alphafold_reads_what_foldflow_writes(data_dir, expected_tree, synthetic_params):
    """AlphaFold's own reader (alphafold.model.data.get_model_haiku_params) gets back the tree that was written."""
    theirs = af_data.get_model_haiku_params("model_1_ptm", str(data_dir), to_jnp=False)  # numpy, not device arrays
    assert_tree_is(theirs, expected_tree, synthetic_params)


def test_missing_params_file_is_named(tmp_path):
    with pytest.raises(ParamsNotFoundError, match="model 'model_2_ptm': no params_model_2_ptm.npz"):
        params_path(tmp_path, "model_2_ptm")
