"""FASTA parsing and validation: every bad input is one clear line naming the record."""

import re

import pytest

from foldflow.targets import InputError, load_targets, safe_target_id

PROTEIN = "MAYVIDADTCISCGTCAGECPVEAISAGDDAYVIDADTCIDCGTCASVCPVDAIDPE"


def only_error(batch) -> str:
    assert len(batch.invalid) == 1, batch.invalid
    return batch.invalid[0].message()


def test_valid_records_are_parsed_and_hashed(write_fasta):
    path = write_fasta(f">sp|P1|ONE first protein\n{PROTEIN[:30]}\n{PROTEIN[30:]}*\n>two\n{PROTEIN.lower()}\n")
    batch = load_targets(path)
    assert not batch.invalid
    assert [t.id for t in batch.targets] == ["sp_P1_ONE", "two"]
    assert batch.targets[0].sequence == PROTEIN  # joined lines, stop codon removed
    assert batch.targets[1].sequence == PROTEIN  # upper-cased
    assert batch.targets[0].sequence_hash == batch.targets[1].sequence_hash
    assert batch.targets[0].description == "sp|P1|ONE first protein"


@pytest.mark.parametrize("content, expected", [
    (b"", "file is empty"),
    (b"  \n\n", "file is empty"),
    (b"MKV\n>a\nMKV\n", "no FASTA header"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "binary file"),
    (b">a\nMK\xff\xfeV\n", "not UTF-8"),
])
def test_unreadable_files_raise_one_line(write_fasta, content, expected):
    with pytest.raises(InputError, match=expected) as error:
        load_targets(write_fasta(content))
    assert "\n" not in str(error.value)


def test_missing_file_and_empty_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_targets(tmp_path / "absent.fasta")
    with pytest.raises(InputError, match="no FASTA files"):
        load_targets(tmp_path)


@pytest.mark.parametrize("record, expected", [
    (">empty\n\n", "empty sequence"),
    (">bad\nMKV1LJ\n", r"not amino acids: '1', 'J' \(first at position 4\)"),
    (">dna\nACGTACGTACGTTGCA\n", "nucleotide sequence"),
    (">../../etc/passwd\nMKV\n", "outside the output directory"),
    (">/abs/path\nMKV\n", "outside the output directory"),
    (">...\nMKV\n", "no characters usable"),
    ("> \nMKV\n", "empty header"),
])
def test_invalid_records_name_target_and_problem(write_fasta, record, expected):
    path = write_fasta(f">good\n{PROTEIN}\n{record}")
    batch = load_targets(path)
    message = only_error(batch)
    assert str(path) in message and "\n" not in message
    assert re.search(expected, message), message
    assert [t.id for t in batch.targets] == ["good"]


def test_too_long_sequence(write_fasta):
    batch = load_targets(write_fasta(f">short\nMKV\n>long\n{PROTEIN}\n"), max_length=30)
    assert "target 'long': sequence of 57 residues is longer than the maximum of 30" in only_error(batch)


def test_duplicate_ids(write_fasta):
    same = load_targets(write_fasta(f">a\n{PROTEIN}\n>a\n{PROTEIN}\n"))
    assert [t.id for t in same.targets] == ["a"] and not same.invalid
    different = load_targets(write_fasta(f">a\n{PROTEIN}\n>b\nMKV\n>a\nMKW\n"))
    assert [t.id for t in different.targets] == ["b"]
    assert len(different.invalid) == 2
    assert all("duplicate id 'a' with a different sequence" in bad.error for bad in different.invalid)


def test_ids_that_collide_after_normalising_are_duplicates(write_fasta):
    batch = load_targets(write_fasta(f">x|1\n{PROTEIN}\n>x:1\nMKV\n"))
    assert not batch.targets
    assert {bad.id for bad in batch.invalid} == {"x_1"}


def test_directory_of_fasta_files(tmp_path):
    (tmp_path / "b.fasta").write_text(f">b\n{PROTEIN}\n")
    (tmp_path / "a.fa").write_text(f">a\n{PROTEIN}\n")
    (tmp_path / "notes.txt").write_text("not fasta")
    assert [t.id for t in load_targets(tmp_path).targets] == ["a", "b"]


@pytest.mark.parametrize("raw, safe", [
    ("sp|P12345|NAME_HUMAN", "sp_P12345_NAME_HUMAN"),
    ("1abc/A", "1abc_A"),
    ("T1024 chain A", "T1024_chain_A"),
    ("a..b", "a..b"),
])
def test_safe_target_id(raw, safe):
    assert safe_target_id(raw) == safe


def test_complexes_from_colons_and_from_tagged_records(write_fasta):
    path = write_fasta(f">homo\n{PROTEIN[:20]}:{PROTEIN[:20]}\n>a complex=hetero\n{PROTEIN[:15]}\n"
                       f">mono\n{PROTEIN[:12]}\n>b complex=hetero\n{PROTEIN[20:40]}*\n")
    batch = load_targets(path)
    assert not batch.invalid
    by_id = {t.id: t for t in batch.targets}
    assert [t.id for t in batch.targets] == ["homo", "hetero", "mono"], "a complex takes its first chain's place"
    assert by_id["homo"].chains == (PROTEIN[:20], PROTEIN[:20]) and by_id["homo"].length == 40
    assert by_id["hetero"].chains == (PROTEIN[:15], PROTEIN[20:40]) and by_id["hetero"].is_complex
    assert by_id["hetero"].description == "hetero: a complex=hetero | b complex=hetero"
    assert not by_id["mono"].is_complex and by_id["mono"].chains == (PROTEIN[:12],)


@pytest.mark.parametrize("record, expected", [
    (f">c\n{PROTEIN[:20]}:\n", "target 'c': chain B: empty sequence"),
    (f">c\n{PROTEIN[:20]}:ACGTACGTACGTACGT\n", "target 'c': chain B: looks like a nucleotide sequence"),
    (f">c\n{PROTEIN[:20]}:MK1V\n", "target 'c': chain B: characters that are not amino acids: '1'"),
    (">c\n" + ":".join([PROTEIN[:5]] * 63) + "\n", "target 'c': 63 chains, more than the 62 AlphaFold can name"),
    (f">c\n{PROTEIN[:30]}:{PROTEIN[:30]}\n",
     "target 'c': complex of 60 residues in 2 chains is longer than the maximum of 50 (max_length)"),
    (f">x complex=c\n{PROTEIN[:20]}\n>y complex=c\nMK-V\n",
     "target 'c': chain 'y': characters that are not amino acids: '-'"),
])
def test_bad_complexes_get_one_line_naming_target_and_chain(write_fasta, record, expected):
    batch = load_targets(write_fasta(f">ok\n{PROTEIN[:40]}\n{record}"), max_length=50)
    message = only_error(batch)
    assert expected in message and "\n" not in message
    assert [t.id for t in batch.targets] == ["ok"], "the other targets stay"
