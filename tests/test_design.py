"""The design workload's stages: backbones, ProteinMPNN (real weights), refolding comparison.

References: ideal backbone geometry (bond lengths, φ/ψ of an α-helix), ProteinMPNN's published native
sequence recovery (about half of the positions), the Pace-Scholtz helix propensity scale, TM-align's own
score for a structure against itself and a moved copy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from foldflow.config import DesignConfig
from foldflow.design.backbones import Backbone, BundleParameters, helical_bundle, read_backbone
from foldflow.design.refold import compare
from foldflow.design.sources import backbone, bundle_parameters
from conftest import ROOT

NATIVES = ROOT / "examples" / "natives"
# Pace & Scholtz (1998) helix propensity, kcal/mol relative to Ala (lower: more helix-favouring).
HELIX_PROPENSITY = {"A": 0.0, "L": 0.21, "R": 0.21, "M": 0.24, "K": 0.26, "Q": 0.39, "E": 0.40, "I": 0.41,
                    "W": 0.49, "S": 0.50, "Y": 0.53, "F": 0.54, "H": 0.61, "V": 0.61, "N": 0.65, "T": 0.66,
                    "C": 0.68, "D": 0.69, "G": 1.0, "P": 3.16}


def dihedral(a, b, c, d) -> float:
    b0, b1, b2 = a - b, (c - b) / np.linalg.norm(c - b), d - c
    v, w = b0 - b0 @ b1 * b1, b2 - b2 @ b1 * b1
    return math.degrees(math.atan2(np.cross(b1, v) @ w, v @ w))


# -- backbones ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("params", [BundleParameters(), BundleParameters(helices=3, helix_length=25,
                                                                         supercoil_radius=6.6),
                                    BundleParameters(helices=2, helix_length=14, supercoil_radius=4.9,
                                                     supercoil_pitch=120.0)])
def test_helical_bundle_has_ideal_helices_closed_loops_and_no_clash(params):
    bundle = helical_bundle(params)
    coords, helix = bundle.coords, bundle.helix_mask
    assert helix.sum() == params.helices * params.helix_length
    ca_steps = np.linalg.norm(np.diff(bundle.ca, axis=0), axis=1)
    assert ca_steps.min() > 3.4 and ca_steps.max() < 3.9, "one chain: loops closed at CA-CA distance"
    inner = np.flatnonzero(helix[1:-1] & helix[:-2] & helix[2:]) + 1
    n, ca, c = coords[:, 0], coords[:, 1], coords[:, 2]
    np.testing.assert_allclose(np.linalg.norm(n - ca, axis=1)[inner], 1.458, atol=0.02)
    np.testing.assert_allclose(np.linalg.norm(c - ca, axis=1)[inner], 1.525, atol=0.02)
    bonded = inner[np.isin(inner + 1, inner)]
    np.testing.assert_allclose(np.linalg.norm(n[bonded + 1] - c[bonded], axis=1), 1.329, atol=0.06)
    phi = [dihedral(c[i - 1], n[i], ca[i], c[i]) for i in inner]
    psi = [dihedral(n[i], ca[i], c[i], n[i + 1]) for i in inner]
    assert abs(np.mean(phi) + 57.8) < 4 and abs(np.mean(psi) + 47.0) < 4, "right-handed α-helices"
    far = np.abs(np.subtract.outer(np.arange(len(bundle)), np.arange(len(bundle)))) > 2
    distances = np.linalg.norm(bundle.ca[:, None] - bundle.ca[None], axis=2)
    assert distances[far].min() > 4.5, "no two residues clash"
    axis_distance = np.linalg.norm(ca[helix][:, :2], axis=1)
    assert abs(axis_distance.mean() - params.supercoil_radius) < 0.6, "helices around the supercoil radius"


def test_backbones_are_a_function_of_the_design_index():
    config = DesignConfig()
    first, again, other = backbone(3, config), backbone(3, config), backbone(4, config)
    np.testing.assert_array_equal(first.coords, again.coords)
    assert first.params != other.params
    params = bundle_parameters(3, config)
    space = config.bundle
    assert params.helices in space.helices
    assert space.helix_length[0] <= params.helix_length <= space.helix_length[1]
    low, high = space.supercoil_radius[params.helices]
    assert low <= params.supercoil_radius <= high


def test_backbone_read_from_a_file_and_written_as_pdb():
    native = read_backbone(NATIVES / "2rbg.pdb")
    assert native.coords.shape == (123, 4, 3)  # 124 residues, one without all of N, CA, C, O
    assert native.pdb_text.count(" CA ") >= 123
    again = Backbone.from_pdb(native.to_pdb(), "again")
    np.testing.assert_allclose(again.coords, native.coords, atol=1e-3)


# -- ProteinMPNN ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mpnn():
    from foldflow.design.mpnn import ProteinMPNN

    return ProteinMPNN("v_48_020")


@pytest.mark.parametrize("native", ["2rbg.pdb"])
def test_mpnn_recovers_about_half_of_native_sequences(mpnn, native):
    """ProteinMPNN's paper reports about 52 % median recovery on native single-chain backbones at low
    temperature (chance: about 6 %); these chains, taken out of their complexes, give 40-45 %."""
    designs = mpnn.design(read_backbone(NATIVES / native).pdb_text, 8, temperature=0.1, seed=0)
    recovery = np.mean([d.recovery for d in designs])
    assert 0.35 <= recovery <= 0.65, recovery
    assert all(np.isfinite(d.score) and d.score > 0 for d in designs)


def test_padding_to_a_multiple_of_32_residues_changes_no_designed_sequence(mpnn):
    """Backbones are padded with masked residues so that JAX compiles once per 32 residues, not per length."""
    from foldflow.design.mpnn import ProteinMPNN

    native = read_backbone(NATIVES / "4zey.cif").pdb_text  # 84 residues, padded to 96
    padded = mpnn.design(native, 3, temperature=0.1, seed=0)
    unpadded = ProteinMPNN("v_48_020", pad_multiple=1).design(native, 3, temperature=0.1, seed=0)
    assert [d.sequence for d in padded] == [d.sequence for d in unpadded]
    assert [d.score for d in padded] == pytest.approx([d.score for d in unpadded], abs=1e-5)
    assert [d.recovery for d in padded] == pytest.approx([d.recovery for d in unpadded], abs=1e-6)


def test_mpnn_keeps_fixed_positions_and_omits_amino_acids(mpnn):
    native = read_backbone(NATIVES / "2rbg.pdb")
    own = "".join(line[17:20] for line in native.pdb_text.splitlines() if line[12:16] == " CA ")
    from alphafold.common import residue_constants

    own = "".join(residue_constants.restype_3to1.get(own[i:i + 3], "X") for i in range(0, len(own), 3))
    designs = mpnn.design(native.pdb_text, 4, temperature=0.3, omit_aa="AEKL", fixed_positions="1-10", seed=1)
    for d in designs:
        assert d.sequence[:10] == own[:10]
        assert not set(d.sequence[10:]) & set("AEKL")


def test_designs_on_helical_bundles_are_helix_rich(mpnn):
    """Sequences designed on generated bundles favour helices at the helix positions: their mean Pace-Scholtz
    propensity is far below that of the 20 amino acids in equal parts (0.64 kcal/mol)."""
    uniform = np.mean(list(HELIX_PROPENSITY.values()))
    for index in range(1):
        bundle = backbone(index, DesignConfig())
        for design in mpnn.design(bundle.to_pdb(), 2, temperature=0.1, omit_aa="C", seed=index):
            helical = [HELIX_PROPENSITY[aa] for aa, h in zip(design.sequence, bundle.helix_mask) if h]
            assert np.mean(helical) < 0.45 < uniform, (design.sequence, np.mean(helical))


# -- refolding and comparison -------------------------------------------------------------------------------
def test_tm_align_scores_a_backbone_against_itself_and_a_moved_copy():
    bundle = helical_bundle(BundleParameters())
    sequence = "A" * len(bundle)
    assert compare(bundle, sequence, bundle.ca) == pytest.approx((1.0, 0.0), abs=1e-3)
    angle = 0.7
    rotation = np.array([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]])
    moved = bundle.ca @ rotation.T + np.array([10.0, -4.0, 3.0])
    assert compare(bundle, sequence, moved) == pytest.approx((1.0, 0.0), abs=1e-3)
    bent = bundle.ca.copy()
    bent[len(bent) // 2:] += np.array([6.0, 0.0, 0.0])
    tm_score, rmsd = compare(bundle, sequence, bent)
    assert tm_score < 0.9 and rmsd > 1.0
