"""scripts/check_real_weights.py: its comparison functions against known answers, and the script end to end."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from Bio.PDB import MMCIFParser, PDBParser
from Bio.SeqUtils import seq1
from Bio.SVDSuperimposer import SVDSuperimposer
from tmtools import tm_align

from conftest import ROOT, load_script

SCRIPT = ROOT / "scripts" / "check_real_weights.py"
crw = load_script("check_real_weights")


def native(target: str):
    file, chain = crw.NATIVES[target]
    return crw.read_chain(crw.NATIVES_DIR / file, chain)


def with_coordinates(chain, ca: np.ndarray):
    return crw.Chain(sequence=chain.sequence, observed=chain.observed, ca=ca)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.mark.parametrize("target", ["4zey_A", "3u8v_A"])
def test_native_against_itself_is_perfect(target):
    chain = native(target)
    result = crw.compare(chain, chain)
    assert result.compared == len(chain.observed)
    assert result.ca_rmsd == pytest.approx(0.0, abs=1e-6)
    assert result.tm_score == pytest.approx(1.0, abs=1e-6)
    assert result.lddt_ca == pytest.approx(1.0, abs=1e-6)


def test_native_against_a_noisy_copy():
    """1 Å Gaussian noise per coordinate: RMSD about sqrt(3) Å; lDDT-Ca as the noise model predicts."""
    chain = native("4zey_A")
    rng = np.random.default_rng(0)
    noisy = with_coordinates(chain, chain.ca + rng.normal(0.0, 1.0, chain.ca.shape))
    result = crw.compare(noisy, chain)
    assert result.ca_rmsd == pytest.approx(math.sqrt(3), abs=0.15)
    assert 0.5 < result.lddt_ca < 1.0
    # A distance's error is about the noise difference along the pair's direction: N(0, 2) Å^2, so
    # P(|error| < t) = erf(t / 2), averaged over the thresholds 0.5, 1, 2 and 4 Å (about 0.66).
    expected = np.mean([math.erf(t / 2) for t in (0.5, 1.0, 2.0, 4.0)])
    assert result.lddt_ca == pytest.approx(expected, abs=0.03)


def test_scores_do_not_depend_on_the_prediction_frame():
    chain = native("4zey_A")
    rng = np.random.default_rng(1)
    noisy = chain.ca + rng.normal(0.0, 1.0, chain.ca.shape)
    moved = noisy @ random_rotation(rng).T + np.array([30.0, -12.0, 7.5])
    a = crw.compare(with_coordinates(chain, noisy), chain)
    b = crw.compare(with_coordinates(chain, moved), chain)
    assert b.ca_rmsd == pytest.approx(a.ca_rmsd, abs=1e-6)
    assert b.lddt_ca == pytest.approx(a.lddt_ca, abs=1e-5)
    assert b.tm_score == pytest.approx(a.tm_score, abs=1e-3)


def test_lddt_ca_on_a_hand_computed_example():
    """Three CAs on a line, the last moved 0.7 Å: pair errors 0, 0.7, 0.7 Å score 1, 0.75, 0.75."""
    true = np.array([[0.0, 0, 0], [3.8, 0, 0], [7.6, 0, 0]])
    moved = true + np.array([[0.0, 0, 0], [0.0, 0, 0], [0.7, 0, 0]])
    assert crw.lddt_ca(moved, true) == pytest.approx((1 + 0.75 + 0.75) / 3, abs=1e-5)
    far = np.array([[0.0, 0, 0], [3.8, 0, 0], [20.0, 0, 0]])  # pairs over 15 Å in the native are not scored
    assert crw.lddt_ca(far + [[0, 0, 0], [0, 0, 0], [9.0, 0, 0]], far) == pytest.approx(1.0, abs=1e-5)


def test_residues_correspond_by_sequence_across_gaps():
    """3U8V chain A resolves 83 of 93 residues (a gap inside, a missing end): a full-length prediction
    whose resolved residues sit exactly on the native scores perfectly, the rest wherever they are."""
    chain = native("3u8v_A")
    assert len(chain.sequence) == 93 and len(chain.observed) == 83
    pred_idx, native_idx = crw.align_residues(chain.sequence, chain.observed)
    assert len(native_idx) == 83
    assert all(chain.sequence[i] == chain.observed[j] for i, j in zip(pred_idx, native_idx))
    full = np.random.default_rng(2).normal(0.0, 50.0, (len(chain.sequence), 3))
    full[pred_idx] = chain.ca[native_idx]
    predicted = crw.Chain(sequence=chain.sequence, observed=chain.sequence, ca=full)
    result = crw.compare(predicted, chain)
    assert result.compared == 83
    assert result.ca_rmsd == pytest.approx(0.0, abs=1e-6)
    assert result.lddt_ca == pytest.approx(1.0, abs=1e-6)


def test_a_different_protein_is_refused():
    with pytest.raises(ValueError, match="differ"):
        crw.align_residues(native("4zey_A").observed, native("2rbg_A").observed)


def test_a_different_fold_is_judged_clearly_off():
    good = crw.Row("a", 84, 90.0, 500, crw.Comparison(84, 1.0, 0.9, 0.9))
    off = crw.Row("b", 84, 40.0, 1, crw.Comparison(84, 15.0, 0.3, 0.3))
    failed = crw.Row("c", 84, error="ValueError: boom")
    assert crw.verdict(good) is None
    assert "TM-score 0.30 < 0.5" in crw.verdict(off) and "MSA depth 1" in crw.verdict(off)
    assert crw.verdict(failed) == "c: ValueError: boom"


def test_missing_parameter_files_are_a_setup_error(tmp_path, capsys):
    assert crw.main(["--params", str(tmp_path), "--targets", "4zey_A", "--out", str(tmp_path / "out")]) == 2
    assert "no params_model_1.npz" in capsys.readouterr().err  # run_alphafold's default models first


def test_no_parameters_is_a_usage_error(capsys):
    assert crw.main(["--targets", "4zey_A"]) == 2
    assert "--random-params" in capsys.readouterr().err


def ca_trace(path: Path, chain: str) -> tuple[str, np.ndarray, np.ndarray]:
    """One chain's sequence, CA coordinates and CA B-factors, residues with a CA atom in order (Biopython)."""
    parser = MMCIFParser(QUIET=True) if path.suffix == ".cif" else PDBParser(QUIET=True)
    residues = [r for r in parser.get_structure(path.stem, str(path))[0][chain] if "CA" in r]
    sequence = seq1("".join("MET" if r.get_resname() == "MSE" else r.get_resname() for r in residues))
    return (sequence, np.array([r["CA"].coord for r in residues], dtype=np.float64),
            np.array([r["CA"].bfactor for r in residues]))


