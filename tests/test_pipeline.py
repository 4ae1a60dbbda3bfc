"""End to end on a local Ray: real pyhmmer search, the real AlphaFold model (random params), outputs."""

import itertools
import json

import gemmi
import numpy as np
import pytest

from foldflow.runs import RunBook
from foldflow.store import Store
from conftest import FOUR_TARGETS_IN_FLIGHT as MAX_IN_FLIGHT, SHORT_SEQUENCE

pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture
def run(four_targets_run):
    return four_targets_run


def confidence_scores(run, target: str, model: str) -> list[float]:
    """The per-residue pLDDT of one model as run_alphafold writes it (confidence_<model>.json, two decimals)."""
    return json.loads((run.out_dir / target / f"confidence_{model}.json").read_text())["confidenceScore"]


def test_every_target_is_predicted(run):
    assert run.ok, run.failed
    table = run.to_pandas().set_index("target_id")
    assert list(table.index) == ["HG003686_698", "HG003690_137", "HG003690_101", "short"]
    assert table["status"].eq("ok").all()
    assert table.loc["short", "msa_source"] == "precomputed"
    assert (table.drop(index="short")["msa_source"] == "pyhmmer").all()
    assert table.loc["HG003690_101", "msa_depth_uniref90"] == 4  # query + 3 homologues
    assert table.loc["short", "msa_depth_bfd"] > 100
    for target, row in table.iterrows():  # the summary's mean pLDDT is the mean of the written per-residue pLDDT
        assert row["mean_plddt"] == pytest.approx(np.mean(confidence_scores(run, target, row["model"])), abs=0.01)
    assert (run.out_dir / "summary.parquet").is_file() and (run.out_dir / "config.yaml").is_file()
    assert run.random_params


def _b_factors_by_residue(structure: gemmi.Structure) -> list[set[float]]:
    return [{atom.b_iso for atom in residue} for residue in structure[0][0]]


@pytest.mark.parametrize("target", ["HG003686_698", "short"])
def test_structures_carry_plddt_in_b_factors(run, target):
    folder = run.out_dir / target
    plddt = np.array(confidence_scores(run, target, "model_1_ptm_pred_0"))
    sequence = SHORT_SEQUENCE if target == "short" else None
    for name in ("ranked_0.pdb", "ranked_0.cif", "unrelaxed_model_1_ptm_pred_0.pdb"):
        structure = gemmi.read_structure(str(folder / name))
        chain = structure[0][0]
        assert len(chain) == len(plddt)
        if sequence:
            assert gemmi.one_letter_code([r.name for r in chain]) == sequence
        per_residue = _b_factors_by_residue(structure)
        assert all(len(b) == 1 for b in per_residue), "one pLDDT per residue"
        np.testing.assert_allclose([b.pop() for b in per_residue], plddt, atol=0.006)


def test_alphafold_output_layout(run):
    folder = run.out_dir / "HG003690_101"
    for name in ("ranked_0.pdb", "ranked_0.cif", "unrelaxed_model_1_ptm_pred_0.pdb", "ranking_debug.json",
                 "timings.json", "confidence_model_1_ptm_pred_0.json", "pae_model_1_ptm_pred_0.json",
                 "msas/uniref90_hits.sto", "msas/mgnify_hits.sto", "msas/small_bfd_hits.sto",
                 "RANDOM_PARAMETERS_NOT_MEANINGFUL.txt"):
        assert (folder / name).is_file(), name
    plots = run.to_pandas().set_index("target_id").loc["HG003690_101", "plots"]
    assert list(plots) == ["msa_coverage.png", "pae.png", "plddt.png"]
    assert all((folder / name).is_file() for name in plots)
    (pae,) = json.loads((folder / "pae_model_1_ptm_pred_0.json").read_text())
    assert np.array(pae["predicted_aligned_error"]).shape == (79, 79)
    assert pae["max_predicted_aligned_error"] == pytest.approx(31.75)
    # run_alphafold ranks a monomer's models by their mean pLDDT (AlphaFold 2.3's ranking_confidence)
    mean_plddt = np.mean(confidence_scores(run, "HG003690_101", "model_1_ptm_pred_0"))
    assert json.loads((folder / "ranking_debug.json").read_text()) == {
        "plddts": {"model_1_ptm_pred_0": pytest.approx(mean_plddt, abs=0.01)},
        "order": ["model_1_ptm_pred_0"]}, "run_alphafold's ranking_debug.json"
    timings = json.loads((folder / "timings.json").read_text())
    assert set(timings) == {"features", "process_features_model_1_ptm_pred_0",
                            "predict_and_compile_model_1_ptm_pred_0"}, "run_alphafold's timings.json keys"
    assert set(run.structures) == {"HG003686_698", "HG003690_137", "HG003690_101", "short"}
    assert not list(run.out_dir.glob(".*.tmp")), "no staging folders left behind"


def test_msa_of_later_targets_overlaps_model_of_earlier_ones(run):
    table = run.to_pandas()
    spans = {row.target_id: row for row in table.itertuples()}
    overlapping = [
        (earlier, later) for earlier, later in itertools.permutations(spans, 2)
        if spans[later].started_msa < spans[earlier].ended_model
        and spans[later].ended_msa > spans[earlier].started_model
        and spans[earlier].started_msa < spans[later].started_msa]
    assert overlapping, "no MSA search ran while the model worked on another target"


def test_driver_keeps_a_bounded_number_of_targets_in_flight(run):
    table = run.to_pandas()
    events = sorted([(t, +1) for t in table["started_msa"]] + [(t, -1) for t in table["ended_output"]],
                    key=lambda e: (e[0], e[1]))
    in_flight = list(itertools.accumulate(change for _, change in events))
    assert max(in_flight) == MAX_IN_FLIGHT


def test_the_model_compiles_once_per_bucket(run):
    table = run.to_pandas()
    assert sorted(set(table["bucket"])) == [64, 96]
    (worker,) = RunBook(Store(run.out_dir.parent / "store")).state(run.run_id)["model_workers"]
    assert worker["model_programs"] == {"model_1_ptm": 2}, "one model program per bucket (JAX's own cache count)"
    assert worker["params_load_seconds"]["model_1_ptm"] > 0
    for bucket, group in table.sort_values("started_model").groupby("bucket"):
        first = group.iloc[0]
        assert first["xla_compiles"] + first["xla_cache_hits"] > 0, f"bucket {bucket}: its first target builds"
    assert set(table["model_worker"]) == {worker["pid"]}
    loaded = table[table["params_load_seconds"] > 0]
    assert len(loaded) == 1, "parameters load once per actor, on its first target"
    assert loaded["params_load_seconds"].iloc[0] == worker["params_load_seconds"]["model_1_ptm"]
