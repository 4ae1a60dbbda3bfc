"""The AlphaFold 2 wrapper on its own: padding to a bucket, and parameters from a directory."""

import numpy as np
import pytest

from foldflow.features import build_features
from foldflow.models.alphafold2 import AlphaFold2, load_model_params
from conftest import small_model_config
from test_msa import ABC_QUERY

SEQUENCE = ABC_QUERY[:40]


@pytest.fixture(scope="module")
def features():
    return build_features(SEQUENCE, "abc", [])


def test_bucket_for():
    assert small_model_config(bucket_lengths=[64, 32, 96]).bucket_for(40) == 64
    assert small_model_config(bucket_lengths=[64, 96]).bucket_for(64) == 64
    assert small_model_config(bucket_lengths=[64, 96]).bucket_for(200) == 200
    assert small_model_config(bucket_lengths=[]).bucket_for(50) == 50


@pytest.mark.slow
def test_padding_does_not_change_the_float32_prediction(features):
    unpadded = AlphaFold2("model_1_ptm", small_model_config(bfloat16=False)).predict(features, 0, 40)
    padded = AlphaFold2("model_1_ptm", small_model_config(bfloat16=False)).predict(features, 0, 64)
    assert padded.atom_positions.shape == (40, 37, 3) and padded.pae.shape == (40, 40)
    mask = unpadded.atom_mask > 0
    # float32 noise: padding changes the order of reductions (measured up to 1.4e-3 Å); a real change moves
    # atoms by tenths of an Å and more
    assert np.abs(padded.atom_positions - unpadded.atom_positions)[mask].max() < 5e-3
    np.testing.assert_allclose(padded.plddt, unpadded.plddt, atol=0.05)
    assert padded.ptm == pytest.approx(unpadded.ptm, abs=1e-3)


@pytest.mark.slow
def test_random_parameters_are_not_degenerate_and_a_params_directory_gives_the_same_model(features):
    settings = small_model_config()
    _, cached_path, _, _ = load_model_params("model_1_ptm", settings)
    from_random = AlphaFold2("model_1_ptm", settings).predict(features, 0, 64)
    ca = from_random.atom_positions[:, 1]
    assert np.ptp(ca, axis=0).min() > 1.0, "zero_init=False: atoms do not collapse to the origin"
    assert np.ptp(from_random.plddt) > 0.1, "pLDDT is not the flat 50 of zero-initialised heads"
    from_dir = AlphaFold2("model_1_ptm", small_model_config(params_dir=cached_path.parent)).predict(features, 0, 64)
    assert from_dir.mean_plddt == from_random.mean_plddt
    np.testing.assert_array_equal(from_dir.atom_positions, from_random.atom_positions)


@pytest.mark.slow
def test_random_parameters_are_created_once_per_architecture(tmp_path):
    """model_3_ptm and model_4_ptm have one architecture: the second reads the first's parameters."""
    settings = small_model_config(cache_dir=tmp_path)
    _, first, _, created_first = load_model_params("model_3_ptm", settings)
    _, second, _, created_second = load_model_params("model_4_ptm", settings)
    assert created_first and not created_second
    assert first.name == "params_model_3_ptm.npz" and second.name == "params_model_4_ptm.npz"
    assert first.stat().st_ino == second.stat().st_ino, "one file, two names"
