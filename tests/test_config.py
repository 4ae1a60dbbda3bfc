"""Settings: the shipped YAML files load, and unknown keys are refused."""

import pydantic
import pytest

from foldflow.api import apply_overrides, describe_setup
from foldflow.config import RunConfig, default_config, load_config
from conftest import ROOT


def test_default_yaml_is_the_default_config():
    assert load_config(ROOT / "configs" / "default.yaml") == default_config()


def test_alphafold_yaml_loads():
    config = load_config(ROOT / "configs" / "alphafold.yaml")
    assert [db.name for db in config.msa.databases] == ["uniref90", "small_bfd", "mgnify"]
    assert config.model.params_dir is not None and not config.model.uses_random_params
    assert "parameters from /data/alphafold/params" in describe_setup(config)


def test_unknown_key_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  num_recycles: 3\n")
    with pytest.raises(pydantic.ValidationError, match="num_recycles"):
        load_config(path)


def test_relative_paths_are_taken_from_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  params_dir: weights\nmsa:\n  databases:\n    - {name: uniref90, path: db/u.fasta}\n")
    config = load_config(path)
    assert config.model.params_dir == tmp_path / "weights"
    assert config.msa.databases[0].path == tmp_path / "db" / "u.fasta"


def test_overrides_use_dotted_names():
    config = apply_overrides(RunConfig(), {"model.num_recycle": 0, "skip_invalid": True, "max_length": None})
    assert config.model.num_recycle == 0 and config.skip_invalid and config.max_length == 2500
    with pytest.raises(KeyError, match="model.nope"):
        apply_overrides(RunConfig(), {"model.nope": 1})


def test_default_setup_line_says_random_parameters():
    assert "RANDOM parameters" in describe_setup(default_config())
    assert "bundled mini databases" in describe_setup(default_config())
