"""foldflow.scoring: per-chain pLDDT and the interface scores (pDockQ) of complexes.

pDockQ is checked against the authors' own code (tests/reference/pdockq_reference.py, FoldDock's
src/pdockq.py) run on the prediction written as a PDB file with pLDDT in the B-factors, and every
field against a by-hand computation: plain loops over that file read with gemmi, sharing no code with
foldflow.scoring. The real complex is tests/data/4i6p.cif (PDB 4I6P, Par3 N-terminal domain, two chains
of 84 and 82 observed residues; copied from /work/shared/data/natives, origin aqlaboratory/openfold
@ce0029e tests/test_data/mmcifs/; PDB data, CC0).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import NamedTuple

import gemmi
import numpy as np
import pytest
from alphafold.common import protein, residue_constants

from foldflow.models.base import Prediction
from foldflow.scoring import chain_mean_plddt, interface_scores
from reference.pdockq_reference import calc_pdockq, read_pdb

NATIVE = Path(__file__).parent / "data" / "4i6p.cif"
NATIVE_CONTACTS = 35  # CB (CA for glycine) pairs of chains A and B of 4I6P within 8 Å


class ByHand(NamedTuple):
    contacts: list[tuple[int, int]]  # (residue, residue) of different chains, residues numbered over the file
    interface_plddt: float
    mean_interface_pae: float


def native_complex() -> Prediction:
    """4I6P's two chains as a prediction: pLDDT a ramp, PAE an asymmetric pattern (both exact in a PDB)."""
    structure = gemmi.read_structure(str(NATIVE))
    structure.remove_ligands_and_waters()
    structure.remove_hydrogens()
    aatype, residue_index, chain_index, positions, mask = [], [], [], [], []
    for chain_number, chain in enumerate(structure[0]):
        for residue in chain:
            one_letter = residue_constants.restype_3to1[residue.name]
            aatype.append(residue_constants.restype_order[one_letter])
            residue_index.append(residue.seqid.num - 1)
            chain_index.append(chain_number)
            residue_positions = np.zeros((residue_constants.atom_type_num, 3), dtype=np.float32)
            residue_mask = np.zeros(residue_constants.atom_type_num, dtype=np.float32)
            for atom in residue:
                if atom.name in residue_constants.atom_order:
                    residue_positions[residue_constants.atom_order[atom.name]] = atom.pos.tolist()
                    residue_mask[residue_constants.atom_order[atom.name]] = 1.0
            positions.append(residue_positions)
            mask.append(residue_mask)
    length = len(aatype)
    rows, columns = np.indices((length, length))
    return Prediction(
        model_name="native_4i6p",
        aatype=np.array(aatype, dtype=np.int32),
        residue_index=np.array(residue_index),
        atom_positions=np.stack(positions),
        atom_mask=np.stack(mask),
        plddt=(55.0 + 0.25 * np.arange(length)).astype(np.float32),
        ranking_confidence=0.0,
        chain_index=np.array(chain_index),
        pae=(0.5 * ((3 * rows + 7 * columns) % 61)).astype(np.float32),
    )


def moved(prediction: Prediction, chain: int, shift: tuple[float, float, float]) -> Prediction:
    """The prediction with one chain translated by ``shift`` Å."""
    positions = prediction.atom_positions.copy()
    positions[prediction.chain_index == chain] += np.array(shift, dtype=np.float32)
    return dataclasses.replace(prediction, atom_positions=positions)


def with_copy_moved_away(prediction: Prediction) -> Prediction:
    """Four chains: the complex, and a copy of it 100 Å away with pLDDT reversed (chains C and D)."""
    copy = moved(prediction, 0, (100.0, 0.0, 0.0))
    copy = moved(copy, 1, (100.0, 0.0, 0.0))
    length = len(prediction.aatype)
    plddt = np.concatenate([prediction.plddt, prediction.plddt[::-1]])
    rows, columns = np.indices((2 * length, 2 * length))
    return dataclasses.replace(
        prediction,
        aatype=np.tile(prediction.aatype, 2),
        residue_index=np.tile(prediction.residue_index, 2),
        atom_positions=np.concatenate([prediction.atom_positions, copy.atom_positions]),
        atom_mask=np.tile(prediction.atom_mask, (2, 1)),
        plddt=plddt,
        chain_index=np.concatenate([prediction.chain_index, prediction.chain_index + 2]),
        pae=(0.5 * ((3 * rows + 7 * columns) % 61)).astype(np.float32),
    )


