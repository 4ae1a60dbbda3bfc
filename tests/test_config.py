"""Settings: the shipped YAML files load, and unknown keys are refused."""

import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

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
    assert "parameters from /data/alphafold/params" in describe_setup(config)[0]
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


# A YAML file that sets every path setting to a relative path, and where each must then point: relative to the
# file's folder ("cfg", in a tmp folder), whatever the working directory.
EVERY_PATH_SETTING = """
store: store
msa:
  precomputed_dir: msas
  databases:
    - {name: bfd, path: db/bfd, engine: hhblits, extra_paths: [db/uniref30, ../shared/more]}
  pairing_database: {name: uniprot, path: db/uniprot.fasta, extra_paths: [db/uniprot_extra]}
  templates: {engine: hhsearch, pdb_seqres: db/seqres.fasta, pdb70: ../shared/pdb70, mmcif_dir: db/mmcif,
              obsolete_pdbs: db/obsolete.dat}
model: {params_dir: weights, cache_dir: ../cache}
design: {backbone_files: [backbones/a.pdb, ../b.cif]}
"""
WHERE_EACH_POINTS = {  # dotted setting (list items under their list's name) -> paths under the tmp folder
    "store": ["cfg/store"],
    "msa.precomputed_dir": ["cfg/msas"],
    "msa.databases.path": ["cfg/db/bfd"],
    "msa.databases.extra_paths": ["cfg/db/uniref30", "shared/more"],
    "msa.pairing_database.path": ["cfg/db/uniprot.fasta"],
    "msa.pairing_database.extra_paths": ["cfg/db/uniprot_extra"],
    "msa.templates.pdb_seqres": ["cfg/db/seqres.fasta"],
    "msa.templates.pdb70": ["shared/pdb70"],
    "msa.templates.mmcif_dir": ["cfg/db/mmcif"],
    "msa.templates.obsolete_pdbs": ["cfg/db/obsolete.dat"],
    "model.params_dir": ["cfg/weights"],
    "model.cache_dir": ["cache"],
    "design.backbone_files": ["cfg/backbones/a.pdb", "b.cif"],
}


def _types_in(annotation) -> list:
    """``annotation`` and every type inside it (list[...], X | None, Annotated[...])."""
    return [annotation, *(t for arg in typing.get_args(annotation) for t in _types_in(arg))]


def path_settings(model: type[BaseModel], prefix: str = "") -> set[str]:
    """The dotted names of every setting whose declared type holds a Path, from the models' annotations."""
    names = set()
    for name, field in model.model_fields.items():
        for kind in _types_in(field.annotation):
            if kind is Path:
                names.add(prefix + name)
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                names |= path_settings(kind, f"{prefix}{name}.")
    return names


def path_values(value, setting: str = "") -> dict[str, list[Path]]:
    """Every Path in a loaded config, by dotted setting (a list's items under the list's name)."""
    if isinstance(value, Path):
        return {setting: [value]}
    if isinstance(value, BaseModel):
        children = [(f"{setting}.{name}".lstrip("."), child) for name, child in value]
    else:
        children = [(setting, item) for item in value] if isinstance(value, list) else []
    found: dict[str, list[Path]] = {}
    for name, child in children:
        for inner, paths in path_values(child, name).items():
            found.setdefault(inner, []).extend(paths)
    return found


def test_every_path_setting_is_taken_from_the_yaml_folder(tmp_path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "cfg" / "c.yaml").write_text(EVERY_PATH_SETTING)
    monkeypatch.chdir(tmp_path / "elsewhere")
    config = load_config("../cfg/c.yaml")
    # the table covers every setting declared as a path (the store is a path or a URI, declared as str)
    assert path_settings(RunConfig) | {"store"} == WHERE_EACH_POINTS.keys()
    loaded = {**path_values(config), "store": [Path(config.store)]}
    assert loaded == {setting: [tmp_path / p for p in paths] for setting, paths in WHERE_EACH_POINTS.items()}


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
    assert "RANDOM parameters" in describe_setup(default_config())[0]
    assert "bundled mini databases" in describe_setup(default_config())[0]
