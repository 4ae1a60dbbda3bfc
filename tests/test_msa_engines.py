"""HH-suite and MMseqs2 engines on databases foldflow builds here, against independent references.

The databases are built during the test (``foldflow databases build``) from the bundled mini FASTA files:
an HH-suite database from part of the BFD sample, MMseqs2 databases in ColabFold's layout from the UniRef90,
MGnify and UniProt samples. References: the Debian hhblits run by hand with AlphaFold 2.3's flags, and
ColabFold's own search code (``mmseqs_search_monomer`` of colabfold/mmseqs/search.py, vendored unchanged in
tests/reference/colabfold_search.py) run on the same databases with the Debian mmseqs; species pairing is
counted from the UniProt names in ColabFold's A3Ms with AlphaFold's ``msa_identifiers``.
"""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from alphafold.data import msa_identifiers, parsers
from Bio.SeqIO.FastaIO import SimpleFastaParser
from click.testing import CliRunner

from foldflow.cli import main
from foldflow.config import BUNDLED_DB_DIR, DatabaseConfig, MsaConfig, TemplateConfig
from foldflow.alignment import QUERY_NAME
from foldflow.msa.databases import read_fasta
from foldflow.msa.hhblits import HHblitsEngine
from foldflow.msa.mmseqs import MMseqs2Engine
from foldflow.flow.workers import MsaResident
from foldflow.stages import run_chains
from foldflow.targets import Target
from conftest import ROOT, debian_binary, prepare
from reference.colabfold_search import mmseqs_search_monomer

DEMO = {name: sequence for name, _, sequence in read_fasta(ROOT / "examples" / "demo.fasta")}
QUERY = DEMO["HG003690_101"]  # 79 residues with homologues in each bundled sample
WALKER_A = "YKGEIFALLGASGCGKSTLLRMLAGFEQPS"  # E. coli PotA residues 43-72: species-paired in uniprot_mini
SIGNATURE = "HQLSGGQRQRVALARSLAKRPKLL"  # PotA residues 148-171
BFD_SUBSET = 60  # cstranslate takes ~0.07 s per entry here: the HH-suite database is a sample of the sample


@pytest.fixture(scope="module")
def binaries():
    return {"hhblits": debian_binary("hhblits", "hhsuite"), "mmseqs": debian_binary("mmseqs", "mmseqs2")}


def build(engine: str, fasta: Path, prefix: Path, *options: str) -> str:
    result = CliRunner().invoke(main, ["databases", "build", engine, str(fasta), str(prefix), *options])
    assert result.exit_code == 0, result.output
    return result.output


def build_all(folder: Path) -> dict[str, str]:
    """Build the four databases into ``folder``; returns what `foldflow databases build` printed for each."""
    records = read_fasta(BUNDLED_DB_DIR / "bfd_mini.fasta")
    # the sample's first entries plus its one homologue of QUERY (found by jackhmmer: U2SVQ8_9FUSO)
    subset = records[:BFD_SUBSET] + [r for r in records[BFD_SUBSET:] if r[0] == "U2SVQ8_9FUSO"]
    (folder / "bfd_subset.fasta").write_text("".join(f"{header}\n{sequence}\n" for _, header, sequence in subset))
    outputs = {
        "bfd": build("hhblits", folder / "bfd_subset.fasta", folder / "bfd"),
        "uniref30": build("mmseqs2", BUNDLED_DB_DIR / "uniref90_mini.fasta", folder / "uniref30", "--threads", "2"),
        "colabfold_envdb": build("mmseqs2", BUNDLED_DB_DIR / "mgnify_mini.fasta", folder / "envdb", "--no-index"),
        "uniprot": build("mmseqs2", BUNDLED_DB_DIR / "uniprot_mini.fasta", folder / "uniprot", "--threads", "2"),
    }
    return outputs


