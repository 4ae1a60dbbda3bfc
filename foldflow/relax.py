"""Amber relaxation of predicted structures, as AlphaFold 2.3 runs it.

A thin wrapper over ``alphafold.relax.relax.AmberRelaxation`` (OpenMM, Amber99sb,
restrained L-BFGS minimisation with violation-informed outer iterations). The
defaults are AlphaFold 2.3's own (``run_alphafold.py``); multimer predictions
(several chains) are relaxed with the same code.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields

import numpy as np
from alphafold.common import protein


@dataclass(frozen=True)
class RelaxSettings:
    """AmberRelaxation's arguments; defaults are AlphaFold 2.3's ``RELAX_*`` constants."""

    max_iterations: int = 0  # L-BFGS steps per minimisation, 0 = until converged
    tolerance: float = 2.39  # kcal/mol, L-BFGS energy tolerance
    stiffness: float = 10.0  # kcal/mol/Å², restraint on heavy atoms
    max_outer_iterations: int = 3  # minimisations at most, stopping when no violations remain
    use_gpu: bool = False  # OpenMM CUDA platform instead of CPU

    def key_settings(self) -> dict:
        """What changes a relaxation's result (part of its store key); the platform does not."""
        return {k: v for k, v in asdict(self).items() if k != "use_gpu"}


@dataclass
class Relaxed:
    """One relaxed structure and AlphaFold's relaxation metrics."""

    # Relaxed structure with hydrogens, PDB text: B-factors (pLDDT) copied from the input per residue,
    # residues renumbered from 1 in each chain (OpenMM's writer, as in AlphaFold).
    pdb: str
    violations: int  # residues still in a structural violation (run_alphafold's remaining_violations_count)
    violations_per_residue: list[float]  # 0/1 per residue (run_alphafold's remaining_violations)
    rmsd: float  # Å, AmberRelaxation's 'rmsd': all atoms with hydrogens, start vs end of the last minimisation
    rmsd_to_input: float  # Å, heavy atoms of the relaxed structure vs the input
    initial_energy: float  # kcal/mol (AlphaFold's unit), before the last minimisation
    final_energy: float  # kcal/mol, after it
    attempts: int  # tries the last minimisation needed (OpenMM failures are retried)
    seconds: float  # wall time of the whole relaxation

    def to_arrays(self) -> dict[str, np.ndarray]:
        """As a stored step result."""
        return {"record": np.array(json.dumps(asdict(self)))}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Relaxed:
        record = json.loads(str(arrays["record"]))
        return cls(**{f.name: record[f.name] for f in fields(cls)})


def openmm_version() -> str:
    import openmm

    return openmm.__version__


def heavy_atom_rmsd(a: protein.Protein, b: protein.Protein) -> float:
    """RMSD (Å) over the heavy atoms present in both structures (same residues, same order)."""
    both = (a.atom_mask > 0) & (b.atom_mask > 0)
    return float(np.sqrt(np.mean(np.sum((a.atom_positions[both] - b.atom_positions[both]) ** 2, axis=-1))))


def relax_protein(prot: protein.Protein, settings: RelaxSettings = RelaxSettings()) -> Relaxed:
    """Relax ``prot`` (every residue with all its heavy atoms) with AlphaFold's AmberRelaxation."""
    from alphafold.relax import relax

    if settings.use_gpu:
        _require_cuda()
    relaxer = relax.AmberRelaxation(
        max_iterations=settings.max_iterations,
        tolerance=settings.tolerance,
        stiffness=settings.stiffness,
        exclude_residues=[],
        max_outer_iterations=settings.max_outer_iterations,
        use_gpu=settings.use_gpu,
    )
    start = time.perf_counter()
    pdb, debug, violations = relaxer.process(prot=prot)
    return Relaxed(
        pdb=pdb,
        violations=int(sum(violations)),
        violations_per_residue=[float(v) for v in violations],
        rmsd=float(debug["rmsd"]),
        rmsd_to_input=heavy_atom_rmsd(protein.from_pdb_string(pdb), prot),
        initial_energy=float(debug["initial_energy"]),
        final_energy=float(debug["final_energy"]),
        attempts=int(debug["attempts"]),
        seconds=time.perf_counter() - start,
    )


def relax_pdb(pdb_text: str, settings: RelaxSettings = RelaxSettings()) -> Relaxed:
    """Relax a single-model PDB text (all chains)."""
    return relax_protein(protein.from_pdb_string(pdb_text), settings)


def _require_cuda() -> None:
    """Fails at once: without OpenMM's CUDA platform AlphaFold retries 100 times, then says 'Minimization failed'."""
    import openmm

    try:
        openmm.Platform.getPlatformByName("CUDA")
    except openmm.OpenMMException as e:
        raise RuntimeError("use_gpu needs OpenMM's CUDA platform: pip install 'openmm[cuda12]'") from e
