"""foldflow.templates (AlphaFold 2.3's hmmsearch template pipeline) against independent references.

* **Search**: the HMMER 3.3.2 binaries through AlphaFold's own wrapper
  ``alphafold.data.tools.hmmsearch.Hmmsearch`` (``hmmbuild --hand --amino``, then
  ``hmmsearch --noali --cpu 8 --F1 0.1 --F2 0.1 --F3 0.1 --incE 100 -E 100 --domE 100
  --incdomE 100 -A out.sto``), after the MSA preprocessing of AlphaFold's ``pipeline.py``;
  E-values from the same command with ``--domtblout`` (the ``-A`` file carries none).
* **Coordinates**: CA atoms read from the mmCIF file with Biopython's ``MMCIFParser``, residues
  placed by the file's ``_pdbx_poly_seq_scheme``.
* **Template features**: DeepMind's AlphaFold 2.3.2 ``HmmsearchHitFeaturizer`` (``tests/reference/
  deepmind_templates.py``, its prefilter included) on the hits of AlphaFold's ``Hmmsearch`` wrapper; the
  installed fork's featurizer for ``deepmind_prefilter=False``.
* **No-template features**: ``HmmsearchHitFeaturizer.get_templates`` given no hits.
* **hhsearch**: the HH-suite 3.3.0 binary run by hand with AlphaFold's ``-maxseq 1000000`` on a PDB70-like
  database built here from the seqres sample.
"""

from __future__ import annotations

import difflib
import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from alphafold.common import residue_constants
from alphafold.data import parsers, templates as af_templates
from alphafold.data.tools import hmmbuild as af_hmmbuild
from alphafold.data.tools import hmmsearch as af_hmmsearch
from Bio.PDB import MMCIFParser
from Bio.PDB.MMCIF2Dict import MMCIF2Dict

from foldflow.config import BUNDLED_DB_DIR, DatabaseConfig, MsaConfig, TemplateConfig
from foldflow.features import build_features
from foldflow.alignment import QUERY_NAME
from foldflow.msa.jackhmmer import ResidentDatabases
from foldflow.templates import (ResidentSeqres, TemplateSearch, featurise_hits, template_features,
                                template_hits)
from conftest import DATA, debian_binary, small_model_config
from reference import deepmind_templates

TEMPLATE_DATA = DATA / "templates"
SEQRES = TEMPLATE_DATA / "pdb_seqres_mini.fasta"
MMCIF_DIR = TEMPLATE_DATA / "pdb_mmcif"
SEQRES_ENTRIES = dict(zip(*reversed(parsers.parse_fasta(SEQRES.read_text()))))

# Chain A of PDB 5y2e (47 aa, released 2018-03-14): in the seqres database and in pdb_mmcif/.
TEMPLATE_ENTRY = "5y2e_A mol:protein length:47  Non-structural glycoprotein 4"
TEMPLATE_QUERY = SEQRES_ENTRIES[TEMPLATE_ENTRY]
# A close homologue of 5y2e_A (one substitution): 5y2e_A is its template. For TEMPLATE_QUERY itself DeepMind's
# AlphaFold rejects 5y2e_A as a duplicate (an exact subsequence covering over 95 % of the query).
HOMOLOGUE = TEMPLATE_QUERY[:23] + "A" + TEMPLATE_QUERY[24:]
RELEASED = "2018-03-14"
# 2q2k chain A with AlphaFold's real uniref90 MSA: many weak hits (E <= 100), none in pdb_mmcif/.
UNIREF90_2Q2K = (TEMPLATE_DATA / "2q2k_A_uniref90_hits.sto").read_text()
QUERY_2Q2K = parsers.parse_stockholm(UNIREF90_2Q2K).sequences[0]
DESIGNED = "GSGSGSGSGSGSGSGSGSGS"
LATE = TemplateConfig(max_template_date="2022-09-28")  # the seqres snapshot's date


@pytest.fixture(scope="module")
def binaries() -> dict[str, str]:
    return {name: debian_binary(name, "hmmer") for name in ("hmmbuild", "hmmsearch")}


