"""A design campaign end to end on Ray Data: `foldflow design` with ProteinMPNN's real weights and AlphaFold
(random parameters) refolding and relaxing, SIGKILLed mid-campaign and resumed; streaming: the first designs
of a 100,000-design campaign come out after only a few were made; a native sequence refolded through the
stages with random parameters is labelled not meaningful."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import gemmi
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from tmtools import tm_align

from conftest import ROOT, small_model_config
from foldflow.config import DesignConfig, RunConfig
from foldflow.design.campaign import DESIGN_COLUMNS, Refolder, SequenceDesigner, backbone_rows
from foldflow.pipeline.design import DESIGNS_FOLDER, design_dataset
from foldflow.pipeline.runtime import ray_session
from foldflow.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.ray]

DESIGNS = 4
GLUCAGON = ROOT / "examples" / "natives" / "1gcn_glucagon.pdb"
GLUCAGON_SEQUENCE = "HSQGTFTSDYSKYLDSRRAQDFVQWLMNT"  # UniProt P01275 residues 53-81
SMALL_BUNDLES = {"helices": [2], "helix_length": [10, 12]}  # 2-helix hairpins of ~26 residues


def campaign_command(tmp_path) -> list[str]:
    config = {
        "store": str(tmp_path / "store"),
        "model": {"num_recycle": 0, "max_msa_clusters": 8, "max_extra_msa": 16, "bucket_lengths": [32]},
        # filters open: every design passes, so every design is relaxed
        "design": {"designs": DESIGNS, "bundle": SMALL_BUNDLES, "sequences_per_backbone": 1, "batch_size": 1,
                   "refold_model": "model_1_ptm", "min_plddt": 0.0, "min_tm_score": 0.0, "max_rmsd": 100.0,
                   "relax": True, "mpnn_actors": [1, 1], "refold_actors": [1, 1]},
    }
    (tmp_path / "design.yaml").write_text(yaml.safe_dump(config))
    return [sys.executable, "-m", "foldflow", "design", "--config", str(tmp_path / "design.yaml"),
            "--out", str(tmp_path / "out"), "--no-progress"]


def written_ids(out) -> list[str]:
    """The design ids in the campaign's Parquet files; a file that cannot be read fails the test."""
    return [design_id for path in sorted((out / DESIGNS_FOLDER).glob("*.parquet"))
            for design_id in pq.read_table(path, columns=["design_id"]).column("design_id").to_pylist()]


def ca_atoms(structure: gemmi.Structure) -> list[gemmi.Atom]:
    return [residue["CA"][0] for residue in structure[0][0]]


def ca_coordinates(structure: gemmi.Structure) -> np.ndarray:
    return np.array([atom.pos.tolist() for atom in ca_atoms(structure)])


def mean_plddt_from_b_factors(structure: gemmi.Structure) -> float:
    """AlphaFold writes each residue's pLDDT into its atoms' B-factors (two decimals)."""
    return float(np.mean([atom.b_iso for atom in ca_atoms(structure)]))


def a_design_is_written(out) -> bool:
    """Whether a design's row is in the output. Ray Data writes each Parquet file in place: while it writes,
    the file has no footer yet, which pyarrow reports as ArrowInvalid (any other error fails the test)."""
    try:
        return bool(written_ids(out))
    except pa.ArrowInvalid:
        return False


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("campaign")
    command = campaign_command(tmp_path)
    out = tmp_path / "out"
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    deadline = time.monotonic() + 600
    while not a_design_is_written(out) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=60)
    before_kill = written_ids(out)
    resumed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return tmp_path, before_kill, resumed


