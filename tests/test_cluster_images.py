"""Issue 26's checks that need no image: the versions check every image of a cluster must pass, and the
cluster's run config uses no bundled mini data, which a run's first line names as a warning. The deployment
files' issue 26 checks are in tests/test_deploy.py (deploy_checks.cluster_image_problems); the images
themselves are built and run in tests/test_images.py."""

from pathlib import Path

from deploy_checks import image_version_problems
from foldflow.api import describe_setup
from foldflow.config import BUNDLED_DB_DIR, DatabaseConfig, RunConfig, load_config
from conftest import ROOT


def test_images_of_other_python_or_ray_versions_are_found():
    head = ("2.60.0", "3.11.2")
    assert image_version_problems({"cpu": head, "gpu": head}) == []
    assert image_version_problems({"cpu": head, "gpu": ("2.60.0", "3.11.0")}) == [
        "gpu: Ray 2.60.0, Python 3.11.0 differ from cpu's Ray 2.60.0, Python 3.11.2"]
    assert len(image_version_problems({"cpu": head, "gpu": ("2.61.0", "3.11.2")})) == 1


def _paths(value) -> list[Path]:
    """Every path in a settings tree (model_dump of a RunConfig)."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in _paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in _paths(v)]
    return [value] if isinstance(value, Path) else []


def test_the_cluster_run_config_uses_no_bundled_data():
    config = load_config(ROOT / "configs" / "cluster-run.yaml")
    paths = _paths(config.model_dump())
    assert len(paths) >= 10  # databases, pairing, templates (pdb70, seqres, mmCIF, obsolete), params, cache
    assert [p for p in paths if p.is_relative_to(BUNDLED_DB_DIR)] == []
    assert config.msa.pairing_database is not None and config.msa.templates.enabled
    line, warning = describe_setup(config)
    assert "bundled" not in line and not warning  # real parameters, AlphaFold's preset, full databases


def test_the_first_line_names_each_kind_of_bundled_mini_data_as_a_warning():
    full = [DatabaseConfig(name="uniref90", path="/data/uniref90.fasta")]
    templates = {"pdb_seqres": "/data/pdb_seqres.txt", "mmcif_dir": "/data/mmcif_files"}
    pairing = DatabaseConfig(name="uniprot", path="/data/uniprot.fasta")
    real = {"params_dir": "/data/params", "preset": "alphafold"}
    complexes = ["model_1_multimer_v3"]

    def first_line(msa: dict, models: list[str]) -> tuple[str, bool]:
        return describe_setup(RunConfig(msa=msa, model=real), models)

    line, warning = first_line({"databases": full}, complexes)
    assert "templates from the bundled mini PDB seqres and mmCIF files" in line and warning
    assert "species pairing with the bundled mini UniProt" in line
    assert "bundled mini databases" not in line
    line, warning = first_line({"databases": full, "templates": templates}, complexes)
    assert "templates from the bundled" not in line and "pairing with the bundled mini UniProt" in line and warning
    line, warning = first_line({"databases": full, "templates": templates, "pairing_database": pairing}, complexes)
    assert "bundled" not in line and not warning
    # monomers search no pairing database; templates switched off use no mmCIF files
    line, warning = first_line({"databases": full, "templates": {"enabled": False}}, ["model_1_ptm"])
    assert "bundled" not in line and not warning
    line, warning = first_line({"templates": {"enabled": False}}, ["model_1_ptm"])  # the bundled MSA databases
    assert "bundled mini databases" in line and warning
