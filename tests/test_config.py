"""Settings: the shipped YAML files load, and unknown keys are refused."""

from pathlib import Path

import pytest

from foldflow.api import apply_overrides, describe_setup
from foldflow.config import DEFAULT_CACHE_DIR, RunConfig, default_config, load_config
from foldflow.errors import ConfigError
from conftest import ROOT


def test_default_yaml_is_the_default_config():
    assert load_config(ROOT / "configs" / "default.yaml") == default_config()


def test_alphafold_yaml_loads():
    config = load_config(ROOT / "configs" / "alphafold.yaml")
    assert [db.name for db in config.msa.databases] == ["uniref90", "small_bfd", "mgnify"]
    assert config.model.params_dir is not None and not config.model.uses_random_params
    assert "parameters from /data/alphafold/params" in describe_setup(config)
    assert config.msa.templates.engine_for(False) == "hhsearch" and config.msa.templates.engine_for(True) == "hmmsearch"


def test_colabfold_yaml_loads():
    config = load_config(ROOT / "configs" / "colabfold.yaml")
    assert [(db.name, config.msa.engine_of(db)) for db in config.msa.searched_databases(pairing=True)] == [
        ("uniref30", "mmseqs2"), ("colabfold_envdb", "mmseqs2"), ("uniprot", "mmseqs2")]


def test_unknown_key_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  num_recycles: 3\n")
    with pytest.raises(ConfigError, match=f"^config {path}: model.num_recycles: Extra inputs are not permitted$"):
        load_config(path)


def test_unreadable_yaml_is_a_config_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  names: [model_1_ptm\n")
    with pytest.raises(ConfigError, match=f"^config {path}, line 3: not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path / "missing.yaml")


def test_relative_paths_are_taken_from_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  params_dir: weights\n  cache_dir: ../cache\nstore: store\n"
                    "msa:\n  databases:\n    - {name: uniref90, path: db/u.fasta}\n")
    config = load_config(path)
    assert config.model.params_dir == tmp_path / "weights"
    assert config.msa.databases[0].path == tmp_path / "db" / "u.fasta"
    assert config.model.cache_dir == tmp_path.parent / "cache"
    assert config.store == str(tmp_path / "store")


def test_store_uris_home_paths_and_defaults_stay_as_they_are(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("store: s3://bucket/store\nmodel:\n  params_dir: ~/weights\n")
    config = load_config(path)
    assert config.store == "s3://bucket/store" and config.model.cache_dir == DEFAULT_CACHE_DIR
    assert config.model.params_dir == Path.home() / "weights"
    path.write_text("store: ~/store\n")
    assert load_config(path).store == str(Path.home() / "store")


def test_overrides_use_dotted_names():
    config = apply_overrides(RunConfig(), {"model.num_recycle": 0, "skip_invalid": True, "max_length": None})
    assert config.model.num_recycle == 0 and config.skip_invalid and config.max_length == 2500
    with pytest.raises(ConfigError, match="model.nope"):
        apply_overrides(RunConfig(), {"model.nope": 1})


def test_default_setup_line_says_random_parameters():
    assert "RANDOM parameters" in describe_setup(default_config())
    assert "bundled mini databases" in describe_setup(default_config())