def write_pdb(prediction: Prediction, path: Path) -> Path:
    """The prediction as AlphaFold writes it: a PDB file with pLDDT in every atom's B-factor."""
    structure = protein.Protein(
        aatype=prediction.aatype,
        atom_positions=prediction.atom_positions,
        atom_mask=prediction.atom_mask,
        residue_index=prediction.residue_index + 1,
        chain_index=prediction.chain_index,
        b_factors=prediction.plddt[:, None] * prediction.atom_mask,
    )
    path.write_text(protein.to_pdb(structure))
    return path


def by_hand(path: Path, pae: np.ndarray) -> ByHand:
    """Contacts, interface pLDDT and mean PAE from the PDB file: CB (CA for GLY) within 8 Å, plain loops."""
    residues = []  # (chain, residue number over the file, coordinates, pLDDT)
    number = 0
    for chain in gemmi.read_structure(str(path))[0]:
        for residue in chain:
            atom = residue.find_atom("CA" if residue.name == "GLY" else "CB", "*")
            if atom is not None:
                residues.append((chain.name, number, atom.pos.tolist(), atom.b_iso))
            number += 1
    contacts = []
    interface = {}
    for first in range(len(residues)):
        for second in range(first + 1, len(residues)):
            chain_1, number_1, position_1, plddt_1 = residues[first]
            chain_2, number_2, position_2, plddt_2 = residues[second]
            if chain_1 != chain_2 and math.dist(position_1, position_2) <= 8.0:
                contacts.append((number_1, number_2))
                interface[number_1] = plddt_1
                interface[number_2] = plddt_2
    pae_sum = 0.0
    for i, j in contacts:
        pae_sum += float(pae[i][j]) + float(pae[j][i])
    return ByHand(contacts, sum(interface.values()) / len(interface), pae_sum / (2 * len(contacts)))


def pdockq_formula(interface_plddt: float, contacts: int) -> float:
    """Bryant et al. 2022: L / (1 + exp(-k (x - x0))) + b, x = interface pLDDT * log10(contacts)."""
    x = interface_plddt * math.log10(contacts)
    return 0.724 / (1 + math.exp(-0.052 * (x - 152.611))) + 0.018


def reference_pdockq(path: Path, chains: tuple[str, str]) -> float:
    """pDockQ of two chains of a PDB file by the authors' code (8 Å, as their script runs it)."""
    chain_coords, chain_plddt = read_pdb(str(path))
    pdockq, _ppv = calc_pdockq({c: chain_coords[c] for c in chains}, {c: chain_plddt[c] for c in chains}, 8)
    return float(pdockq)


def test_native_complex_matches_the_reference_and_the_hand_computation(tmp_path):
    prediction = native_complex()
    path = write_pdb(prediction, tmp_path / "4i6p.pdb")
    scores = interface_scores(prediction)
    hand = by_hand(path, prediction.pae)

    assert scores.interface_contacts == len(hand.contacts) == NATIVE_CONTACTS
    assert scores.interface_plddt == pytest.approx(hand.interface_plddt, rel=1e-9)
    assert scores.mean_interface_pae == pytest.approx(hand.mean_interface_pae, rel=1e-9)
    assert scores.pdockq == pytest.approx(reference_pdockq(path, ("A", "B")), rel=1e-9)
    assert scores.pdockq == pytest.approx(pdockq_formula(hand.interface_plddt, len(hand.contacts)), rel=1e-9)