@pytest.fixture(scope="module")
def kalign() -> str:
    return debian_binary("kalign", "kalign")


@pytest.fixture(scope="module")
def seqres() -> ResidentSeqres:
    return ResidentSeqres(SEQRES)


@pytest.fixture(scope="module")
def uniref90_msa():
    """The query's uniref90 MSA from foldflow's jackhmmer against the bundled uniref90_mini."""
    uniref90 = DatabaseConfig(name="uniref90", path=BUNDLED_DB_DIR / "uniref90_mini.fasta", max_hits=10_000)
    databases = ResidentDatabases(MsaConfig(databases=[uniref90]))
    return lambda sequence: databases.search_one(QUERY_NAME, sequence, "uniref90").text


def _name(name: str | bytes) -> str:
    return name if isinstance(name, str) else name.decode()


def alphafold_template_msa(uniref90_sto: str) -> str:
    """The uniref90 MSA as AlphaFold's pipeline.py hands it to the template searcher."""
    return parsers.remove_empty_columns_from_stockholm_msa(parsers.deduplicate_stockholm_msa(uniref90_sto))


def alphafold_hmmsearch(database: Path, binaries: dict[str, str]) -> af_hmmsearch.Hmmsearch:
    return af_hmmsearch.Hmmsearch(binary_path=binaries["hmmsearch"], hmmbuild_binary_path=binaries["hmmbuild"],
                                  database_path=str(database))


def reference_search(uniref90_sto: str, query: str, database: Path, binaries: dict[str, str],
                     tmp_path: Path) -> tuple[str, list[parsers.TemplateHit], dict[str, float]]:
    """The binaries' ``-A`` Stockholm and its hits (AlphaFold's wrapper), each domain's i-Evalue (``--domtblout``)."""
    msa = alphafold_template_msa(uniref90_sto)
    searcher = alphafold_hmmsearch(database, binaries)
    sto = searcher.query(msa)
    hmm = tmp_path / "query.hmm"
    hmm.write_text(af_hmmbuild.Hmmbuild(binary_path=binaries["hmmbuild"]).build_profile_from_sto(
        msa, model_construction="hand"))
    table = tmp_path / "domains.tbl"
    subprocess.run([binaries["hmmsearch"], "--noali", "--cpu", "8", *searcher.flags, "--domtblout", str(table),
                    "-o", os.devnull, str(hmm), str(database)], check=True)
    e_values = {}
    for line in table.read_text().splitlines():
        if not line.startswith("#"):
            fields = line.split()
            e_values[f"{fields[0]}/{fields[17]}-{fields[18]}"] = float(fields[12])
    return sto, searcher.get_template_hits(sto, query), e_values


def _without_author(sto: str) -> list[str]:
    return [line for line in sto.splitlines() if not line.startswith("#=GF AU")]


@pytest.mark.parametrize("case", ["2q2k_A", "5y2e_A", "designed"])
def test_hmmsearch_matches_binaries(case, seqres, binaries, uniref90_msa, tmp_path):
    """Same Stockholm (hence hits, aligned sequences), same TemplateHits, same E-values as HMMER 3.3.2."""
    if case == "2q2k_A":  # AlphaFold's own uniref90 MSA
        query, msa, database = QUERY_2Q2K, UNIREF90_2Q2K, seqres
    elif case == "5y2e_A":  # MSA from foldflow's jackhmmer
        query, msa, database = TEMPLATE_QUERY, uniref90_msa(TEMPLATE_QUERY), seqres
    else:  # no hit at all: a designed sequence against a one-entry database
        one_entry = tmp_path / "one_entry.fasta"
        one_entry.write_text(f">{TEMPLATE_ENTRY}\n{TEMPLATE_QUERY}\n")
        query, msa, database = DESIGNED, uniref90_msa(DESIGNED), ResidentSeqres(one_entry)

    theirs, their_hits, their_e_values = reference_search(msa, query, database.path, binaries, tmp_path)
    ours = database.search(msa)
    assert _without_author(ours) == _without_author(theirs)
    assert template_hits(ours, query) == their_hits
    our_e_values = {f"{_name(hit.name)}/{domain.alignment.target_from}-{domain.alignment.target_to}": domain.i_evalue
                    for hit in database.hits(msa).included for domain in hit.domains.included}
    assert our_e_values.keys() == their_e_values.keys()
    for key, e_value in their_e_values.items():  # domtblout prints two significant digits
        assert our_e_values[key] == pytest.approx(e_value, rel=0.05), key
    expected_hits = {"2q2k_A": 214, "5y2e_A": 143, "designed": 0}[case]
    assert len(their_hits) == expected_hits
    if case == "5y2e_A":
        assert their_hits[0].name == "5y2e_A"


