"""foldflow's complex features against AlphaFold's own multimer DataPipeline on the same MSA files.

The reference is ``alphafold.data.pipeline_multimer.DataPipeline`` wrapping the monomer
``pipeline.DataPipeline``, both with ``use_precomputed_msas=True`` and every MSA file already in
``msa_output_dir/<chain id>/``, so no search binary runs (the binary paths do not exist). Its template
search is a stub that finds no hit; the template featurizer is AlphaFold's multimer one
(``HmmsearchHitFeaturizer``), which then gives its one all-zero template. DeepMind's AlphaFold 2.3
(row deduplication in ``make_msa_features``) is the fork's pipeline with
``pipeline.make_msa_features`` replaced by the vendored DeepMind function
(``tests/reference/deepmind_pipeline.py``); the unpatched pipeline is the fork's.

Test data (``tests/data/multimer``, see its SOURCES.md): real AlphaFold MSAs of PDB 2q2k chain A
(a homodimer) and jackhmmer MSAs, AlphaFold's own wrapper and flags, of two short windows of an ABC
transporter ATPase (E. coli PotA) against the bundled mini databases and a 1,000-sequence UniProt
sample, whose species overlap so that pairing makes paired rows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from alphafold.data import parsers, pipeline, pipeline_multimer, templates

from foldflow.complex_features import ChainInput, build_complex_features, pairing_features
from foldflow.alignment import Alignment
from conftest import DATA
from reference import deepmind_pipeline

MULTIMER_DATA = DATA / "multimer"
# chain sequences, each the query row of its MSA files
SEQUENCES = {
    "2q2k_A": "MGSSHHHHHHSSGLVPGSHMDKKETKHLLKIKKEDYPQIFDFLENVPRGTKTAHIREALRRYIEEIGENP",
    "abc_walker_a": "YKGEIFALLGASGCGKSTLLRMLAGFEQPS",  # PotA (UniProt A0A2A2CDI5) residues 43-72
    "abc_signature": "HQLSGGQRQRVALARSLAKRPKLL",  # PotA residues 148-171
}
# foldflow's database name and format for each AlphaFold file name
FILES = {
    "uniref90_hits.sto": ("uniref90", "sto"),
    "bfd_uniclust_hits.a3m": ("bfd", "a3m"),
    "small_bfd_hits.sto": ("small_bfd", "sto"),
    "mgnify_hits.sto": ("mgnify", "sto"),
}
# the file names AlphaFold's monomer DataPipeline reads (bfd: bfd_uniref_hits.a3m without use_small_bfd)
AF_FILE_NAMES = {"bfd_uniclust_hits.a3m": "bfd_uniref_hits.a3m"}
MAX_UNIPROT_HITS = 50000


class _NoTemplateHits:
    """A template searcher that finds nothing (AlphaFold's would run hmmsearch on the PDB)."""

    input_format = "sto"
    output_format = "sto"

    def query(self, msa: str) -> str:
        return ""

    def get_template_hits(self, output_string: str, input_sequence: str) -> list:
        return []


def deepmind_template_featurizer(tmp_path: Path) -> templates.HmmsearchHitFeaturizer:
    mmcif_dir = tmp_path / "mmcif"
    mmcif_dir.mkdir(exist_ok=True)
    (mmcif_dir / "none.cif").write_text("")  # the featurizer wants a folder with a CIF; no hit reads one
    return templates.HmmsearchHitFeaturizer(
        mmcif_dir=str(mmcif_dir), max_template_date="2100-01-01", max_hits=20,
        kalign_binary_path="/nonexistent/kalign", release_dates_path=None, obsolete_pdbs_path=None)


def no_hit_templates(sequence: str, tmp_path: Path) -> dict:
    """AlphaFold's multimer template features when the search finds no template (one all-zero template)."""
    return deepmind_template_featurizer(tmp_path).get_templates(query_sequence=sequence, hits=[]).features


def alphafold_multimer_features(tmp_path: Path, chains: list[str], use_small_bfd: bool) -> dict:
    """AlphaFold's multimer DataPipeline.process on a FASTA of ``chains``, MSAs precomputed."""
    databases = tmp_path / "databases"
    databases.mkdir()
    for name in ("uniref90.fasta", "mgnify.fasta", "small_bfd.fasta", "uniprot.fasta", "bfd_a3m.ffdata",
                 "uniref30_a3m.ffdata"):
        (databases / name).write_text("")  # the wrappers check that the databases exist; none is searched
    monomer = pipeline.DataPipeline(
        jackhmmer_binary_path="/nonexistent/jackhmmer", hhblits_binary_path="/nonexistent/hhblits",
        uniref90_database_path=str(databases / "uniref90.fasta"),
        mgnify_database_path=str(databases / "mgnify.fasta"),
        bfd_database_path=str(databases / "bfd"), uniref30_database_path=str(databases / "uniref30"),
        small_bfd_database_path=str(databases / "small_bfd.fasta"),
        template_searcher=_NoTemplateHits(), template_featurizer=deepmind_template_featurizer(tmp_path),
        use_small_bfd=use_small_bfd, use_precomputed_msas=True)
    multimer = pipeline_multimer.DataPipeline(
        monomer_data_pipeline=monomer, jackhmmer_binary_path="/nonexistent/jackhmmer",
        uniprot_database_path=str(databases / "uniprot.fasta"), max_uniprot_hits=MAX_UNIPROT_HITS,
        use_precomputed_msas=True)
    msa_output_dir = tmp_path / "msas"
    for chain_id, name in zip(pipeline_multimer.protein.PDB_CHAIN_IDS, chains):
        folder = msa_output_dir / chain_id
        shutil.copytree(MULTIMER_DATA / name, folder)
        for ours, theirs in AF_FILE_NAMES.items():
            if (folder / ours).exists():
                (folder / ours).rename(folder / theirs)
    fasta = tmp_path / "complex.fasta"
    fasta.write_text("".join(f">{name}\n{SEQUENCES[name]}\n" for name in chains))
    return multimer.process(input_fasta_path=str(fasta), msa_output_dir=str(msa_output_dir))


def chain_input(name: str, templates: dict | None) -> ChainInput:
    folder = MULTIMER_DATA / name
    alignments = [Alignment(database, fmt, (folder / file).read_text())
                  for file, (database, fmt) in FILES.items() if (folder / file).exists()]
    uniprot = folder / "uniprot_hits.sto"
    pairing = Alignment("uniprot", "sto", uniprot.read_text()) if uniprot.exists() else None
    return ChainInput(SEQUENCES[name], name, alignments, pairing, templates)


def assert_same_features(ours: dict, reference: dict) -> None:
    assert sorted(ours) == sorted(reference)
    for key in reference:
        assert np.asarray(ours[key]).dtype == np.asarray(reference[key]).dtype, key
        np.testing.assert_array_equal(ours[key], reference[key], err_msg=key)


COMPLEXES = {
    "heterodimer": (["abc_walker_a", "abc_signature"], True),
    "heterotrimer A2B": (["abc_walker_a", "abc_signature", "abc_walker_a"], True),
    "homodimer 2q2k": (["2q2k_A", "2q2k_A"], False),
}


@pytest.mark.parametrize("deduplicate", [True, False], ids=["deepmind", "fork"])
@pytest.mark.parametrize("complex_name", list(COMPLEXES))
def test_features_equal_alphafolds_multimer_pipeline(tmp_path, monkeypatch, complex_name, deduplicate):
    """Every feature array (dtype and values) equals the DataPipeline's, deduplicated as DeepMind's
    pipeline does (deduplicate=True) or not, as the fork's does (False)."""
    chains, use_small_bfd = COMPLEXES[complex_name]
    with monkeypatch.context() as patch:
        if deduplicate:
            patch.setattr(pipeline, "make_msa_features", deepmind_pipeline.make_msa_features)
        reference = alphafold_multimer_features(tmp_path, chains, use_small_bfd)
    inputs = [chain_input(name, no_hit_templates(SEQUENCES[name], tmp_path)) for name in chains]
    assert_same_features(build_complex_features(inputs, deduplicate=deduplicate), reference)
    # the data tell the two apart: the other setting's MSA is not the reference's
    assert not np.array_equal(build_complex_features(inputs, deduplicate=not deduplicate)["msa"], reference["msa"])


def test_heteromer_pairs_msa_rows_by_species(tmp_path):
    """The heterodimer's data exercise pairing: rows beyond the query are paired across the chains."""
    features = build_complex_features([chain_input(name, None) for name in ("abc_walker_a", "abc_signature")])
    walker, signature = (len(SEQUENCES[name]) for name in ("abc_walker_a", "abc_signature"))
    msa = features["msa"][features["msa_mask"].any(axis=1)]  # the rows pad_msa did not add
    gap = 21
    both = (msa[:, :walker] != gap).any(axis=1) & (msa[:, walker:] != gap).any(axis=1)
    assert both.sum() == 8 and both[:8].all()  # the query row, then 7 species-paired rows
    assert len(msa) == features["num_alignments"] == 15  # then unpaired rows, each chain's own
    np.testing.assert_array_equal(features["asym_id"], [1] * walker + [2] * signature)
    np.testing.assert_array_equal(features["entity_id"], [1] * walker + [2] * signature)
    np.testing.assert_array_equal(features["sym_id"], [1] * (walker + signature))
    assert features["msa"].shape[0] == 512  # pad_msa


def test_chains_are_merged_grouped_by_sequence():
    """As AlphaFold merges them: copies of a sequence (an entity) next to each other, numbered in that
    order. Chains A, B, C = X, Y, X become X (asym 1), X (asym 2), Y (asym 3): output chain 2 is input C."""
    x, y = "abc_walker_a", "abc_signature"
    features = build_complex_features([chain_input(name, None) for name in (x, y, x)])
    nx, ny = len(SEQUENCES[x]), len(SEQUENCES[y])
    np.testing.assert_array_equal(features["asym_id"], [1] * nx + [2] * nx + [3] * ny)
    np.testing.assert_array_equal(features["entity_id"], [1] * (2 * nx) + [2] * ny)
    np.testing.assert_array_equal(features["sym_id"], [1] * nx + [2] * nx + [1] * ny)
    np.testing.assert_array_equal(features["aatype"], np.concatenate(
        [features["aatype"][:nx], features["aatype"][:nx], build_complex_features([chain_input(y, None)])["aatype"]]))


def test_homomer_chains_share_entity_and_number_symmetric_copies():
    sequence = SEQUENCES["abc_signature"]
    features = build_complex_features([chain_input("abc_signature", None)] * 2)
    n = len(sequence)
    np.testing.assert_array_equal(features["asym_id"], [1] * n + [2] * n)
    np.testing.assert_array_equal(features["entity_id"], [1] * (2 * n))
    np.testing.assert_array_equal(features["sym_id"], [1] * n + [2] * n)
    assert not any(key.endswith("_all_seq") for key in features)


def test_no_templates_is_foldflows_empty_template(tmp_path):
    """templates=None gives foldflow's empty template (foldflow.features.empty_template_features: gap
    residues, zero masks), which differs from AlphaFold's no-hit template only in template_aatype (gap, 21,
    where AlphaFold's has 0)."""
    names = ["abc_walker_a", "abc_signature"]
    without = build_complex_features([chain_input(name, None) for name in names])
    with_alphafolds = build_complex_features([chain_input(name, no_hit_templates(SEQUENCES[name], tmp_path))
                                              for name in names])
    assert sorted(without) == sorted(with_alphafolds)
    for key in without:
        if key != "template_aatype":
            np.testing.assert_array_equal(without[key], with_alphafolds[key], err_msg=key)
    # pair_and_merge pads every chain to 4 templates of residue type 0 (msa_pairing._pad_templates)
    assert (without["template_aatype"][0] == 21).all() and not without["template_aatype"][1:].any()
    assert not with_alphafolds["template_aatype"].any()
    assert not without["template_all_atom_mask"].any() and without["num_templates"] == 1


def test_pairing_features_follow_alphafolds_truncation():
    """max_uniprot_hits keeps the first rows (query included), as DataPipeline._all_seq_msa_features does."""
    alignment = chain_input("abc_walker_a", None).pairing
    rows = len(alignment.parse().sequences)
    assert rows > 3
    full = pairing_features(SEQUENCES["abc_walker_a"], alignment, deduplicate=False)
    cut = pairing_features(SEQUENCES["abc_walker_a"], alignment, deduplicate=False, max_uniprot_hits=3)
    assert sorted(full) == ["deletion_matrix_int_all_seq", "msa_all_seq", "msa_species_identifiers_all_seq"]
    assert full["msa_all_seq"].shape[0] == rows and cut["msa_all_seq"].shape[0] == 3
    np.testing.assert_array_equal(cut["msa_all_seq"], full["msa_all_seq"][:3])
    query_only = pairing_features(SEQUENCES["abc_walker_a"], None)
    assert query_only["msa_all_seq"].shape == (1, len(SEQUENCES["abc_walker_a"]))
    assert parsers.parse_stockholm(alignment.text).sequences[0] == SEQUENCES["abc_walker_a"]
