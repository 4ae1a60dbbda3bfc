"""Confidence scores of a predicted structure: mean pLDDT per chain, and interface scores of complexes.

pDockQ is the score of Bryant, Pozzati & Elofsson 2022, "Improved prediction of protein-protein
interactions using AlphaFold2" (Nat Commun 13:1265), computed as their reference code
(gitlab.com/ElofssonLab/FoldDock, src/pdockq.py) computes it:

* a contact is a pair of residues of different chains whose CB atoms (CA for glycine) are at most
  8 Å apart; a residue without that atom takes part in no contact;
* x = (mean pLDDT of the interface residues, i.e. the residues of either chain in at least one
  contact, each counted once) * log10(number of contacts);
* pDockQ = L / (1 + exp(-k (x - x0))) + b with L = 0.724, x0 = 152.611, k = 0.052, b = 0.018;
* with no contact, pDockQ is 0 (the reference returns 0, not the sigmoid's floor b).

Plain numpy: no Ray, no pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
from alphafold.common import residue_constants

from foldflow.results import TargetScores
from foldflow.targets import chain_id

if TYPE_CHECKING:
    from foldflow.models.base import Prediction

CONTACT_DISTANCE = 8.0  # Å, between CB atoms (CA for glycine)
PDOCKQ_L = 0.724
PDOCKQ_X0 = 152.611
PDOCKQ_K = 0.052
PDOCKQ_B = 0.018

_CA = residue_constants.atom_order["CA"]
_CB = residue_constants.atom_order["CB"]
_GLYCINE = residue_constants.restype_order["G"]


@dataclass(frozen=True)
class InterfaceScores:
    """Interface scores of a complex (two chains or more)."""

    pdockq: float  # 0.0 without contacts
    interface_plddt: float | None  # mean pLDDT of the residues in inter-chain contacts; None without contacts
    interface_contacts: int  # inter-chain residue pairs in contact, all chain pairs together
    mean_interface_pae: float | None  # mean PAE over the contacts, i->j and j->i; None without PAE or contacts


def chain_indices(prediction: Prediction) -> np.ndarray:
    """The 0-based chain of each residue (all 0 for a prediction without chain_index)."""
    if prediction.chain_index is None:
        return np.zeros(len(prediction.aatype), dtype=np.int64)
    return np.asarray(prediction.chain_index)


def chain_mean_plddt(prediction: Prediction) -> dict[str, float]:
    """Mean pLDDT of each chain, keyed by chain id (A, B, ...) in chain order."""
    chains = chain_indices(prediction)
    plddt = np.asarray(prediction.plddt, dtype=np.float64)
    return {chain_id(int(c)): float(np.mean(plddt[chains == c])) for c in np.unique(chains)}


def interface_scores(prediction: Prediction) -> InterfaceScores | None:
    """pDockQ and interface pLDDT, contacts and PAE of a complex; None for a single chain.

    For more than two chains, pDockQ is the mean over the chain pairs in contact of each pair's
    pDockQ, each computed exactly as the two-chain reference computes it on that pair alone.
    The reference code takes two chains, and its constants were fitted on dimers, so each term
    stays on the calibrated dimer scale; pooling all contacts of the complex into one x would
    inflate log10(contacts) with the number of chains (the authors refitted the constants for
    that, as the separate score mpDockQ). Pairs without contact are left out of the mean, so a
    chain far from an interface does not dilute it; with no pair in contact pDockQ is 0.
    The other fields pool all chain pairs: every inter-chain contact, every residue in one.
    """
    chains = chain_indices(prediction)
    if len(np.unique(chains)) < 2:
        return None
    coordinates, present = representative_atoms(prediction)
    plddt = np.asarray(prediction.plddt, dtype=np.float64)
    pairs = []
    pair_scores = []
    for a, b in combinations(np.unique(chains), 2):
        contacts = chain_pair_contacts(coordinates, present, chains == a, chains == b)
        if len(contacts):
            pairs.append(contacts)
            pair_scores.append(pair_pdockq(plddt, contacts))
    if not pairs:
        return InterfaceScores(pdockq=0.0, interface_plddt=None, interface_contacts=0, mean_interface_pae=None)
    contacts = np.concatenate(pairs)
    return InterfaceScores(
        pdockq=float(np.mean(pair_scores)),
        interface_plddt=float(np.mean(plddt[np.unique(contacts)])),
        interface_contacts=len(contacts),
        mean_interface_pae=mean_contact_pae(prediction.pae, contacts),
    )


def representative_atoms(prediction: Prediction) -> tuple[np.ndarray, np.ndarray]:
    """Each residue's CB position (CA for glycine) [N, 3], and whether the residue has that atom [N]."""
    atom = np.where(np.asarray(prediction.aatype) == _GLYCINE, _CA, _CB)
    residues = np.arange(len(atom))
    coordinates = np.asarray(prediction.atom_positions, dtype=np.float64)[residues, atom]
    present = np.asarray(prediction.atom_mask)[residues, atom] > 0
    return coordinates, present


def chain_pair_contacts(
    coordinates: np.ndarray, present: np.ndarray, in_first: np.ndarray, in_second: np.ndarray
) -> np.ndarray:
    """Residue pairs [M, 2] (first chain, second chain) whose representative atoms are within 8 Å."""
    first = np.flatnonzero(in_first & present)
    second = np.flatnonzero(in_second & present)
    difference = coordinates[first, None, :] - coordinates[None, second, :]
    distances = np.sqrt(np.sum(difference**2, axis=-1))
    i, j = np.nonzero(distances <= CONTACT_DISTANCE)
    return np.stack([first[i], second[j]], axis=1)


def pair_pdockq(plddt: np.ndarray, contacts: np.ndarray) -> float:
    """pDockQ of one chain pair from its contacts [M, 2] (M >= 1) and the per-residue pLDDT."""
    interface = np.concatenate([np.unique(contacts[:, 0]), np.unique(contacts[:, 1])])
    x = np.mean(plddt[interface]) * np.log10(len(contacts))
    return float(PDOCKQ_L / (1 + np.exp(-PDOCKQ_K * (x - PDOCKQ_X0))) + PDOCKQ_B)


def mean_contact_pae(pae: np.ndarray | None, contacts: np.ndarray) -> float | None:
    """Mean PAE over the contacts in both directions (i->j and j->i); None without PAE."""
    if pae is None:
        return None
    pae = np.asarray(pae, dtype=np.float64)
    i, j = contacts[:, 0], contacts[:, 1]
    return float(np.mean(np.concatenate([pae[i, j], pae[j, i]])))


def target_scores(prediction: Prediction) -> TargetScores:
    """The summary's scores of a target's best prediction: pLDDT per chain, and a complex's interface."""
    interface = interface_scores(prediction)
    return TargetScores(
        chain_plddt=chain_mean_plddt(prediction),
        pdockq=interface.pdockq if interface else None,
        interface_plddt=interface.interface_plddt if interface else None,
        interface_contacts=interface.interface_contacts if interface else None,
        interface_pae=interface.mean_interface_pae if interface else None)