def ca_coordinates(cif: Path, chain: str) -> dict[int, np.ndarray]:
    """CA position of each observed residue of ``chain``, keyed by its 0-based seqres index (Biopython)."""
    scheme = MMCIF2Dict(str(cif))
    rows = zip(scheme["_pdbx_poly_seq_scheme.pdb_strand_id"], scheme["_pdbx_poly_seq_scheme.seq_id"],
               scheme["_pdbx_poly_seq_scheme.pdb_seq_num"], scheme["_pdbx_poly_seq_scheme.pdb_ins_code"])
    residues = {r.id[1:]: r for r in next(iter(MMCIFParser(QUIET=True).get_structure("t", str(cif))))[chain]}
    coordinates = {}
    for strand, seq_id, number, insertion in rows:
        residue = residues.get((int(number), " " if insertion in ".?" else insertion))
        if strand == chain and residue is not None and "CA" in residue:
            coordinates[int(seq_id) - 1] = residue["CA"].coord
    return coordinates


def assert_template_is_5y2e(features: dict) -> None:
    """The first template is 5y2e chain A placed on the query: CA atoms where Biopython finds them."""
    assert features["template_domain_names"][0] == b"5y2e_A"
    assert features["template_sequence"][0] == TEMPLATE_QUERY.encode()
    ca = residue_constants.atom_order["CA"]
    expected = ca_coordinates(MMCIF_DIR / "5y2e.cif", "A")
    assert len(expected) > 40
    masked = np.flatnonzero(features["template_all_atom_masks"][0, :, ca])
    assert masked.tolist() == sorted(expected)
    positions = features["template_all_atom_positions"][0, :, ca]
    np.testing.assert_allclose(positions[masked], np.stack([expected[i] for i in masked]), atol=1e-3)
    aatype = features["template_aatype"][0].argmax(-1)
    assert "".join(residue_constants.ID_TO_HHBLITS_AA[i] for i in aatype) == TEMPLATE_QUERY


def assert_model_accepts(sequence: str, features: dict) -> dict:
    """build_features and AlphaFold's input pipeline (model_1_ptm uses templates) take them; the
    processed features of the one ensemble member are returned."""
    from foldflow.models.alphafold2 import model_config, process_features

    raw = build_features(sequence, "q", [], templates=features)
    cfg = model_config("model_1_ptm", small_model_config())
    processed = process_features(cfg, raw, seed=0, pad_to=80)
    # One ensemble member, the model's 4 templates, residues padded to 80.
    assert processed["template_all_atom_positions"].shape == (1, 4, 80, residue_constants.atom_type_num, 3)
    return {name: value[0] for name, value in processed.items()}


def test_template_found_and_max_template_date(seqres, uniref90_msa):
    assert HOMOLOGUE != TEMPLATE_QUERY
    sto = seqres.search(uniref90_msa(HOMOLOGUE))
    features, found = template_features(HOMOLOGUE, sto, MMCIF_DIR, LATE)
    assert found == 1  # the other hits have no mmCIF file here
    assert_template_is_5y2e(features)
    processed = assert_model_accepts(HOMOLOGUE, features)
    assert processed["template_mask"].tolist() == [1, 0, 0, 0]

    day_before = TemplateConfig(max_template_date="2018-03-13")
    assert template_features(HOMOLOGUE, sto, MMCIF_DIR, day_before)[1] == 0
    assert template_features(HOMOLOGUE, sto, MMCIF_DIR, TemplateConfig(max_template_date=RELEASED))[1] == 1


