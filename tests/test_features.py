"""foldflow's features equal those of AlphaFold's own DataPipeline for the same MSA files."""

import shutil

import numpy as np
import pytest
from alphafold.data import pipeline, templates

from foldflow.config import MsaConfig
from foldflow.features import build_features, empty_template_features
from foldflow.msa.jackhmmer import ResidentDatabases
from foldflow.msa.precomputed import load_precomputed
from conftest import DATA
from test_msa import ABC_QUERY, SHORT_SEQUENCE


class _NoTemplateSearch:
    """Stands in for HHSearch: templates are not part of this comparison."""

    input_format, output_format = "sto", "hhr"

    def query(self, msa: str) -> str:
        return ""

    def get_template_hits(self, output_string, input_sequence):
        return []


class _EmptyTemplates:
    def get_templates(self, query_sequence, hits):
        return templates.TemplateSearchResult(
            features=empty_template_features(len(query_sequence)), errors=[], warnings=[])


def alphafold_features(fasta, msa_dir, tmp_path, small_bfd: bool):
    # The tools' constructors check that the databases exist; with precomputed MSAs none is read.
    (tmp_path / "bfd_a3m.ffdata").touch()
    unused_db = str(DATA / "short.fasta")
    data_pipeline = pipeline.DataPipeline(
        jackhmmer_binary_path="jackhmmer", hhblits_binary_path="hhblits",
        uniref90_database_path=unused_db, mgnify_database_path=unused_db,
        bfd_database_path=str(tmp_path / "bfd"), uniref30_database_path=str(tmp_path / "bfd"),
        small_bfd_database_path=unused_db, template_searcher=_NoTemplateSearch(),
        template_featurizer=_EmptyTemplates(), use_small_bfd=small_bfd, use_precomputed_msas=True)
    return data_pipeline.process(str(fasta), str(msa_dir))


def assert_same_features(ours, theirs):
    non_template = sorted(k for k in theirs if not k.startswith("template_"))
    assert sorted(k for k in ours if not k.startswith("template_")) == non_template
    for key in non_template:
        assert ours[key].dtype == theirs[key].dtype, key
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


def test_searched_msas_give_alphafold_features(tmp_path):
    alignments = ResidentDatabases(MsaConfig()).search("abc", ABC_QUERY)
    msa_dir = tmp_path / "msas"
    msa_dir.mkdir()
    for alignment in alignments:
        (msa_dir / alignment.file_name).write_text(alignment.text)
    fasta = tmp_path / "abc.fasta"
    fasta.write_text(f">abc ABC fragment\n{ABC_QUERY}\n")
    theirs = alphafold_features(fasta, msa_dir, tmp_path, small_bfd=True)
    assert_same_features(build_features(ABC_QUERY, "abc ABC fragment", alignments, deduplicate=False), theirs)


def test_precomputed_msas_give_alphafold_features(tmp_path):
    msa_dir = tmp_path / "short"
    shutil.copytree(DATA / "msas" / "short", msa_dir)
    alignments = load_precomputed(tmp_path, "short", SHORT_SEQUENCE, {"uniref90": 10_000, "mgnify": 501})
    shutil.move(msa_dir / "bfd_uniclust_hits.a3m", msa_dir / "bfd_uniref_hits.a3m")  # AlphaFold's name
    theirs = alphafold_features(DATA / "short.fasta", msa_dir, tmp_path, small_bfd=False)
    assert_same_features(build_features(SHORT_SEQUENCE, "query", alignments, deduplicate=False), theirs)


def test_deduplication_keeps_first_occurrence_in_alphafold_order(tmp_path):
    shutil.copytree(DATA / "msas" / "short", tmp_path / "short")
    alignments = load_precomputed(tmp_path, "short", SHORT_SEQUENCE, {})
    full = build_features(SHORT_SEQUENCE, "query", alignments, deduplicate=False)["msa"]
    deduplicated = build_features(SHORT_SEQUENCE, "query", alignments, deduplicate=True)["msa"]
    _, first_rows = np.unique(full, axis=0, return_index=True)
    np.testing.assert_array_equal(deduplicated, full[np.sort(first_rows)])
    assert len(deduplicated) < len(full)
    assert (deduplicated[0] == full[0]).all()  # the query stays first


def test_no_alignments_means_single_sequence_msa():
    features = build_features("MKVLA", "solo", [])
    assert features["msa"].shape == (1, 5)
    assert features["template_all_atom_masks"].sum() == 0


@pytest.mark.parametrize("length", [1, 40])
def test_empty_template_features_shapes(length):
    t = empty_template_features(length)
    assert t["template_all_atom_positions"].shape == (1, length, 37, 3)
    assert t["template_aatype"].shape == (1, length, 22)
