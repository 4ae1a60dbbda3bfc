"""Check an AlphaFold install with real weights: fold a few small natives and compare to experiment.

Folds the small experimental structures in ``examples/natives`` (see its
SOURCES.md) with foldflow's Python API, in this process (no Ray), and prints
for each: length, mean pLDDT, CA-RMSD after optimal superposition, TM-score
(TM-align, via ``tmtools``) and lDDT-Ca (AlphaFold's ``alphafold.model.lddt``
over CA atoms), each over the residues the native resolves.

    python scripts/check_real_weights.py --params /data/alphafold/params [--out DIR]
        [--models model_1_ptm[,model_2_ptm]] [--config my_alphafold.yaml] [--targets 4zey_A,...]
    python scripts/check_real_weights.py --random-params ...   # exercises the path; NOT meaningful

Exit codes: 0 every target looks right (or ``--random-params``: never judged);
1 a target failed or is clearly off (TM-score < 0.5), with the reason;
2 bad arguments or setup, nothing was judged. See docs/real-weights.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
NATIVES_DIR = ROOT / "examples" / "natives"
# target id -> (file under examples/natives, chain); kept in step with examples/natives/SOURCES.md.
NATIVES: dict[str, tuple[str, str]] = {
    "4zey_A": ("4zey.cif", "A"),
    "4i6p_A": ("4i6p.cif", "A"),
    "3u8v_A": ("3u8v.cif", "A"),
    "2rbg_A": ("2rbg.pdb", "A"),
}
MIN_TM_SCORE = 0.5  # below this the prediction has a different fold from the native: clearly off
LDDT_CUTOFF = 15.0  # Å, lDDT inclusion radius (thresholds 0.5/1/2/4 Å are AlphaFold's, in its lddt())
EXPECTED = ("With AlphaFold's real weights, small well-folded domains like these typically give "
            "lDDT-Ca > 0.8 and TM-score > 0.8 (and CA-RMSD of a few Å at most); values vary with the MSA.")
SHALLOW_MSA_NOTE = ("MSA: the bundled mini databases (1,000 sequences each) give shallow MSAs, so these "
                    "numbers are a sanity check of the install, not AlphaFold's CASP accuracy; pass "
                    "--config with your real databases for that.")


@dataclass
class Chain:
    """One protein chain: its sequence to fold and the CA atoms it resolves."""

    sequence: str  # full sequence (the entity's SEQRES where the file has one)
    observed: str  # one letter per residue with a CA atom, in chain order
    ca: np.ndarray  # (len(observed), 3) CA coordinates, Å


@dataclass
class Comparison:
    """A predicted structure scored against its native over the residues both have."""

    compared: int  # residue pairs compared
    ca_rmsd: float
    tm_score: float  # normalised by the number of compared native residues
    lddt_ca: float


# --- reading structures --------------------------------------------------------------------------------

def one_letter(name: str) -> str:
    """One-letter code of a residue name; modified residues as their parent (MSE -> M), unknown as X."""
    import gemmi

    info = gemmi.find_tabulated_residue(name)
    code = info.one_letter_code.upper() if info is not None and info.is_amino_acid() else "X"
    return code if code.isalpha() else "X"


def read_chain(path: Path, chain: str | None = None) -> Chain:
    """The protein chain ``chain`` (default: the first) of the first model of a PDB or mmCIF file."""
    import gemmi

    structure = gemmi.read_structure(str(path))
    structure.setup_entities()
    model = structure[0]
    found = model.find_chain(chain) if chain else model[0]
    if found is None:
        raise ValueError(f"{path}: no chain {chain}")
    polymer = found.get_polymer()
    residues = [(r.name, r.find_atom("CA", "*")) for r in polymer.first_conformer()]
    residues = [(name, atom) for name, atom in residues if atom is not None]
    if not residues:
        raise ValueError(f"{path}: chain {found.name} has no protein CA atoms")
    observed = "".join(one_letter(name) for name, _ in residues)
    ca = np.array([[a.pos.x, a.pos.y, a.pos.z] for _, a in residues], dtype=np.float64)
    entity = structure.get_entity_of(polymer)
    full = [gemmi.Entity.first_mon(item) for item in entity.full_sequence] if entity else []
    sequence = "".join(one_letter(name) for name in full) or observed
    return Chain(sequence=sequence, observed=observed, ca=ca)


def write_fasta(chains: dict[str, Chain], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f">{target}\n{chain.sequence}\n" for target, chain in chains.items()))
    return path


# --- residue correspondence and scores ------------------------------------------------------------------

def align_residues(predicted: str, native: str) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (into ``predicted``, into ``native``) of residues that correspond.

    A global alignment of the two sequences with free end gaps, so a native with
    unresolved loops or termini, other numbering or a missing tag lines up with
    the full predicted chain. Raises ValueError when the sequences are not the
    same protein (under 90% identity over the aligned pairs).
    """
    from Bio.Align import PairwiseAligner

    aligner = PairwiseAligner(mode="global", match_score=2.0, mismatch_score=-1.0,
                              open_gap_score=-5.0, extend_gap_score=-0.5, end_gap_score=0.0)
    alignment = aligner.align(predicted, native)[0]
    pairs = [(i, j) for (a0, a1), (b0, b1) in zip(*alignment.aligned)
             for i, j in zip(range(a0, a1), range(b0, b1))]
    same = sum(predicted[i] == native[j] for i, j in pairs)
    if not pairs or same < 0.9 * len(pairs):
        raise ValueError(f"predicted and native sequences differ ({same}/{len(pairs)} aligned residues identical)")
    pred_idx, native_idx = (np.array(side, dtype=int) for side in zip(*pairs))
    return pred_idx, native_idx