def test_template_realigned_with_kalign(kalign, uniref90_msa, tmp_path, caplog):
    """A seqres entry that differs from its mmCIF chain is realigned with kalign, as AlphaFold does."""
    caplog.set_level(logging.INFO, logger="foldflow.templates")
    mutated = TEMPLATE_QUERY[:10] + "A" + TEMPLATE_QUERY[11:]
    assert mutated != TEMPLATE_QUERY
    database = tmp_path / "seqres.fasta"
    database.write_text(f">{TEMPLATE_ENTRY}\n{mutated}\n")
    sto = ResidentSeqres(database).search(uniref90_msa(TEMPLATE_QUERY))
    features, found = template_features(TEMPLATE_QUERY, sto, MMCIF_DIR, TemplateConfig(
        max_template_date=LATE.max_template_date, kalign_binary=kalign))
    assert found == 1
    assert "Realigning the template to the actual sequence" in caplog.text
    assert_template_is_5y2e(features)

    # Under 90 % identical to the mmCIF chain: AlphaFold rejects the hit (its error message would
    # raise TypeError for an hmmsearch hit, whose sum_probs is None).
    distant = "".join("A" if i % 5 == 0 else aa for i, aa in enumerate(TEMPLATE_QUERY))
    database.write_text(f">{TEMPLATE_ENTRY}\n{distant}\n")
    sto = ResidentSeqres(database).search(uniref90_msa(TEMPLATE_QUERY))
    assert [hit.name for hit in template_hits(sto, TEMPLATE_QUERY)] == ["5y2e_A"]
    features, found = template_features(TEMPLATE_QUERY, sto, MMCIF_DIR, TemplateConfig(
        max_template_date=LATE.max_template_date, kalign_binary=kalign))
    assert found == 0
    assert "Insufficient similarity" in caplog.text


# -- template features against DeepMind's AlphaFold 2.3.2 featurizer and the installed fork's ---------------
def has_structure(hit: parsers.TemplateHit) -> bool:
    return (MMCIF_DIR / f"{hit.name[:4]}.cif").is_file()


def reference_features(featurizer: type[af_templates.HmmsearchHitFeaturizer], query: str,
                       hits: list[parsers.TemplateHit], kalign: str) -> tuple[dict, int]:
    """A featurizer's template features and templates found, for the hits whose mmCIF file is here (AlphaFold
    raises FileNotFoundError on the others; foldflow skips them)."""
    result = featurizer(mmcif_dir=str(MMCIF_DIR), max_template_date=LATE.max_template_date, max_hits=20,
                        kalign_binary_path=kalign, release_dates_path=None, obsolete_pdbs_path=None
                        ).get_templates(query_sequence=query, hits=[hit for hit in hits if has_structure(hit)])
    return result.features, sum(1 for name in result.features["template_domain_names"] if name)


REFERENCES = {True: deepmind_templates.HmmsearchHitFeaturizer,  # deepmind_prefilter: DeepMind's AlphaFold 2.3.2
              False: af_templates.HmmsearchHitFeaturizer}  # the installed alphafold-colabfold fork


def assert_same_features(ours: dict, theirs: dict) -> None:
    assert ours.keys() == theirs.keys()
    for name, value in theirs.items():
        assert ours[name].dtype == value.dtype and ours[name].shape == value.shape, name
        np.testing.assert_array_equal(ours[name], value, err_msg=name)


