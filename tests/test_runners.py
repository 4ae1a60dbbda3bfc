"""The in-process runner writes the Ray pipeline's bytes, for a monomer and complexes with relaxation; a chain
two complexes in flight share is searched once; renamed records recompute nothing."""

import os
import re
import shutil

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


def runner_config(store, runner="ray"):
    """A monomer model and a multimer model, one prediction each, the best relaxed; two MSA actors on Ray."""
    config = small_run_config(store, runner=runner, msa_actors=2, longest_first=False)
    config.model.names = ["model_1_ptm", "model_1_multimer_v3"]
    config.model.predictions_per_model = 1
    config.relax.models_to_relax = "best"
    return config


@pytest.fixture(scope="module")
def both_runners(tmp_path_factory):
    """Two heterodimers with a chain in common and a monomer, each runner in its own store.

    The Ray run computes everything but the relaxations, which it takes from the in-process run's store:
    OpenMM's minimisation of these random-parameter structures (every residue violated) is not reproducible
    from process to process to the last digit (4 processes relaxing one structure gave 4 different files,
    with OpenMM on one thread too), so only stored relaxations can be compared byte for byte."""
    work = tmp_path_factory.mktemp("runners")
    fasta = work / "targets.fasta"
    fasta.write_text(COMPLEXES + "".join(">" + r for r in DEMO_FASTA.read_text().split(">")[2:3]))
    runs = {"in_process": foldflow.predict(fasta, work / "in_process", runner_config(work / "store-in_process",
                                                                                      "in_process"))}
    shutil.copytree(work / "store-in_process" / "steps" / "relax", work / "store-ray" / "steps" / "relax")
    runs["ray"] = foldflow.predict(fasta, work / "ray", runner_config(work / "store-ray"))
    return work, runs


def test_in_process_runner_writes_the_bytes_of_the_ray_pipeline(both_runners):
    work, runs = both_runners
    for runner, run in runs.items():
        table = run.to_pandas()
        assert run.ok and (table["model_calls"] == 1).all(), runner
        assert (table["relaxations"] == (1 if runner == "in_process" else 0)).all(), runner
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


def test_renamed_records_recompute_nothing(tmp_path, both_runners):
    work, runs = both_runners
    first = runs["ray"]
    renamed = tmp_path / "renamed.fasta"
    names = {}
    text = (work / "targets.fasta").read_text()
    for i, old in enumerate(re.findall(r"^>(\S+)", text, flags=re.MULTILINE)):
        names[old] = f"renamed_{i}"
        text = re.sub(rf"^>{old}([ \t].*)?$", f">renamed_{i} another description", text, flags=re.MULTILINE)
    renamed.write_text(text)
    store = Store(work / "store-ray")
    computed = ledger(store)
    assert {kind for kind, _ in computed} == {"msa", "templates", "features", "prediction"}
    second = foldflow.predict(renamed, tmp_path / "second", runner_config(work / "store-ray"))
    table = second.to_pandas().set_index("target_id")
    assert sorted(table.index) == ["renamed_0", "renamed_1", "renamed_2"] and second.ok
    assert ledger(store) == computed, "the renamed run computed something (the store's ledger changed)"
    assert (table["msa_searches"] == 0).all() and (table["model_calls"] == 0).all() and table["cached"].all()
    for old, new in names.items():
        before, after = target_files(first.out_dir, old), target_files(second.out_dir, new)
        assert after["ranked_0.pdb"] == before["ranked_0.pdb"]
        path = "msas/uniref90_hits.sto" if "msas/uniref90_hits.sto" in after else "msas/A/uniref90_hits.sto"
        msa = after[path].decode()
        assert re.search(rf"^{new}\s+[A-Z-]+$", msa, flags=re.MULTILINE), "the query row carries the new name"
        assert not re.search(rf"^{old}\s", msa, re.MULTILINE)
        assert re.search(rf"^{old}\s", before[path].decode(), re.MULTILINE)
