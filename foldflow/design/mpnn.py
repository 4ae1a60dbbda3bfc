"""ProteinMPNN with its published weights, from ColabDesign's JAX implementation (``colabdesign.mpnn``).

The weights ship inside the ``colabdesign`` wheel (``v_48_002`` ... ``v_48_030``); they are pickles, loaded
only from that installed package. ColabDesign calls ``jax.tree_map``, which JAX removed: :func:`_jax_shim`
restores it as ``jax.tree.map`` before the import (the one place that does).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np



def _jax_shim() -> None:
    """colabdesign 1.1.1 uses ``jax.tree_map`` (removed in JAX 0.6): the same function under its new name."""
    import jax

    if not hasattr(jax, "tree_map"):
        jax.tree_map = jax.tree.map


@dataclass
class DesignedSequence:
    sequence: str
    score: float  # ProteinMPNN's mean negative log-likelihood per residue (lower: more likely)
    recovery: float  # fraction of positions equal to the backbone's own sequence (files with residues)


def residue_numbers(pdb_text: str) -> tuple[str, list[str]]:
    """The first chain's id and its residue numbers (with insertion codes) in order, from CA atoms."""
    chain, numbers = None, []
    for line in pdb_text.splitlines():
        if line.startswith("ATOM") and line[12:16] == " CA ":
            chain = chain or line[21]
            if line[21] == chain:
                numbers.append(line[22:27].strip())
    return chain or "A", numbers


def pdb_positions(pdb_text: str, positions: str) -> str:
    """Positions counted from 1 along the chain (``"1-5,12"``) as ColabDesign's chain-and-number list."""
    chain, numbers = residue_numbers(pdb_text)
    chosen = []
    for part in positions.split(","):
        first, _, last = part.strip().partition("-")
        for position in range(int(first), int(last or first) + 1):
            if not 1 <= position <= len(numbers):
                raise ValueError(f"fixed position {position} outside the chain's {len(numbers)} residues")
            chosen.append(f"{chain}{numbers[position - 1]}")
    return ",".join(chosen)


class ProteinMPNN:
    """One loaded ProteinMPNN; :meth:`design` samples sequences for a backbone."""

    def __init__(self, model_name: str = "v_48_020", seed: int = 0):
        _jax_shim()
        from colabdesign.mpnn import mk_mpnn_model

        self.model_name = model_name
        self._model = mk_mpnn_model(model_name=model_name, seed=seed)

    def design(self, pdb_text: str, count: int, temperature: float, omit_aa: str = "",
               fixed_positions: str | None = None, seed: int = 0) -> list[DesignedSequence]:
        """``count`` sequences for the first chain of ``pdb_text`` (a backbone, or a structure whose residues
        ``fixed_positions`` keep and against which recovery is counted)."""
        import jax

        chain, _ = residue_numbers(pdb_text)
        with tempfile.NamedTemporaryFile("w", suffix=".pdb") as handle:
            handle.write(pdb_text)
            handle.flush()
            self._model.prep_inputs(pdb_filename=handle.name, chain=chain,
                                    fix_pos=pdb_positions(pdb_text, fixed_positions) if fixed_positions else None,
                                    rm_aa=",".join(omit_aa) or None)
        out = self._model.sample(num=1, batch=count, temperature=temperature, key=jax.random.PRNGKey(seed))
        return [DesignedSequence(str(sequence), float(score), float(recovery))
                for sequence, score, recovery in zip(out["seq"], np.asarray(out["score"]), np.asarray(out["seqid"]))]