@pytest.mark.parametrize("query, found", [
    pytest.param(HOMOLOGUE, {True: 1, False: 1}, id="close homologue"),
    # an exact subsequence covering over 95 % of the query (a duplicate PDB entry of the query)
    pytest.param(TEMPLATE_QUERY, {True: 0, False: 1}, id="the query itself"),
    pytest.param(TEMPLATE_QUERY + "GS" * 212, {True: 0, False: 1}, id="at most 10 % of the query aligned"),
])
def test_template_features_equal_alphafolds(query, found, seqres, binaries, kalign, uniref90_msa):
    """foldflow's search and featurisation give the features of AlphaFold's Hmmsearch wrapper (HMMER binaries)
    and featurizer: DeepMind's 2.3.2 by default, the fork's with deepmind_prefilter=False."""
    msa = uniref90_msa(query)
    searcher = alphafold_hmmsearch(seqres.path, binaries)
    their_hits = searcher.get_template_hits(searcher.query(alphafold_template_msa(msa)), query)
    assert their_hits[0].name == "5y2e_A"
    our_hits = seqres.search(msa)
    for deepmind_prefilter in (True, False):
        settings = TemplateConfig(max_template_date=LATE.max_template_date, kalign_binary=kalign,
                                  deepmind_prefilter=deepmind_prefilter)
        ours, our_found = template_features(query, our_hits, MMCIF_DIR, settings)
        theirs, their_found = reference_features(REFERENCES[deepmind_prefilter], query, their_hits, kalign)
        assert our_found == their_found == found[deepmind_prefilter], deepmind_prefilter
        assert_same_features(ours, theirs)
    if found[True]:
        assert_template_is_5y2e(ours)


def hand_hit(query: str, start: int, length: int) -> parsers.TemplateHit:
    """An hmmsearch hit of 5y2e_A's residues start..start+length-1 on the same query positions, as AlphaFold's
    parse_hmmsearch_a3m reads it from hmmsearch's A3M."""
    row = "-" * start + TEMPLATE_QUERY[start:start + length] + "-" * (len(query) - start - length)
    a3m = f">query\n{query}\n>5y2e_A/{start + 1}-{start + length} {TEMPLATE_ENTRY.split(maxsplit=1)[1]}\n{row}\n"
    (hit,) = parsers.parse_hmmsearch_a3m(query, a3m)
    assert hit.name == "5y2e_A" and hit.aligned_cols == length
    return hit


@pytest.mark.parametrize("query, start, length, found", [
    pytest.param(HOMOLOGUE, 20, 9, 0, id="9 template residues"),  # DeepMind: LengthError under 10
    pytest.param(HOMOLOGUE, 20, 10, 1, id="10 template residues"),
    pytest.param(HOMOLOGUE + "G" * 53, 20, 10, 0, id="10 % of the query aligned"),  # AlignRatioError at <= 0.1
    pytest.param(HOMOLOGUE + "G" * 53, 20, 11, 1, id="11 % of the query aligned"),
    pytest.param(TEMPLATE_QUERY, 0, 45, 0, id="subsequence of 96 % of the query"),  # DuplicateError over 0.95
    pytest.param(TEMPLATE_QUERY, 0, 44, 1, id="subsequence of 94 % of the query"),
])
def test_deepmind_prefilter_limits(query, start, length, found, kalign):
    """Each of DeepMind's three prefilter checks at its limit, against DeepMind's 2.3.2 featurizer; the fork
    (deepmind_prefilter=False) keeps every one of these hits."""
    hits = [hand_hit(query, start, length)]
    for deepmind_prefilter in (True, False):
        settings = TemplateConfig(max_template_date=LATE.max_template_date, kalign_binary=kalign,
                                  deepmind_prefilter=deepmind_prefilter)
        ours, our_found = featurise_hits(query, hits, MMCIF_DIR, settings, af_templates.HmmsearchHitFeaturizer)
        theirs, their_found = reference_features(REFERENCES[deepmind_prefilter], query, hits, kalign)
        assert our_found == their_found == (found if deepmind_prefilter else 1), deepmind_prefilter
        assert_same_features(ours, theirs)


def _differing_lines(a: list[str], b: list[str]) -> tuple[list[str], list[str]]:
    """The non-blank lines only in a and only in b, stripped."""
    only_a, only_b = [], []
    for tag, a_start, a_end, b_start, b_end in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            only_a += [line.strip() for line in a[a_start:a_end] if line.strip()]
            only_b += [line.strip() for line in b[b_start:b_end] if line.strip()]
    return only_a, only_b


