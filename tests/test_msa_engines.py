"""HH-suite and MMseqs2 engines on databases foldflow builds here, against the binaries run by hand.

The databases are built during the test (``foldflow databases build``) from the bundled mini FASTA files:
an HH-suite database from part of the BFD sample, MMseqs2 databases in ColabFold's layout from the UniRef90,
MGnify and UniProt samples. References are the Debian binaries run by hand with the flags AlphaFold 2.3
(hhblits) and ColabFold's ``colabfold_search`` (mmseqs) use, written out here independently of foldflow.
"""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from foldflow.cli import main
from foldflow.config import BUNDLED_DB_DIR, DatabaseConfig, MsaConfig, TemplateConfig
from foldflow.msa.alignment import QUERY_NAME
from foldflow.msa.databases import read_fasta
from foldflow.msa.hhblits import HHblitsEngine
from foldflow.msa.mmseqs import MMseqs2Engine
from foldflow.stage_workers import MsaStage, StepJob
from foldflow.stages import run_chains
from foldflow.targets import Target
from conftest import ROOT, debian_binary

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


COLABFOLD_SEARCH = """\
set -e
mmseqs createdb query.fasta qdb
mmseqs search qdb {db} res tmp --threads 1 --num-iterations 3 --db-load-mode {load} -a -e 0.1 --max-seqs 10000 -s 8.0
mmseqs mvdb tmp/latest/profile_1 prof_res
mmseqs lndb qdb_h prof_res_h
mmseqs expandaln qdb {db}_seq res {db}_aln res_exp --db-load-mode {load} --threads 1 --expansion-mode 0 -e inf \
  --expand-filter-clusters 1 --max-seq-id 0.95
mmseqs align prof_res {db}_seq res_exp res_exp_realign --db-load-mode {load} -e 10 --max-accept 100000 --threads 1 \
  --alt-ali 10 -a
mmseqs filterresult qdb {db}_seq res_exp_realign res_exp_realign_filter --db-load-mode {load} --qid 0 --qsc 0.8 \
  --diff 0 --threads 1 --max-seq-id 1.0 --filter-min-enable 100
mmseqs result2msa qdb {db}_seq res_exp_realign_filter uniref.a3m --msa-format-mode 6 --db-load-mode {load} \
  --threads 1 --filter-msa 1 --filter-min-enable 1000 --diff 3000 --qid 0.0,0.2,0.4,0.6,0.8,1.0 --qsc 0 \
  --max-seq-id 0.95
mmseqs unpackdb uniref.a3m out --unpack-name-mode 0 --unpack-suffix .a3m
"""


@pytest.mark.parametrize("name, load", [("uniref30", 2), ("colabfold_envdb", 0)])
def test_mmseqs_engine_equals_colabfold_search_run_by_hand(databases, binaries, tmp_path, name, load):
    """colabfold_search's calls for the UniRef branch (filter on), as its search.py makes them; load mode 2
    where the database has an index, 0 where it has none (as colabfold_search decides)."""
    database = DatabaseConfig(name=name, path=databases[name], engine="mmseqs2")
    ours = MMseqs2Engine(MsaConfig(databases=[database])).search(QUERY, database)

    (tmp_path / "query.fasta").write_text(f">{QUERY_NAME}\n{QUERY}\n")
    (tmp_path / "out").mkdir()
    subprocess.run(["bash", "-c", COLABFOLD_SEARCH.format(db=databases[name], load=load)], cwd=tmp_path,
                   check=True, capture_output=True)
    hand = (tmp_path / "out" / "0.a3m").read_text().replace("\x00", "")
    assert ours.format == "a3m" and ours.text == hand
    assert ours.depth >= 2, "the database holds homologues of the query"


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
    MsaStage(config, str(tmp_path / "store"), upcoming=[(first, False)]).prepare(StepJob(Target("a", "", first, "test")))
    stage = MsaStage(config, str(tmp_path / "store"), upcoming=[(second, False), (first, False)])
    stage.prepare(StepJob(Target("b", "", second, "test")))
    assert stage.info()["mmseqs_queries"] == 1


def test_complex_chains_are_paired_from_mmseqs_uniprot_hits(databases, tmp_path):
    """A heterodimer's chains searched with MMseqs2 against UniProt are paired by species, as
    AlphaFold-Multimer pairs them (rows with residues in both chains beyond the query)."""
    config = MsaConfig(databases=[DatabaseConfig(name="uniref30", path=databases["uniref30"], engine="mmseqs2")],
                       pairing_database=DatabaseConfig(name="uniprot", path=databases["uniprot"], engine="mmseqs2"),
                       templates=TemplateConfig(enabled=False))
    target = Target("heterodimer", "", f"{WALKER_A}:{SIGNATURE}", "test")
    stage = MsaStage(config, str(tmp_path / "store"), upcoming=run_chains([target]))
    placed, features = stage.prepare(StepJob(target))
    assert placed.record.msa_source == "mmseqs2"
    assert stage.info()["mmseqs_calls"] == 2, "one call per database for both chains"
    msa = features["msa"][features["msa_mask"].any(axis=1)]
    gap = 21
    both = (msa[:, :len(WALKER_A)] != gap).any(axis=1) & (msa[:, len(WALKER_A):] != gap).any(axis=1)
    assert both[0] and both.sum() > 1, "species-paired rows follow the query row"
    np.testing.assert_array_equal(features["asym_id"], [1] * len(WALKER_A) + [2] * len(SIGNATURE))


def test_features_hold_every_engines_rows(databases, tmp_path):
    """The three engines' alignments all reach the features: their depth is the number of distinct aligned
    rows over the alignments (AlphaFold's make_msa_features keeps the first of identical rows)."""
    stage = MsaStage(three_engine_config(databases), str(tmp_path / "store"))
    placed, features = stage.prepare(StepJob(Target("t", "", QUERY, "test")))
    prepared = placed.record
    assert prepared.msa_source == "hhblits+mmseqs2+pyhmmer"
    rows = set()
    for alignment in prepared.msas["A"]:
        msa = alignment.parse()
        assert msa.sequences[0] == QUERY, alignment.database
        rows.update(msa.sequences)
    assert len(prepared.msas["A"]) == 4 and all(prepared.msa_depths[db] >= 2 for db in ("bfd", "uniref30"))
    assert prepared.feature_msa_depth == int(features["num_alignments"][0]) == len(rows)


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