def superpose(mobile: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``mobile`` rotated and translated onto ``target`` by least squares (Kabsch)."""
    mobile_c, target_c = mobile - mobile.mean(0), target - target.mean(0)
    u, _, vt = np.linalg.svd(mobile_c.T @ target_c)
    d = np.sign(np.linalg.det(u @ vt))  # a rotation, never a reflection
    rotation = u @ np.diag([1.0, 1.0, d]) @ vt
    return mobile_c @ rotation + target.mean(0)


def ca_rmsd(predicted: np.ndarray, native: np.ndarray) -> float:
    """RMSD (Å) of corresponding CA atoms after optimal superposition."""
    fitted = superpose(predicted, native)
    return float(np.sqrt(np.mean(np.sum((fitted - native) ** 2, axis=1))))


def tm_score(predicted: np.ndarray, native: np.ndarray, pred_seq: str, native_seq: str) -> float:
    """TM-score of the prediction, normalised by the native's length (TM-align, from ``tmtools``)."""
    from tmtools import tm_align

    result = tm_align(np.ascontiguousarray(predicted, dtype=np.float64),
                      np.ascontiguousarray(native, dtype=np.float64), pred_seq, native_seq)
    return float(result.tm_norm_chain2)


def lddt_ca(predicted: np.ndarray, native: np.ndarray, cutoff: float = LDDT_CUTOFF) -> float:
    """lDDT over CA atoms, with AlphaFold's own ``alphafold.model.lddt.lddt``.

    For every pair of residues closer than ``cutoff`` (15 Å) in the native, the
    fraction of the thresholds 0.5, 1, 2 and 4 Å that the difference between the
    pair's predicted and native distance is under, averaged over all such pairs.
    Superposition-free; like AlphaFold's, it leaves out the stereochemistry
    checks of the original lDDT, so it is the lDDT-Ca AlphaFold reports.
    """
    from alphafold.model.lddt import lddt

    mask = np.ones((1, len(native), 1), dtype=np.float32)
    score = lddt(predicted[None].astype(np.float32), native[None].astype(np.float32), mask, cutoff=cutoff)
    return float(np.asarray(score).reshape(()))


def compare(predicted: Chain, native: Chain) -> Comparison:
    """Score ``predicted`` against ``native`` over the residues that correspond by sequence."""
    pred_idx, native_idx = align_residues(predicted.observed, native.observed)
    pred_ca, native_ca = predicted.ca[pred_idx], native.ca[native_idx]
    pred_seq = "".join(predicted.observed[i] for i in pred_idx)
    native_seq = "".join(native.observed[j] for j in native_idx)
    return Comparison(compared=len(pred_idx), ca_rmsd=ca_rmsd(pred_ca, native_ca),
                      tm_score=tm_score(pred_ca, native_ca, pred_seq, native_seq),
                      lddt_ca=lddt_ca(pred_ca, native_ca))


# --- the check ----------------------------------------------------------------------------------------

@dataclass
class Row:
    target: str
    length: int
    mean_plddt: float | None = None
    msa_depth: int | None = None
    comparison: Comparison | None = None
    error: str | None = None


def verdict(row: Row) -> str | None:
    """Why a target is clearly off with real weights, or None when it looks right."""
    if row.error:
        return f"{row.target}: {row.error}"
    if row.comparison.tm_score < MIN_TM_SCORE:
        return (f"{row.target}: TM-score {row.comparison.tm_score:.2f} < {MIN_TM_SCORE} (not the native's fold; "
                f"CA-RMSD {row.comparison.ca_rmsd:.1f} Å, mean pLDDT {_fmt(row.mean_plddt, '.1f')}, "
                f"MSA depth {_fmt(row.msa_depth, 'd')})")
    return None


def _fmt(value: float | int | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: list[Row]) -> str:
    """The report: one line per target (MSA: rows in the MSA; compared: residues the native resolves)."""
    header = (f"{'target':<8} {'length':>6} {'compared':>8} {'MSA':>5} {'pLDDT':>6} {'CA-RMSD':>8} {'TM':>5} "
              f"{'lDDT-Ca':>7}")
    lines = [header, "-" * len(header)]
    for row in rows:
        c = row.comparison
        cells = (f"{_fmt(c.compared if c else None, 'd'):>8} {_fmt(row.msa_depth, 'd'):>5} "
                 f"{_fmt(row.mean_plddt, '.1f'):>6} {_fmt(c.ca_rmsd if c else None, '.2f'):>8} "
                 f"{_fmt(c.tm_score if c else None, '.3f'):>5} {_fmt(c.lddt_ca if c else None, '.3f'):>7}")
        lines.append(f"{row.target:<8} {row.length:>6} {cells}" + (f"  FAILED: {row.error}" if row.error else ""))
    return "\n".join(lines)


def model_settings(run) -> str:
    """The model settings the best model ran with, as foldflow recorded them (where it does)."""
    for result in run.results:
        science = getattr(result, "science", None)
        fields = ("preset", "recycles", "msa_clusters", "extra_msa_rows")
        values = {f: getattr(science, f, None) for f in fields}
        if any(v is not None for v in values.values()):
            return ", ".join(f"{f}={v}" for f, v in values.items() if v is not None)
    return "not recorded"


def score_run(run, natives: dict[str, Chain]) -> list[Row]:
    """One row per native: foldflow's pLDDT and MSA depth, and the comparison of ranked_0.pdb to the native."""
    by_id = {r.target_id: r for r in run.results}
    rows = []
    for target, native in natives.items():
        result = by_id.get(target)
        row = Row(target, len(native.sequence))
        if result is None or result.status != "ok":
            row.error = (result.error if result is not None else None) or "not predicted"
        else:
            row.mean_plddt, row.msa_depth = result.science.mean_plddt, getattr(result.science, "msa_depth", None)
            try:
                row.comparison = compare(read_chain(run.structures[target]), native)
            except ValueError as error:
                row.error = str(error)
        rows.append(row)
    return rows


def uses_bundled_databases(config: Path | None) -> bool:
    """Whether the run searched the small databases bundled with foldflow (shallow MSAs)."""
    import foldflow

    bundled = {db.path.parent for db in foldflow.load_config(None).msa.databases}
    return all(db.path.parent in bundled for db in foldflow.load_config(config).msa.databases)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--params", type=Path, help="folder with AlphaFold's params_model_<name>.npz (or its data_dir)")
    which.add_argument("--random-params", action="store_true",
                       help="random-init parameters: runs the whole path, results NOT meaningful, never judged")
    parser.add_argument("--out", type=Path, help="output folder (default: a new temporary folder)")
    parser.add_argument("--models", help="comma-separated model names (default: the config's; AlphaFold's five monomer models with --params)")
    parser.add_argument("--config", type=Path, help="foldflow YAML config, e.g. with your real databases")
    parser.add_argument("--targets", help=f"comma-separated subset of {','.join(NATIVES)} (default: all)")
    args = parser.parse_args(argv)
    if args.targets:
        unknown = set(args.targets.split(",")) - set(NATIVES)
        if unknown:
            parser.error(f"unknown targets {','.join(sorted(unknown))}; choose from {','.join(NATIVES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    import foldflow
    from foldflow.errors import FoldflowError

    try:
        config_params = foldflow.load_config(args.config).model.params_dir
    except FoldflowError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.params and not args.random_params and config_params is None:
        print("error: give --params DIR (AlphaFold's weights), a --config that sets model.params_dir, "
              "or --random-params (a test run, not meaningful)", file=sys.stderr)
        return 2
    if args.random_params and config_params is not None:
        print(f"error: --random-params, but {args.config} sets model.params_dir", file=sys.stderr)
        return 2

    out = (args.out or Path(tempfile.mkdtemp(prefix="check_real_weights-"))).resolve()
    targets = args.targets.split(",") if args.targets else list(NATIVES)
    natives = {t: read_chain(NATIVES_DIR / NATIVES[t][0], NATIVES[t][1]) for t in targets}
    fasta = write_fasta(natives, out / "natives.fasta")
    if args.random_params:
        print("RANDOM parameters: this run only exercises the path; its structures and scores are NOT "
              "meaningful and are not judged.")
    overrides = {"model.params_dir": str(args.params) if args.params else None,
                 "model.names": args.models.split(",") if args.models else None,
                 "pipeline.runner": "in_process"}
    try:
        run = foldflow.predict(fasta, out / "predictions", config=args.config, **overrides)
    except FoldflowError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    rows = score_run(run, natives)
    bundled = uses_bundled_databases(args.config)
    print()
    print(format_table(rows))
    print(f"\nmodel settings as run: {model_settings(run)}; structures under {out / 'predictions'}")
    if bundled:
        print(SHALLOW_MSA_NOTE)
    print(EXPECTED)
    if run.random_params:
        print("RANDOM parameters: not judged (exit 0). Use --params with AlphaFold's weights for a real check.")
        return 0
    problems = [p for p in map(verdict, rows) if p]
    for problem in problems:
        print(f"CLEARLY OFF: {problem}")
    if problems and bundled:
        print("(with the bundled databases' shallow MSAs a correct install can still miss a target; rerun "
              "with --config naming real databases before concluding that the install is broken)")
    if problems:
        return 1
    print(f"OK: every target has TM-score >= {MIN_TM_SCORE}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