def test_reference_is_the_fork_with_the_prefilter_restored():
    """The vendored DeepMind file differs from the installed fork's only by the prefilter (guards the reference
    against drift; fails too if the fork restores the prefilter itself)."""
    vendored = Path(deepmind_templates.__file__).read_text()
    deepmind = vendored[vendored.index("# Copyright 2021 DeepMind"):].splitlines()
    fork = Path(af_templates.__file__).read_text().splitlines()
    only_deepmind, only_fork = _differing_lines(deepmind, fork)
    assert only_fork == ["release_date_cutoff=max_template_date,", "max_subsequence_ratio=1.0)"]
    assert only_deepmind == [
        "if align_ratio <= min_align_ratio:",
        "raise AlignRatioError('Proportion of residues aligned to query too small. '",
        "f'Align ratio: {align_ratio}.')",
        "if duplicate:",
        "raise DuplicateError('Template is an exact subsequence of query with large '",
        "f'coverage. Length ratio: {length_ratio}.')",
        "if len(template_sequence) < 10:",
        "raise LengthError(f'Template too short. Length: {len(template_sequence)}.')",
        "release_date_cutoff=max_template_date)"]


def _alphafold_empty_templates(sequence: str) -> dict:
    featurizer = af_templates.HmmsearchHitFeaturizer(
        mmcif_dir=str(MMCIF_DIR), max_template_date=LATE.max_template_date, max_hits=20, kalign_binary_path="kalign",
        release_dates_path=None, obsolete_pdbs_path=None)
    return featurizer.get_templates(query_sequence=sequence, hits=[]).features


@pytest.mark.parametrize("case", ["hits without structures", "no hit"])
def test_no_template(case, seqres, uniref90_msa, tmp_path):
    if case == "no hit":
        one_entry = tmp_path / "one_entry.fasta"
        one_entry.write_text(f">{TEMPLATE_ENTRY}\n{TEMPLATE_QUERY}\n")
        query, sto = DESIGNED, ResidentSeqres(one_entry).search(uniref90_msa(DESIGNED))
        assert sto == ""
    else:
        query, sto = QUERY_2Q2K, seqres.search(UNIREF90_2Q2K)
        assert len(template_hits(sto, query)) == 214
    features, found = template_features(query, sto, MMCIF_DIR, LATE)
    assert found == 0
    expected = _alphafold_empty_templates(query)
    assert features.keys() == expected.keys()
    for name, value in expected.items():
        assert features[name].dtype == value.dtype and features[name].shape == value.shape, name
        np.testing.assert_array_equal(features[name], value)
    assert features["template_all_atom_positions"].shape == (1, len(query), residue_constants.atom_type_num, 3)
    processed = assert_model_accepts(query, features)
    assert not processed["template_all_atom_masks"].any()


# -- hhsearch of PDB70 (AlphaFold's other template searcher) -------------------------------------------------
@pytest.fixture(scope="module")
def pdb70(tmp_path_factory) -> Path:
    """A PDB70-like database built by `foldflow databases build hhsearch` from the seqres sample's first 40
    entries and those with an mmCIF file here."""
    from click.testing import CliRunner
    from foldflow.cli import main
    from foldflow.msa.databases import read_fasta

    debian_binary("hhsearch", "hhsuite")
    folder = tmp_path_factory.mktemp("pdb70")
    with_structures = {path.stem for path in MMCIF_DIR.glob("*.cif")}
    records = read_fasta(SEQRES)
    subset = records[:40] + [r for r in records[40:] if r[0][:4] in with_structures]
    (folder / "seqres.fasta").write_text("".join(f"{header}\n{sequence}\n" for _, header, sequence in subset))
    result = CliRunner().invoke(main, ["databases", "build", "hhsearch", str(folder / "seqres.fasta"),
                                       str(folder / "pdb70")])
    assert result.exit_code == 0 and "found itself" in result.output, result.output
    return folder / "pdb70"


def _without_run_lines(hhr: str) -> str:
    return "\n".join(line for line in hhr.splitlines() if not line.startswith(("Date", "Command")))