def test_campaign_runs_end_to_end_with_every_stage(killed_and_resumed):
    tmp_path, _, resumed = killed_and_resumed
    table = pq.read_table(tmp_path / "out" / DESIGNS_FOLDER).to_pandas()
    assert list(table.columns) == list(DESIGN_COLUMNS)
    assert sorted(table["id"]) == list(range(DESIGNS)) and table["design_id"].is_unique
    assert (table["sequence"].str.len() == table["length"]).all() and not table["sequence"].str.contains("C").any()
    assert table["mpnn_score"].between(0.1, 4.0).all(), "mean negative log-likelihood per residue"
    # TM-score and RMSD are recomputed in the native-sequence test below, from the refold's structure: these
    # rows keep the relaxed one, and Amber's small moves change TM-align's alignment of a random-parameter fold
    assert table["passed"].all() and table["relaxed"].all()
    assert table["random_params"].all() and "RANDOM parameters" in resumed.stderr
    for row in table.itertuples():  # the structure is the relaxed refold of the designed sequence
        # Amber relaxation keeps the refold's pLDDT in the B-factors: the row's mean pLDDT is theirs
        assert row.plddt == pytest.approx(mean_plddt_from_b_factors(gemmi.read_pdb_string(row.structure)), abs=0.01)
        residues = [line for line in row.structure.splitlines() if line.startswith("ATOM") and line[12:16] == " CA "]
        assert len(residues) == row.length
        assert any(line.startswith("ATOM") and line[12:16].strip() == "HA" for line in row.structure.splitlines()), \
            "Amber relaxation adds hydrogens"


def test_a_killed_campaign_resumes_without_redoing_written_designs(killed_and_resumed):
    tmp_path, before_kill, _ = killed_and_resumed
    assert 1 <= len(before_kill) < DESIGNS, "the kill came too late to test anything"
    refolds = Store(tmp_path / "store").computations("design-refold")
    assert set(refolds) == set(pq.read_table(tmp_path / "out" / DESIGNS_FOLDER).column("design_id").to_pylist())
    for design_id in before_kill:
        assert refolds[design_id]["finished"] == 1, f"{design_id} was written before the kill and refolded again"


def test_the_first_designs_of_a_huge_campaign_come_out_after_only_a_few_are_made(tmp_path):
    config = RunConfig(store=str(tmp_path / "store"), model=small_model_config(bucket_lengths=[32]),
                       design={"designs": 100_000, "bundle": SMALL_BUNDLES, "sequences_per_backbone": 1,
                               "refold_model": "simulated_device_0.01s", "mpnn_actors": [1, 1],
                               "refold_actors": [1, 1]})
    with ray_session(None, min_cpus=3):
        first = design_dataset(config, tmp_path / "out").take(3)
    assert len(first) == 3 and all(row["sequence"] for row in first)
    refolds = Store(config.store).computations("design-refold")
    assert 3 <= len(refolds) <= 100, f"{len(refolds)} of 100,000 designs refolded before the first 3 came out"


def test_a_native_sequence_refolds_through_the_stages_and_is_labelled_not_meaningful(tmp_path):
    """Every position fixed: ProteinMPNN keeps glucagon's own sequence, which the refold stage folds with
    AlphaFold's random parameters: it runs, and the row says its scores are not meaningful."""
    config = DesignConfig(backbone_files=[GLUCAGON], fixed_positions=f"1-{len(GLUCAGON_SEQUENCE)}",
                          sequences_per_backbone=1)
    designed = SequenceDesigner(config)(backbone_rows({"id": np.array([0])}, config))
    assert designed.loc[0, "sequence"] == GLUCAGON_SEQUENCE
    refolded = Refolder(config, small_model_config(bucket_lengths=[32]), str(tmp_path / "store"))(designed)
    row = refolded.iloc[0]
    assert row["random_params"]
    structure = gemmi.read_pdb_string(row["structure"])
    assert gemmi.one_letter_code([residue.name for residue in structure[0][0]]) == GLUCAGON_SEQUENCE
    assert row["plddt"] == pytest.approx(mean_plddt_from_b_factors(structure), abs=0.01)
    # TM-align (tmtools) of the written structure's CA atoms onto glucagon's, normalised by glucagon
    native = ca_coordinates(gemmi.read_structure(str(GLUCAGON)))
    aligned = tm_align(native, ca_coordinates(structure), GLUCAGON_SEQUENCE, GLUCAGON_SEQUENCE)
    assert row["tm_score"] == pytest.approx(aligned.tm_norm_chain1, abs=1e-3)
    assert row["rmsd"] == pytest.approx(aligned.rmsd, abs=0.01)
