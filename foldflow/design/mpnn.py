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
    # Both over the designed positions (fixed ones left out, as ColabDesign counts them):
    score: float  # ProteinMPNN's mean negative log-likelihood per residue (lower: more likely)
    recovery: float  # fraction equal to the backbone's own sequence (files with residues)


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


# Backbones are padded to a multiple of this many residues: JAX compiles ProteinMPNN once per padded length
# (about 5 s on a CPU; sampling a 100-residue backbone then takes 0.15 s), not once per backbone length.
PAD_MULTIPLE = 32


def pad_inputs(inputs: dict[str, np.ndarray], length: int) -> None:
    """Pad ColabDesign's ProteinMPNN inputs in place to ``length`` residues with masked residues.

    A masked residue sends no messages (ProteinMPNN multiplies them by the mask), is decoded after every real
    one (ColabDesign orders masked positions last) and counts in no score; its atoms are a copy of the chain's
    moved 1,000 Å away, on a chain of their own far along the sequence.
    """
    real = len(inputs["S"])
    extra = length - real
    if extra <= 0:
        return

    def pad(array: np.ndarray, value) -> np.ndarray:
        return np.concatenate([array, np.full((extra, *array.shape[1:]), value, dtype=array.dtype)])

    inputs["X"] = np.concatenate([inputs["X"], np.resize(inputs["X"], (extra, *inputs["X"].shape[1:])) + 1000.0])
    inputs["mask"] = pad(inputs["mask"], 0)
    inputs["S"] = pad(inputs["S"], 0)
    inputs["bias"] = pad(inputs["bias"], 0)
    inputs["residue_idx"] = np.concatenate([inputs["residue_idx"],
                                            inputs["residue_idx"][-1] + 1000 + np.arange(extra)])
    inputs["chain_idx"] = pad(inputs["chain_idx"], inputs["chain_idx"].max() + 1)


class ProteinMPNN:
    """One loaded ProteinMPNN; :meth:`design` samples sequences for a backbone."""

    def __init__(self, model_name: str = "v_48_020", seed: int = 0, pad_multiple: int = PAD_MULTIPLE):
        _jax_shim()
        from colabdesign.mpnn import mk_mpnn_model

        self.model_name = model_name
        self.pad_multiple = pad_multiple
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
        length = len(self._model._inputs["S"])
        pad_inputs(self._model._inputs, -(-length // self.pad_multiple) * self.pad_multiple)
        out = self._model.sample(num=1, batch=count, temperature=temperature, key=jax.random.PRNGKey(seed))
        return [DesignedSequence(str(sequence)[:length], float(score), float(recovery))
                for sequence, score, recovery in zip(out["seq"], np.asarray(out["score"]), np.asarray(out["seqid"]))]