def superposed_rmsd(predicted: np.ndarray, native: np.ndarray) -> float:
    superimposer = SVDSuperimposer()
    superimposer.set(native, predicted)
    superimposer.run()
    return float(superimposer.get_rms())


def lddt_ca(predicted: np.ndarray, native: np.ndarray, cutoff: float = 15.0) -> float:
    """Global lDDT over CA atoms: pairs closer than 15 Å in the native, distance errors under 0.5, 1, 2, 4 Å."""
    def distances(x: np.ndarray) -> np.ndarray:
        return np.linalg.norm(x[:, None] - x[None], axis=-1)

    pairs = (distances(native) < cutoff) & ~np.eye(len(native), dtype=bool)
    errors = np.abs(distances(predicted) - distances(native))[pairs]
    return float(np.mean([np.mean(errors < threshold) for threshold in (0.5, 1.0, 2.0, 4.0)]))


def assert_row_recomputes(row: list[str], prediction: Path, native: Path, chain: str) -> None:
    """The report's row (target length compared MSA pLDDT CA-RMSD TM lDDT-Ca) against the scores recomputed
    from the files: Biopython's reading and superposition, TM-align (tmtools) on those coordinates, lDDT-Ca in
    numpy, the mean pLDDT from the written B-factors."""
    predicted_sequence, predicted, plddt = ca_trace(prediction, "A")
    native_sequence, native_ca, _ = ca_trace(native, chain)
    assert predicted_sequence == native_sequence  # every residue resolved: they correspond one to one
    assert row[1:3] == [str(len(native_sequence))] * 2
    assert float(row[4]) == pytest.approx(plddt.mean(), abs=0.06)  # printed .1f, B-factors .2f
    assert float(row[5]) == pytest.approx(superposed_rmsd(predicted, native_ca), abs=0.006)  # printed .2f
    tm = tm_align(predicted, native_ca, predicted_sequence, native_sequence).tm_norm_chain2
    assert float(row[6]) == pytest.approx(tm, abs=6e-4)  # printed .3f
    assert float(row[7]) == pytest.approx(lddt_ca(predicted, native_ca), abs=6e-4)


@pytest.mark.slow
def test_script_end_to_end_with_random_parameters(tmp_path):
    env = {**os.environ, "FOLDFLOW_CACHE_DIR": os.environ.get("FOLDFLOW_CACHE_DIR", str(ROOT / ".cache" / "foldflow"))}
    done = subprocess.run([sys.executable, str(SCRIPT), "--random-params", "--targets", "4zey_A",
                           "--config", str(ROOT / "tests" / "data" / "small.yaml"), "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "NOT meaningful" in done.stdout
    header = next(line for line in done.stdout.splitlines() if line.startswith("target"))
    assert header.split() == ["target", "length", "compared", "MSA", "pLDDT", "CA-RMSD", "TM", "lDDT-Ca"]
    row = next(line for line in done.stdout.splitlines() if line.startswith("4zey_A")).split()
    assert row[1:3] == ["84", "84"]
    assert_row_recomputes(row, tmp_path / "predictions" / "4zey_A" / "ranked_0.pdb", crw.NATIVES_DIR / "4zey.cif", "A")
    assert (tmp_path / "natives.fasta").read_text().startswith(">4zey_A\nGMEGPLNLAH")