def test_a_residue_without_its_cb_takes_part_in_no_contact(tmp_path):
    prediction = native_complex()
    contacts = by_hand(write_pdb(prediction, tmp_path / "4i6p.pdb"), prediction.pae).contacts
    glycine = residue_constants.restype_order["G"]
    first = next(i for i, _ in contacts if prediction.aatype[i] != glycine)
    atom_mask = prediction.atom_mask.copy()
    atom_mask[first, residue_constants.atom_order["CB"]] = 0.0  # its position stays where it was
    without_cb = dataclasses.replace(prediction, atom_mask=atom_mask)
    path = write_pdb(without_cb, tmp_path / "without_cb.pdb")
    scores = interface_scores(without_cb)
    hand = by_hand(path, prediction.pae)

    assert scores.interface_contacts == len(hand.contacts) == NATIVE_CONTACTS - sum(i == first for i, _ in contacts)
    assert scores.interface_plddt == pytest.approx(hand.interface_plddt, rel=1e-9)
    assert scores.pdockq == pytest.approx(reference_pdockq(path, ("A", "B")), rel=1e-9)


def test_native_complex_without_pae_has_no_interface_pae():
    scores = interface_scores(dataclasses.replace(native_complex(), pae=None))
    assert scores.mean_interface_pae is None
    assert scores.interface_contacts == NATIVE_CONTACTS


def residue(aatype: str, ca: tuple[float, float, float], cb: tuple[float, float, float] | None):
    """One residue's aatype, atom37 positions and mask with only CA and, unless None, CB."""
    positions = np.zeros((residue_constants.atom_type_num, 3), dtype=np.float32)
    mask = np.zeros(residue_constants.atom_type_num, dtype=np.float32)
    for name, position in (("CA", ca), ("CB", cb)):
        if position is not None:
            positions[residue_constants.atom_order[name]] = position
            mask[residue_constants.atom_order[name]] = 1.0
    return residue_constants.restype_order[aatype], positions, mask


def boundary_pairs() -> Prediction:
    """Three pairs of residues of chains A and B, 100 Å from each other, built so that each pair's
    contact depends on one rule: CB-CB exactly 8 Å (CA-CA 9 Å) is a contact; glycines with CA-CA
    7 Å are a contact (they have no CB); CB-CB 8.01 Å (CA-CA 7.5 Å) is none."""
    residues = [
        residue("A", (-0.5, 0, 0), (0, 0, 0)),
        residue("G", (0, 100, 0), None),
        residue("A", (0.25, 200, 0), (0, 200, 0)),
        residue("A", (8.5, 0, 0), (8, 0, 0)),
        residue("G", (7, 100, 0), None),
        residue("A", (7.75, 200, 0), (8.01, 200, 0)),
    ]
    return Prediction(
        model_name="boundary",
        aatype=np.array([r[0] for r in residues], dtype=np.int32),
        residue_index=np.array([0, 1, 2, 0, 1, 2]),
        atom_positions=np.stack([r[1] for r in residues]),
        atom_mask=np.stack([r[2] for r in residues]),
        plddt=np.array([90.0, 80.0, 70.0, 60.0, 50.0, 40.0], dtype=np.float32),
        ranking_confidence=0.0,
        chain_index=np.array([0, 0, 0, 1, 1, 1]),
        pae=np.arange(36, dtype=np.float32).reshape(6, 6),
    )


def test_contacts_are_cb_within_8_angstrom_with_ca_for_glycine(tmp_path):
    prediction = boundary_pairs()
    scores = interface_scores(prediction)

    assert scores.interface_contacts == 2  # (0, 3) at exactly 8 Å by CB, (1, 4) glycines by CA
    assert scores.interface_plddt == pytest.approx((90 + 80 + 60 + 50) / 4, rel=1e-9)
    assert scores.mean_interface_pae == pytest.approx((3 + 18 + 10 + 25) / 4, rel=1e-9)  # pae[i, j] = 6 i + j
    assert scores.pdockq == pytest.approx(0.724 / (1 + math.exp(-0.052 * (70 * math.log10(2) - 152.611))) + 0.018,
                                          rel=1e-9)
    assert scores.pdockq == pytest.approx(reference_pdockq(write_pdb(prediction, tmp_path / "b.pdb"), ("A", "B")),
                                          rel=1e-9)