def test_hhsearch_equals_the_binary_run_by_hand(pdb70, uniref90_msa, tmp_path):
    """AlphaFold's HHSearch wrapper as foldflow calls it gives the .hhr of `hhsearch -maxseq 1000000` run by
    hand on the same A3M (the uniref90 MSA deduplicated, empty columns removed: pipeline.py's steps)."""
    msa = uniref90_msa(HOMOLOGUE)
    ours = TemplateSearch(TemplateConfig(engine="hhsearch", pdb70=pdb70, mmcif_dir=MMCIF_DIR)).search(msa)
    a3m = parsers.convert_stockholm_to_a3m(parsers.remove_empty_columns_from_stockholm_msa(
        parsers.deduplicate_stockholm_msa(msa)))
    (tmp_path / "query.a3m").write_text(a3m)
    subprocess.run([debian_binary("hhsearch", "hhsuite"), "-i", tmp_path / "query.a3m", "-o", tmp_path / "hand.hhr",
                    "-maxseq", "1000000", "-d", pdb70], check=True, capture_output=True)
    assert _without_run_lines(ours) == _without_run_lines((tmp_path / "hand.hhr").read_text())
    assert parsers.parse_hhr(ours)[0].name.startswith("5y2e_A")


def test_hhsearch_templates_are_featurised_by_hhsearch_rules(pdb70, uniref90_msa, kalign):
    """The close homologue gets 5y2e from PDB70 as from PDB seqres; the query itself does not (duplicate)."""
    search = TemplateSearch(TemplateConfig(engine="hhsearch", pdb70=pdb70, mmcif_dir=MMCIF_DIR,
                                           max_template_date=LATE.max_template_date))
    assert search.hits_file == "pdb_hits.hhr"
    features, found = search.featurise(HOMOLOGUE, search.search(uniref90_msa(HOMOLOGUE)))
    assert found == 1
    assert_template_is_5y2e(features)
    assert search.featurise(TEMPLATE_QUERY, search.search(uniref90_msa(TEMPLATE_QUERY)))[1] == 0


def test_hhsearch_setup_problems_are_one_line(tmp_path):
    missing = TemplateSearch(TemplateConfig(engine="hhsearch", pdb70=tmp_path / "pdb70", mmcif_dir=MMCIF_DIR))
    assert missing.setup_problem() == (
        f"no PDB70 database at {tmp_path}/pdb70 (missing pdb70_a3m.ffdata; build one with: "
        f"foldflow databases build hhsearch PDB_SEQRES_FASTA {tmp_path}/pdb70)")
    no_binary = TemplateSearch(TemplateConfig(engine="hhsearch", pdb70=tmp_path / "pdb70",
                                              hhsearch_binary="/opt/none/hhsearch"))
    assert no_binary.setup_problem().startswith("/opt/none/hhsearch: not found (install the Debian package hhsuite")


def test_alphafold_engine_searches_by_the_targets_kind(pdb70, tmp_path):
    """run_alphafold's choice: hhsearch of PDB70 for a monomer, hmmsearch of PDB seqres for a complex."""
    from conftest import prepare
    from foldflow.flow.workers import MsaResident
    from foldflow.targets import Target
    from foldflow.templates import template_searches

    settings = TemplateConfig(engine="alphafold", pdb70=pdb70, pdb_seqres=SEQRES, mmcif_dir=MMCIF_DIR)
    assert {kind: search.engine for kind, search in template_searches(settings).items()} == {
        False: "hhsearch", True: "hmmsearch"}
    stage = MsaResident(MsaConfig(templates=settings, pairing_database=None), str(tmp_path / "store"))
    monomer, monomer_features, _ = prepare(stage, Target("monomer", "", HOMOLOGUE, "test"))
    homodimer, homodimer_features, _ = prepare(stage, Target("homodimer", "", f"{HOMOLOGUE}:{HOMOLOGUE}", "test"))
    assert monomer.template_hits_file == "pdb_hits.hhr" and monomer_features.templates == 1
    assert parsers.parse_hhr(monomer.template_hits["A"])[0].name.startswith("5y2e_A")
    assert homodimer.template_hits_file == "pdb_hits.sto" and homodimer_features.templates == 2
