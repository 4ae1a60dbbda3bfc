"""MSA search with real pyhmmer on the bundled real mini databases, and precomputed MSAs."""

import shutil

import pytest

from foldflow.config import MsaConfig, bundled_databases
from foldflow.alignment import Alignment, MsaMismatchError
from foldflow.msa.jackhmmer import ResidentDatabases
from foldflow.msa.precomputed import load_precomputed
from conftest import DATA, SHORT_SEQUENCE  # noqa: F401 (imported from here by other tests)

# An ABC-transporter fragment (LSGGQ signature) from proteome_938293.
ABC_QUERY = "MSLSGGQKQRLTIALALLSDKEIIILDEPTSGLDFKNMIIVSEAIKELAKKSNKVVIVVSHDYEFLNTVADGIYEMAWK"


@pytest.fixture(scope="module")
def databases():
    return ResidentDatabases(MsaConfig())


def test_search_finds_the_expected_homologues(databases):
    by_db = {a.database: a for a in databases.search("abc", ABC_QUERY)}
    assert list(by_db) == ["uniref90", "small_bfd", "mgnify"]
    uniref = by_db["uniref90"].parse()
    assert uniref.sequences[0] == ABC_QUERY  # query first, as jackhmmer -A writes it
    assert uniref.descriptions[1:] == [
        "UniRef90_A0A2K9NRQ2/154-220", "UniRef90_A0A6B3SK05/497-561", "UniRef90_A0A2E4DAR7/442-502"]
    # every UniRef90 homologue of an ABC-transporter fragment is an ABC transporter
    assert by_db["uniref90"].text.count("ABC transporter") == 3
    assert by_db["mgnify"].depth == 9 and by_db["small_bfd"].depth == 3


def test_unrelated_query_gets_query_only_msa(databases):
    poly = "GSGSGSGSGSGSGSGSGSGS"
    for alignment in databases.search("poly", poly):
        assert alignment.parse().sequences == [poly]


def test_hit_limit_uses_alphafold_truncation():
    dbs = [db.model_copy(update={"max_hits": 2}) if db.name == "mgnify" else db for db in bundled_databases()]
    limited = ResidentDatabases(MsaConfig(databases=dbs)).search("abc", ABC_QUERY)
    assert {a.database: a.depth for a in limited}["mgnify"] == 2


def test_missing_database_is_a_clear_error(tmp_path):
    config = MsaConfig(databases=[{"name": "uniref90", "path": tmp_path / "nope.fasta"}])
    with pytest.raises(FileNotFoundError, match="database 'uniref90': no such file"):
        ResidentDatabases(config).search("q", "MKV")


def test_precomputed_alphafold_layout_is_accepted(tmp_path):
    shutil.copytree(DATA / "msas" / "short", tmp_path / "short")
    alignments = load_precomputed(tmp_path, "short", SHORT_SEQUENCE, {"uniref90": 10_000, "mgnify": 501})
    assert {a.database: a.format for a in alignments} == {"bfd": "a3m", "mgnify": "sto", "uniref90": "sto"}
    assert all(a.parse().sequences[0] == SHORT_SEQUENCE for a in alignments)
    assert {a.database: a.depth for a in alignments}["bfd"] > 100


def test_precomputed_single_a3m_is_accepted(tmp_path):
    shutil.copy(DATA / "msas" / "short" / "bfd_uniclust_hits.a3m", tmp_path / "short.a3m")
    (alignment,) = load_precomputed(tmp_path, "short", SHORT_SEQUENCE, {})
    assert alignment.database == "custom" and alignment.format == "a3m"


def test_precomputed_msa_of_another_sequence_is_refused(tmp_path):
    shutil.copytree(DATA / "msas" / "short", tmp_path / "short")
    mutated = SHORT_SEQUENCE[:10] + "W" + SHORT_SEQUENCE[11:]
    with pytest.raises(MsaMismatchError, match="does not match the target sequence .* position 11"):
        load_precomputed(tmp_path, "short", mutated, {})


def test_no_precomputed_files_for_target(tmp_path):
    assert load_precomputed(tmp_path, "other", "MKV", {}) == []


def test_alignment_file_names_follow_alphafold():
    assert Alignment("uniref90", "sto", "").file_name == "uniref90_hits.sto"
    assert Alignment("bfd", "a3m", "").file_name == "bfd_uniref_hits.a3m"
    assert Alignment("custom", "a3m", "").file_name == "custom_hits.a3m"