@pytest.fixture(scope="module")
def databases(binaries) -> dict[str, Path]:
    """Databases built by `foldflow databases build`, each checked by its own test query.

    Built once per checkout under .cache/ (behind a lock, with a record of the build's output), keyed by the
    building code, so tests/test_msa_engines_cli.py, which runs in the Ray group on the other pytest worker,
    finds them built here instead of building them again.
    """
    code = inspect.getsource(build_all) + str(BFD_SUBSET) + (ROOT / "foldflow" / "msa" / "databases.py").read_text()
    folder = ROOT / ".cache" / "test-msa-databases" / hashlib.sha256(code.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / "build-output.json"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.is_file():
            record.write_text(json.dumps(build_all(folder)))
    outputs = json.loads(record.read_text())
    for name, output in outputs.items():
        assert "found itself" in output, (name, output)
    assert "index present" in outputs["uniref30"] and "index absent" in outputs["colabfold_envdb"]
    return {"bfd": folder / "bfd", "uniref30": folder / "uniref30", "colabfold_envdb": folder / "envdb",
            "uniprot": folder / "uniprot"}


def three_engine_config(databases: dict[str, Path]) -> MsaConfig:
    return MsaConfig(
        databases=[DatabaseConfig(name="uniref90", path=BUNDLED_DB_DIR / "uniref90_mini.fasta", max_hits=10_000),
                   DatabaseConfig(name="bfd", path=databases["bfd"], engine="hhblits"),
                   DatabaseConfig(name="uniref30", path=databases["uniref30"], engine="mmseqs2"),
                   DatabaseConfig(name="colabfold_envdb", path=databases["colabfold_envdb"], engine="mmseqs2")],
        templates=TemplateConfig(enabled=False))


# -- each wrapped tool gives what its binary gives ----------------------------------------------------------
def test_hhblits_engine_equals_hhblits_run_by_hand(databases, binaries, tmp_path):
    database = DatabaseConfig(name="bfd", path=databases["bfd"], engine="hhblits")
    ours = HHblitsEngine(MsaConfig(databases=[database], cpus_per_search=2)).search(QUERY, database)

    (tmp_path / "query.fasta").write_text(f">{QUERY_NAME}\n{QUERY}\n")
    subprocess.run([binaries["hhblits"], "-i", tmp_path / "query.fasta", "-cpu", "2", "-oa3m", tmp_path / "hand.a3m",
                    "-o", "/dev/null", "-n", "3", "-e", "0.001", "-maxseq", "1000000", "-realign_max", "100000",
                    "-maxfilt", "100000", "-min_prefilter_hits", "1000", "-d", databases["bfd"]],
                   check=True, capture_output=True)
    assert ours.format == "a3m" and ours.text == (tmp_path / "hand.a3m").read_text()
    assert ours.depth >= 2, "the database holds a homologue of the query"


# -- MMseqs2: ColabFold's own search code as the reference ----------------------------------------------------
# ColabFold passes `--prefilter-mode 0` to `mmseqs search`; MMseqs2 14 (Debian) has no such flag and only the
# k-mer prefilter that mode 0 names. ColabFold's function runs through this wrapper, which drops that flag
# (refusing any other mode) and logs every call it passes on, as a JSON list per line.
MMSEQS_WRAPPER = """\
#!{python} -I
import json, os, sys
args = sys.argv[1:]
if "--prefilter-mode" in args:
    at = args.index("--prefilter-mode")
    if args[at + 1] != "0":
        sys.exit(f"MMseqs2 14 has only the k-mer prefilter (--prefilter-mode 0), not {{args[at + 1]}}")
    del args[at:at + 2]
with open({log!r}, "a") as log:
    log.write(json.dumps(args) + "\\n")
os.execv({binary!r}, [{binary!r}, *args])
"""


class LoggedMmseqs:
    """The Debian mmseqs behind :data:`MMSEQS_WRAPPER`: ``path`` to run, ``take_calls`` what it ran since."""

    def __init__(self, binary: str, folder: Path):
        self.path, self.log = folder / "mmseqs", folder / "calls.jsonl"
        self.path.write_text(MMSEQS_WRAPPER.format(python=sys.executable, log=str(self.log), binary=binary))
        self.path.chmod(0o755)

    def take_calls(self) -> list[list[str]]:
        calls = [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []
        self.log.unlink(missing_ok=True)
        return calls


@pytest.fixture
def logged_mmseqs(binaries, tmp_path) -> LoggedMmseqs:
    (tmp_path / "wrapper").mkdir()
    return LoggedMmseqs(binaries["mmseqs"], tmp_path / "wrapper")


def colabfold_a3ms(mmseqs: LoggedMmseqs, sequences: list[str], database: Path, base: Path) -> list[str]:
    """ColabFold's A3M (NULs removed) for each of ``sequences`` against ``database``: the vendored
    ``mmseqs_search_monomer`` with ``database`` as its UniRef database and the environmental branch off
    (foldflow searches every database from the query), at foldflow's defaults (``-s 8``, one thread)."""
    base.mkdir()
    # as colabfold_search's main() makes the query database: one monomer job per sequence, named 101
    (base / "query.fas").write_text("".join(f">101\n{sequence}\n" for sequence in sequences))
    subprocess.run([mmseqs.path, "createdb", base / "query.fas", base / "qdb", "--shuffle", "0", "--dbtype", "1"],
                   check=True, capture_output=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MMSEQS_CALL_DEPTH", "1")  # ColabFold's run_mmseqs sets it in os.environ: undone after
        mmseqs_search_monomer(dbbase=database.parent, base=base, uniref_db=Path(database.name),
                              mmseqs=mmseqs.path, use_env=False, s=8, threads=1)
    return [(base / f"{i}.a3m").read_text().replace("\x00", "") for i in range(len(sequences))]


def search_calls(calls: list[list[str]]) -> list[list[str]]:
    """The logged calls from ``search`` on, the working directory (``createdb``'s output's folder) written
    WORK, without ColabFold's bookkeeping: its ``rmdb`` clean-ups and its renaming of ``uniref.a3m`` to
    ``final.a3m`` (the name of its merged result when the environmental branch runs) before unpacking."""
    work = str(Path(next(call for call in calls if call[0] == "createdb")[2]).parent)
    kept = []
    for call in calls[next(i for i, call in enumerate(calls) if call[0] == "search"):]:
        call = [arg.replace(work, "WORK").replace("WORK/final.a3m", "WORK/uniref.a3m") for arg in call]
        if call[0] != "rmdb" and call != ["mvdb", "WORK/uniref.a3m", "WORK/uniref.a3m"]:
            kept.append(call)
    return kept


def named_as_colabfold(a3m: str) -> str:
    """foldflow's A3M with its query row named as ColabFold names it (``101``: its main() names a job's
    first sequence so); the rest unchanged."""
    header, _, rest = a3m.partition("\n")
    assert header == f">{QUERY_NAME}"
    return f">101\n{rest}"


@pytest.mark.parametrize("name", ["uniref30", "colabfold_envdb"])
def test_mmseqs_engine_equals_colabfolds_own_search_code(databases, logged_mmseqs, tmp_path, name):
    """The run's four chains in one foldflow search and in ColabFold's own search code: the same mmseqs calls
    (through the index on the indexed database, `_seq`/`_aln` on the other) and the same A3M per chain."""
    database = DatabaseConfig(name=name, path=databases[name], engine="mmseqs2")
    chains = list(DEMO.values())
    engine = MMseqs2Engine(MsaConfig(databases=[database], mmseqs_binary=str(logged_mmseqs.path)),
                           upcoming=[(sequence, False) for sequence in chains])
    ours = [engine.search(sequence, database) for sequence in chains]
    our_calls = search_calls(logged_mmseqs.take_calls())

    reference = colabfold_a3ms(logged_mmseqs, chains, databases[name], tmp_path / "colabfold")
    assert our_calls == search_calls(logged_mmseqs.take_calls())
    expandaln = next(call for call in our_calls if call[0] == "expandaln")
    assert expandaln[2] == (f"{databases[name]}.idx" if name == "uniref30" else f"{databases[name]}_seq")
    assert [named_as_colabfold(alignment.text) for alignment in ours] == reference
    assert engine.calls == 1 and sum(alignment.depth for alignment in ours) >= 8, "the chains have homologues"


def test_mmseqs_searches_the_runs_chains_in_batches(databases):
    """Four chains, three per call: two mmseqs searches, each chain's MSA as if searched alone."""
    database = DatabaseConfig(name="uniref30", path=databases["uniref30"], engine="mmseqs2")
    config = MsaConfig(databases=[database], mmseqs_batch_size=3)
    chains = list(DEMO.values())
    batched = MMseqs2Engine(config, upcoming=[(sequence, False) for sequence in chains])
    alignments = [batched.search(sequence, database) for sequence in chains]
    assert (batched.calls, batched.queries) == (2, 4)

    alone = MMseqs2Engine(config)
    assert [alone.search(sequence, database).text for sequence in chains] == [a.text for a in alignments]
    assert alone.calls == 4


def test_mmseqs_batches_skip_chains_already_stored(databases, tmp_path):
    """A chain whose alignment the store holds is not searched again in a later batch."""
    database = DatabaseConfig(name="uniref30", path=databases["uniref30"], engine="mmseqs2")
    config = MsaConfig(databases=[database], pairing_database=None, templates=TemplateConfig(enabled=False))
    first, second = list(DEMO.values())[:2]
    prepare(MsaResident(config, str(tmp_path / "store"), upcoming=[(first, False)]), Target("a", "", first, "test"))
    stage = MsaResident(config, str(tmp_path / "store"), upcoming=[(second, False), (first, False)])
    prepare(stage, Target("b", "", second, "test"))
    assert stage.info()["mmseqs_queries"] == 1


def uniprot_names(fasta: Path) -> dict[str, str]:
    """Accession -> the first word of its UniProt header (``tr|Q8EYI3|Q8EYI3_LEPIN``), read from the FASTA."""
    with open(fasta) as handle:
        names = [title.split()[0] for title, _ in SimpleFastaParser(handle)]
    return {name.split("|")[1]: name for name in names}


def renamed(a3m: str, names: dict[str, str]) -> str:
    """``a3m`` with each hit's name (before the tab of its header) replaced by ``names[name]``."""
    def rename(line: str) -> str:
        name, tab, numbers = line[1:].partition("\t")
        return f">{names[name]}{tab}{numbers}" if tab else line
    return "".join(rename(line) if line.startswith(">") else line for line in a3m.splitlines(keepends=True))


def species_paired_rows(a3ms: list[str]) -> int:
    """The rows AlphaFold-Multimer pairs across chains from each chain's UniProt A3M
    (alphafold.data.msa_pairing.pair_sequences): for each species (msa_identifiers, from the UniProt name)
    found in every chain and with at most 600 rows in each, as many rows as the chain with the fewest; a
    chain's rows counted as AlphaFold 2.3's make_msa_features keeps them (a repeated aligned sequence once)."""
    per_chain = []
    for a3m in a3ms:
        msa, seen, species = parsers.parse_a3m(a3m), set(), Counter()
        for sequence, description in zip(msa.sequences, msa.descriptions):
            if sequence not in seen:
                seen.add(sequence)
                species[msa_identifiers.get_identifiers(description).species_id] += 1
        del species[""]  # the query, and hits without a UniProt name
        per_chain.append(species)
    common = set.intersection(*(set(species) for species in per_chain))
    return sum(min(c[s] for c in per_chain) for s in common if max(c[s] for c in per_chain) <= 600)


def test_complex_chains_are_paired_from_mmseqs_uniprot_hits(databases, logged_mmseqs, tmp_path):
    """A heterodimer's chains searched with MMseqs2 against UniProt: each chain's UniProt A3M is ColabFold's
    with the hits' full UniProt names (MMseqs2 shortens them to accessions; the species is in the full name),
    and the features hold the query row then exactly the species-paired rows AlphaFold-Multimer makes from
    ColabFold's hits, each with residues in both chains."""
    config = MsaConfig(databases=[DatabaseConfig(name="uniref30", path=databases["uniref30"], engine="mmseqs2")],
                       pairing_database=DatabaseConfig(name="uniprot", path=databases["uniprot"], engine="mmseqs2"),
                       templates=TemplateConfig(enabled=False))
    target = Target("heterodimer", "", f"{WALKER_A}:{SIGNATURE}", "test")
    stage = MsaResident(config, str(tmp_path / "store"), upcoming=run_chains([target]))
    prepared, _, features = prepare(stage, target)
    assert prepared.msa_source == "mmseqs2"
    assert stage.info()["mmseqs_calls"] == 2, "one call per database for both chains"

    names = uniprot_names(BUNDLED_DB_DIR / "uniprot_mini.fasta")
    reference = [renamed(a3m, names) for a3m in
                 colabfold_a3ms(logged_mmseqs, [WALKER_A, SIGNATURE], databases["uniprot"], tmp_path / "colabfold")]
    ours = [next(a for a in prepared.msas[chain] if a.database == "uniprot") for chain in ("A", "B")]
    assert [named_as_colabfold(alignment.text) for alignment in ours] == reference

    paired = species_paired_rows(reference)
    assert paired >= 5, "the UniProt sample holds both proteins of several species"
    msa = features.arrays["msa"][features.arrays["msa_mask"].any(axis=1)]
    gap = 21
    both = (msa[:, :len(WALKER_A)] != gap).any(axis=1) & (msa[:, len(WALKER_A):] != gap).any(axis=1)
    assert both.sum() == 1 + paired and both[:1 + paired].all(), "the query row, then the species-paired rows"
    np.testing.assert_array_equal(features.arrays["asym_id"], [1] * len(WALKER_A) + [2] * len(SIGNATURE))


def test_features_hold_every_engines_rows(databases, tmp_path):
    """The three engines' alignments all reach the features: their depth is the number of distinct aligned
    rows over the alignments (AlphaFold's make_msa_features keeps the first of identical rows)."""
    stage = MsaResident(three_engine_config(databases), str(tmp_path / "store"))
    prepared, built, features = prepare(stage, Target("t", "", QUERY, "test"))
    assert prepared.msa_source == "hhblits+mmseqs2+pyhmmer"
    rows = set()
    for alignment in prepared.msas["A"]:
        msa = alignment.parse()
        assert msa.sequences[0] == QUERY, alignment.database
        rows.update(msa.sequences)
    assert len(prepared.msas["A"]) == 4 and all(prepared.msa_depths[db] >= 2 for db in ("bfd", "uniref30"))
    assert built.msa_depth == int(features.arrays["num_alignments"][0]) == len(rows)


def test_databases_check_names_a_broken_database(databases, tmp_path):
    config = three_engine_config(databases)
    (tmp_path / "good.yaml").write_text("msa:\n  templates: {enabled: false}\n  databases:\n" + "".join(
        f"  - {{name: {db.name}, path: {db.path}, engine: {db.engine or 'pyhmmer'}}}\n" for db in config.databases))
    good = CliRunner().invoke(main, ["databases", "check", "--config", str(tmp_path / "good.yaml")])
    assert good.exit_code == 0, good.output
    assert good.output.count("found itself") == 3 and "uniref90:" in good.output

    broken = tmp_path / "broken"
    for path in databases["bfd"].parent.glob("bfd_*"):
        (tmp_path / path.name.replace("bfd", "broken", 1)).write_bytes(path.read_bytes())
    (tmp_path / "broken_cs219.ffindex").unlink()
    (tmp_path / "bad.yaml").write_text(f"msa:\n  databases:\n  - {{name: bfd, path: {broken}, engine: hhblits}}\n")
    bad = CliRunner().invoke(main, ["databases", "check", "--config", str(tmp_path / "bad.yaml")])
    assert bad.exit_code == 2
    assert bad.output.strip() == (f"error: database 'bfd': {broken}: not an HH-suite database for hhblits "
                                  f"(missing {broken}_cs219.ffindex)")
