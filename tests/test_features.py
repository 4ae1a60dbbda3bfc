"""foldflow's features equal those of AlphaFold's own DataPipeline for the same MSA files, templates included
(AlphaFold's Hmmsearch wrapper and HmmsearchHitFeaturizer on the bundled PDB seqres and mmCIF files)."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from alphafold.data import pipeline, templates
from alphafold.data.tools import hmmsearch

from foldflow.config import MsaConfig, TemplateConfig
from foldflow.features import build_features, empty_template_features
from foldflow.msa.jackhmmer import ResidentDatabases
from foldflow.msa.precomputed import load_precomputed
from foldflow.templates import TemplateSearch
from conftest import DATA, debian_binary
from test_msa import ABC_QUERY, SHORT_SEQUENCE


class BundledMmcifFeaturizer(templates.HmmsearchHitFeaturizer):
    """AlphaFold's featuriser given the hits whose mmCIF file the bundled folder holds (4 of PDB's; a full
    mirror holds every hit's, and foldflow leaves out the others the same way)."""

    def get_templates(self, query_sequence, hits):
        present = [h for h in hits if (Path(self._mmcif_dir) / f"{h.name.split()[0][:4]}.cif").is_file()]
        return super().get_templates(query_sequence, present)


def alphafold_template_search(bundled: TemplateConfig) -> tuple[hmmsearch.Hmmsearch, templates.HmmsearchHitFeaturizer]:
    """AlphaFold's own template search (its Hmmsearch wrapper on the HMMER binaries) and featuriser, on the
    bundled PDB seqres and mmCIF files."""
    searcher = hmmsearch.Hmmsearch(binary_path=debian_binary("hmmsearch", "hmmer"),
                                   hmmbuild_binary_path=debian_binary("hmmbuild", "hmmer"),
                                   database_path=str(bundled.pdb_seqres))
    featurizer = BundledMmcifFeaturizer(
        mmcif_dir=str(bundled.mmcif_dir), max_template_date=bundled.max_template_date, max_hits=bundled.max_hits,
        kalign_binary_path=debian_binary("kalign", "kalign"), release_dates_path=None, obsolete_pdbs_path=None)
    return searcher, featurizer


def foldflow_template_features(sequence: str, alignments) -> dict:
    """foldflow's templates from its uniref90 alignment, as its prepare step makes them."""
    search = TemplateSearch(TemplateConfig())
    (uniref90,) = [a for a in alignments if a.database == "uniref90"]
    return search.featurise(sequence, search.search(uniref90.text))[0]


def alphafold_features(fasta, msa_dir, tmp_path, small_bfd: bool):
    # The tools' constructors check that the databases exist; with precomputed MSAs none is read.
    (tmp_path / "bfd_a3m.ffdata").touch()
    unused_db = str(DATA / "short.fasta")
    searcher, featurizer = alphafold_template_search(TemplateConfig())
    data_pipeline = pipeline.DataPipeline(
        jackhmmer_binary_path="jackhmmer", hhblits_binary_path="hhblits",
        uniref90_database_path=unused_db, mgnify_database_path=unused_db,
        bfd_database_path=str(tmp_path / "bfd"), uniref30_database_path=str(tmp_path / "bfd"),
        small_bfd_database_path=unused_db, template_searcher=searcher,
        template_featurizer=featurizer, use_small_bfd=small_bfd, use_precomputed_msas=True)
    return data_pipeline.process(str(fasta), str(msa_dir))


def assert_same_features(ours, theirs):
    """Every feature, the (no-)template ones included, equal in keys, dtypes and values."""
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
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
    ours = build_features(ABC_QUERY, "abc ABC fragment", alignments, deduplicate=False,
                          templates=foldflow_template_features(ABC_QUERY, alignments))
    assert_same_features(ours, theirs)


def test_precomputed_msas_give_alphafold_features(tmp_path):
    msa_dir = tmp_path / "short"
    shutil.copytree(DATA / "msas" / "short", msa_dir)
    alignments = load_precomputed(tmp_path, "short", SHORT_SEQUENCE, {"uniref90": 10_000, "mgnify": 501})
    shutil.move(msa_dir / "bfd_uniclust_hits.a3m", msa_dir / "bfd_uniref_hits.a3m")  # AlphaFold's name
    theirs = alphafold_features(DATA / "short.fasta", msa_dir, tmp_path, small_bfd=False)
    ours = build_features(SHORT_SEQUENCE, "query", alignments, deduplicate=False,
                          templates=foldflow_template_features(SHORT_SEQUENCE, alignments))
    assert_same_features(ours, theirs)


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
