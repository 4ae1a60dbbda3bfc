"""A database searched as shards gives the same hits and MSA as one search over the whole of it."""

import shutil
import subprocess

import pytest
from alphafold.data import parsers

import foldflow
from foldflow.config import DatabaseConfig, MsaConfig, RunConfig, bundled_databases
from foldflow.msa.jackhmmer import ResidentDatabases
from foldflow.msa.sharded import load_shard, search_shard, sharded_jackhmmer
from conftest import DEMO_FASTA
from test_msa import ABC_QUERY

pytestmark = pytest.mark.ray

QUERIES = {
    "abc": ABC_QUERY,
    "ferredoxin": "MAYVIDADTCISCGTCAGECPVEAISAGDDAYVIDADTCIDCGTCASVCPVDAIDPE",
    "HG003686_84": "MIRDELIALANENLDIDFSEMEMTTKLSDLDIDSIDMLDFIMLIEEKFEIEFEEDELDEIETLGDIAELIESKN",
}


def sharded(database: DatabaseConfig, config: MsaConfig, count: int):
    shards = [load_shard(database, i, count) for i in range(count)]
    return lambda query_id, sequence: sharded_jackhmmer(
        query_id, sequence, database, config, lambda hmm: [search_shard(s, hmm, config) for s in shards])


def test_shards_partition_the_database():
    database = bundled_databases()[0]
    shards = [load_shard(database, i, 3) for i in range(3)]
    assert sum(len(s.sequences) for s in shards) == 1000
    names = [seq.name for s in shards for seq in s.sequences]
    assert len(set(names)) == 1000


@pytest.mark.parametrize("iterations", [1, 3])
@pytest.mark.parametrize("count", [2, 5])
def test_sharded_search_equals_unsharded(count, iterations):
    config = MsaConfig(iterations=iterations)
    whole = ResidentDatabases(config)
    for database in config.databases:
        search = sharded(database, config, count)
        for query_id, sequence in QUERIES.items():
            expected = whole.search_one(query_id, sequence, database.name)
            assert search(query_id, sequence).text == expected.text, (database.name, query_id)


def test_sharded_search_equals_the_jackhmmer_binary(tmp_path):
    binary = shutil.which("jackhmmer")
    if binary is None:
        pytest.fail("the jackhmmer binary (Debian package hmmer) is needed: `make test` installs it")
    config = MsaConfig()
    database = config.databases[0]
    search = sharded(database, config, 4)
    for query_id, sequence in QUERIES.items():
        fasta = tmp_path / f"{query_id}.fasta"
        fasta.write_text(f">{query_id}\n{sequence}\n")
        sto = tmp_path / f"{query_id}.sto"
        # AlphaFold 2.3's jackhmmer command line (alphafold/data/tools/jackhmmer.py)
        subprocess.run([binary, "-o", "/dev/null", "-A", str(sto), "--noali", "--F1", "0.0005", "--F2", "5e-05",
                        "--F3", "5e-07", "--incE", "0.0001", "-E", "0.0001", "--cpu", "1", "-N", "1",
                        str(fasta), str(database.path)], check=True)
        binary_msa = parsers.parse_stockholm(sto.read_text())
        ours = parsers.parse_stockholm(search(query_id, sequence).text)
        assert ours.descriptions == binary_msa.descriptions, query_id
        assert ours.sequences == binary_msa.sequences, query_id
        assert ours.deletion_matrix == binary_msa.deletion_matrix, query_id


@pytest.mark.slow
def test_pipeline_with_shard_actors_writes_the_same_msas(tmp_path):
    """Shard actors on Ray, with the simulated device as model: only the MSA stage is under test."""
    msas = {}
    for shards in (1, 3):
        config = RunConfig(store=str(tmp_path / f"store-{shards}"), plots=False, msa={"engine": "pyhmmer_sharded" if shards > 1 else "pyhmmer", "shards": shards},
                           relax={"models_to_relax": "none"}, model={"names": ["simulated_device_0s"]},
                           pipeline={"progress": False})
        run = foldflow.predict(DEMO_FASTA, tmp_path / f"out-{shards}", config, run_id=f"shards-{shards}")
        assert run.ok, run.failed
        msas[shards] = {str(p.relative_to(run.out_dir)): p.read_text() for p in run.out_dir.glob("*/msas/*")}
        status = foldflow.run_status(f"shards-{shards}", config.store)
    assert len(msas[1]) == 4 * 4 and msas[3] == msas[1]  # 4 targets: 3 MSAs and the template hits each
    shard_workers = foldflow.api.RunBook(foldflow.api.Store(config.store)).state("shards-3")["shard_workers"]
    assert len(shard_workers) == 9
    for database in bundled_databases():
        held = [w for w in shard_workers if w["database"] == database.name]
        assert sum(w["sequences"] for w in held) == 1000 and all(w["rss_mb"] > 0 for w in held)
    assert status["counts"] == {"ok": 4}
