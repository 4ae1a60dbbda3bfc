"""The content-addressed store: atomic entries, checksums, no pickles, any pyarrow filesystem."""

import numpy as np
import pytest

from foldflow.config import ModelConfig, MsaConfig
from foldflow.models.base import Prediction
from foldflow.alignment import Alignment
from foldflow.msa.jackhmmer import PyhmmerEngine
from foldflow.steps import StepCache, prediction_key, search_key, features_key
from foldflow.store import Store, content_key


@pytest.fixture(params=["local", "mock"])
def store(request, tmp_path):
    return Store(tmp_path / "store") if request.param == "local" else Store("mock://store")


def test_arrays_round_trip_without_pickle(store):
    arrays = {"msa": np.arange(6, dtype=np.int32).reshape(2, 3), "sequence": np.array([b"MKV"], dtype=object),
              "species": np.array([b"", b"HUMAN"], dtype=object)}
    store.put_arrays("features", "k1", arrays)
    loaded = store.get_arrays("features", "k1")
    np.testing.assert_array_equal(loaded["msa"], arrays["msa"])
    assert loaded["sequence"].dtype == object and loaded["species"].tolist() == [b"", b"HUMAN"]


def test_absent_entry_is_none(store):
    assert store.get_json("msa", "nope") is None and store.count("msa") == 0


@pytest.mark.parametrize("damage", ["flip", "truncate", "no-checksum"])
def test_corrupt_or_half_written_entries_are_not_loaded(tmp_path, damage):
    store = Store(tmp_path)
    store.put_arrays("prediction", "abcd", {"x": np.ones(1000)})
    path = tmp_path / Store.step_path("prediction", "abcd", "npz")
    data = path.read_bytes()
    if damage == "flip":
        path.write_bytes(data[:500] + bytes([data[500] ^ 1]) + data[501:])
    elif damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        (path.parent / (path.name + ".sha256")).unlink()
    assert store.get_arrays("prediction", "abcd") is None
    if damage != "no-checksum":
        assert not path.exists(), "a corrupt entry is removed so it is recomputed"


def test_step_cache_computes_once_and_recomputes_corrupt_entries(tmp_path):
    store = Store(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return Alignment("uniref90", "sto", "# STOCKHOLM 1.0\nq MKV\n//\n")

    cache = StepCache(store)
    first = cache.alignment("key", compute)
    assert cache.alignment("key", compute) == first and len(calls) == 1
    assert cache.take_counts() == {"msa": 1} and cache.take_counts() == {}
    assert store.computations("msa") == {"key": {"started": 1, "finished": 1}}
    (tmp_path / Store.step_path("msa", "key", "json")).write_text("{}")
    assert cache.alignment("key", compute) == first and len(calls) == 2
    assert store.computations("msa") == {"key": {"started": 2, "finished": 2}}, "the ledger counts every compute"


def test_the_ledger_shows_a_computation_that_never_finished(tmp_path):
    store = Store(tmp_path)

    def dies():
        raise RuntimeError("actor lost mid-way")

    with pytest.raises(RuntimeError):
        StepCache(store).prediction("p", dies)
    assert store.computations("prediction") == {"p": {"started": 1}}


def test_prediction_round_trip(tmp_path):
    prediction = Prediction("model_1_ptm", np.zeros(3, np.int32), np.arange(3), np.ones((3, 37, 3), np.float32),
                            np.ones((3, 37), np.float32), np.full(3, 70.0, np.float32), 70.0, ptm=0.5,
                            pae=np.zeros((3, 3), np.float32), max_pae=31.75, recycles=1, timings={"predict": 1.0})
    cache = StepCache(Store(tmp_path))
    cache.prediction("p", lambda: prediction)
    loaded = cache.prediction("p", lambda: pytest.fail("must come from the store"))
    assert loaded.ptm == 0.5 and loaded.timings == {"predict": 1.0} and loaded.model_name == "model_1_ptm"
    np.testing.assert_array_equal(loaded.atom_positions, prediction.atom_positions)


def test_keys_change_exactly_with_what_affects_each_step():
    msa = MsaConfig()
    db = msa.databases[0]
    def key(sequence, msa, engine="pyhmmer", version="0.12.3"):
        return search_key(sequence, db, PyhmmerEngine(msa).key_settings(), engine, version)

    base = key("MKV", msa)
    assert base == key("MKV", MsaConfig())
    assert base != key("MKW", msa)
    assert base != key("MKV", MsaConfig(e_value=1e-3))
    assert base != key("MKV", msa, version="0.13.0"), "a new engine version searches again"
    assert base != key("MKV", msa, engine="hhblits")
    assert base == key("MKV", MsaConfig(cpus_per_search=4))  # speed only
    feats = features_key("MKV", [base], True)
    assert feats != features_key("MKV", [base], False)
    model = ModelConfig()
    key = prediction_key(feats, "model_1_ptm", "v1", model, 64, seed=0)
    assert key == prediction_key(feats, "model_1_ptm", "v1", ModelConfig(), 64, seed=0)
    for changed in (ModelConfig(num_recycle=3), ModelConfig(params_seed=1), ModelConfig(bfloat16=False)):
        assert key != prediction_key(feats, "model_1_ptm", "v1", changed, 64, seed=0)
    assert key != prediction_key(feats, "model_1_ptm", "v1", model, 64, seed=1)
    assert key != prediction_key(feats, "model_1_ptm", "v1", model, 96, seed=0)
    assert key != prediction_key(feats, "model_1_ptm", "v2", model, 64, seed=0)
    assert content_key("x", a=1, b=2) == content_key("x", b=2, a=1)
