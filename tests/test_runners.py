"""The in-process runner writes the Ray pipeline's bytes, for a monomer and complexes with relaxation; a chain
two complexes in flight share is searched once; renamed records recompute nothing."""

import os
import re

import pytest

import foldflow
from foldflow.runs import RunBook
from foldflow.store import Store
from conftest import DEMO_FASTA, small_run_config
from test_runs import files_without_timings, ledger

pytestmark = [pytest.mark.slow, pytest.mark.ray]

WALKER_A = "YKGEIFALLGASGCGKSTLLRMLAGFEQPS"  # E. coli PotA residues 43-72 (tests/data/multimer)
SIGNATURE = "HQLSGGQRQRVALARSLAKRPKLL"  # PotA residues 148-171
TRP_CAGE = "NLYIQWLKDGGPSSGRPPPS"  # PDB 1L2Y
# Both heterodimers start with SIGNATURE and are admitted together (input order)
COMPLEXES = f">walker\n{SIGNATURE}:{WALKER_A}\n>cage\n{SIGNATURE}:{TRP_CAGE}\n"


def target_files(folder, target_id):
    """Every file of a target's folder but timings.json (seconds differ from run to run)."""
    return files_without_timings(folder / target_id)


@pytest.fixture(scope="module")
def two_targets(tmp_path_factory):
    fasta = tmp_path_factory.mktemp("input") / "two.fasta"
    fasta.write_text("".join(">" + r for r in DEMO_FASTA.read_text().split(">")[2:4]))
    return fasta


@pytest.fixture(scope="module")
def both_runners(tmp_path_factory, two_targets):
    """Two heterodimers with a chain in common and a monomer, each runner in its own store (both compute
    everything), the best prediction relaxed; on Ray two MSA actors."""
    work = tmp_path_factory.mktemp("runners")
    fasta = work / "targets.fasta"
    fasta.write_text(COMPLEXES + two_targets.read_text().split(">HG003690_101")[0])
    runs = {}
    for runner in ("in_process", "ray"):
        config = small_run_config(work / f"store-{runner}", runner=runner, msa_actors=2, longest_first=False)
        config.model.names = ["model_1_ptm", "model_1_multimer_v3"]
        config.model.predictions_per_model = 1
        config.relax.models_to_relax = "best"
        runs[runner] = foldflow.predict(fasta, work / runner, config)
    return work, runs


def test_in_process_runner_writes_the_bytes_of_the_ray_pipeline(both_runners):
    work, runs = both_runners
    for run in runs.values():
        table = run.to_pandas()
        assert run.ok and (table["model_calls"] == 1).all() and (table["relaxations"] == 1).all()
    for target_id in ("HG003690_137", "walker", "cage"):
        in_process = target_files(work / "in_process", target_id)
        assert in_process == target_files(work / "ray", target_id), target_id
        assert {"ranked_0.pdb", "ranked_0.cif", "relaxed_model_1_ptm_pred_0.pdb"
                if target_id == "HG003690_137" else "relaxed_model_1_multimer_v3_pred_0.pdb"} <= set(in_process)
    assert {"msas/A/uniprot_hits.sto", "msas/B/uniprot_hits.sto"} <= set(target_files(work / "ray", "cage"))
    nodes = runs["ray"].to_pandas()["model_node"]
    assert (runs["in_process"].to_pandas()["model_node"] == "local").all() and (nodes != "local").all()
    writers = RunBook(Store(work / "store-ray")).state(runs["ray"].run_id)["workers"]["writer"]
    assert writers and all(w["pid"] != os.getpid() for w in writers), "writer actors wrote, not the driver"


def test_a_chain_two_complexes_in_flight_share_is_searched_once(both_runners):
    """Each search computed once (the ledger). On these mini databases a search takes well under a second, so
    two actors searching the chain one after the other would find each database's result in the store even
    without the scheduler's sharing: what makes it one call is checked, call by call, in test_scheduler."""
    work, runs = both_runners
    for runner, run in runs.items():
        searches = {key: counts for (kind, key), counts in ledger(Store(work / f"store-{runner}")).items()
                    if kind == "msa"}
        # uniref90, mgnify, bfd for 4 distinct chains (the monomer, WALKER_A, SIGNATURE, TRP_CAGE), uniprot for 3
        assert len(searches) == 4 * 3 + 3, runner
        assert all(counts == {"started": 1, "finished": 1} for counts in searches.values()), runner
        table = run.to_pandas().set_index("target_id")
        assert table["msa_searches"].sum() == len(searches), "a shared search counts once, for the target it ran for"
        assert sorted(table["msa_searches"]) == [3, 4, 8], runner


def test_renamed_records_recompute_nothing(tmp_path, two_targets, both_runners):
    work, runs = both_runners
    first = runs["ray"]
    renamed = tmp_path / "renamed.fasta"
    names = {}
    text = two_targets.read_text()
    for i, old in enumerate(re.findall(r"^>(\S+)", text, flags=re.MULTILINE)):
        names[old] = f"renamed_{i}"
        text = text.replace(f">{old}", f">renamed_{i} another description")
    renamed.write_text(text)
    store = Store(work / "store-ray")
    computed = ledger(store)
    assert {kind for kind, _ in computed} == {"msa", "templates", "features", "prediction"}
    second = foldflow.predict(renamed, tmp_path / "second", small_run_config(work / "store-ray"))
    table = second.to_pandas().set_index("target_id")
    assert sorted(table.index) == ["renamed_0", "renamed_1"] and second.ok
    assert ledger(store) == computed, "the renamed run computed something (the store's ledger changed)"
    assert (table["msa_searches"] == 0).all() and (table["model_calls"] == 0).all() and table["cached"].all()
    for old, new in names.items():
        before, after = target_files(first.out_dir, old), target_files(second.out_dir, new)
        assert after["ranked_0.pdb"] == before["ranked_0.pdb"]
        msa = after["msas/uniref90_hits.sto"].decode()
        assert re.search(rf"^{new}\s+[A-Z-]+$", msa, flags=re.MULTILINE), "the query row carries the new name"
        assert old not in msa and re.search(rf"^{old}\s", before["msas/uniref90_hits.sto"].decode(), re.MULTILINE)