def test_a_monomer_has_no_interface_scores():
    prediction = native_complex()
    chain_a = prediction.chain_index == 0
    monomer = dataclasses.replace(
        prediction,
        aatype=prediction.aatype[chain_a],
        residue_index=prediction.residue_index[chain_a],
        atom_positions=prediction.atom_positions[chain_a],
        atom_mask=prediction.atom_mask[chain_a],
        plddt=prediction.plddt[chain_a],
        chain_index=None,
        pae=None,
    )
    assert interface_scores(monomer) is None
    assert interface_scores(dataclasses.replace(monomer, chain_index=np.zeros(chain_a.sum(), dtype=int))) is None


def test_chains_100_angstrom_apart_have_no_contacts(tmp_path):
    apart = moved(native_complex(), 1, (100.0, 0.0, 0.0))
    scores = interface_scores(apart)

    assert scores.interface_contacts == 0
    assert scores.pdockq == 0.0 == reference_pdockq(write_pdb(apart, tmp_path / "apart.pdb"), ("A", "B"))
    assert scores.interface_plddt is None
    assert scores.mean_interface_pae is None


def test_more_chains_average_pdockq_over_the_chain_pairs_in_contact(tmp_path):
    prediction = with_copy_moved_away(native_complex())
    path = write_pdb(prediction, tmp_path / "two_complexes.pdb")
    scores = interface_scores(prediction)
    hand = by_hand(path, prediction.pae)
    per_pair = [reference_pdockq(path, ("A", "B")), reference_pdockq(path, ("C", "D"))]

    assert per_pair[0] != pytest.approx(per_pair[1])
    assert scores.pdockq == pytest.approx(sum(per_pair) / 2, rel=1e-9)  # the four pairs without contact left out
    assert scores.interface_contacts == len(hand.contacts) == 2 * NATIVE_CONTACTS
    assert scores.interface_plddt == pytest.approx(hand.interface_plddt, rel=1e-9)
    assert scores.mean_interface_pae == pytest.approx(hand.mean_interface_pae, rel=1e-9)


def test_chain_mean_plddt_is_the_mean_of_each_chain():
    prediction = boundary_pairs()
    prediction = dataclasses.replace(
        prediction, plddt=np.array([91.5, 80.0, 70.25, 60.0, 50.5, 33.0], dtype=np.float32),
        chain_index=np.array([0, 0, 1, 1, 1, 1]))

    assert chain_mean_plddt(prediction) == pytest.approx({"A": (91.5 + 80.0) / 2, "B": (70.25 + 60 + 50.5 + 33) / 4})
    assert chain_mean_plddt(dataclasses.replace(prediction, chain_index=None)) == pytest.approx(
        {"A": (91.5 + 80 + 70.25 + 60 + 50.5 + 33) / 6})


def test_the_score_step_puts_the_scores_of_the_best_prediction_in_the_summary(tmp_path):
    """The workflow's score step on two predictions of the native complex: the best-ranked one's scores (the
    other's pLDDT is lowered, so it ranks second) reach the summary's columns through the write step's part."""
    from foldflow.flow.workers import StepJob, score
    from foldflow.models.base import CompileStats
    from foldflow.results import TargetResult, summary_table
    from foldflow.stages import Placed, Placement, PredictedModel

    best = native_complex()
    worse = dataclasses.replace(best, plddt=best.plddt / 2, ranking_confidence=best.ranking_confidence - 0.1)
    placed = {name: Placed(PredictedModel(name, "", p, 0, CompileStats(), 0.0, {}, (0.0, 0.0)), Placement(1, "n"))
              for name, p in (("model_2_multimer_v3_pred_0", worse), ("model_1_multimer_v3_pred_0", best))}
    scores, _ = score(None, StepJob(None, None, {"predict": placed}))
    hand = by_hand(write_pdb(best, tmp_path / "best.pdb"), best.pae)
    row = summary_table([TargetResult("4i6p", 1).with_part(scores)]).to_pylist()[0]
    assert row["pdockq"] == pytest.approx(pdockq_formula(hand.interface_plddt, len(hand.contacts)), rel=1e-9)
    assert row["interface_contacts"] == NATIVE_CONTACTS
    assert row["interface_pae"] == pytest.approx(hand.mean_interface_pae, rel=1e-9)
    assert (row["plddt_A"], row["plddt_B"]) == pytest.approx(
        [float(np.mean(best.plddt[best.chain_index == c])) for c in (0, 1)], rel=1e-9)
