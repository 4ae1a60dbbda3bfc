"""A target's plots, as ColabFold draws them: MSA coverage, pLDDT per model, PAE with chain boundaries.

* ``msa_coverage.png``: every alignment row (of all databases, identical rows once, the query first) as a
  line over the positions it covers, coloured by its identity to the query, rows sorted by identity; the
  black line is the coverage (rows with a residue) per position. A complex: its distinct chains side by
  side, each chain's rows over its own positions (the unpaired alignments), separated by black lines.
* ``plddt.png``: pLDDT per residue, one line per prediction, best first; chain boundaries for complexes.
* ``pae.png``: the best prediction's predicted aligned error, chain boundaries for complexes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from foldflow.models.base import Prediction
from foldflow.alignment import Alignment

@dataclass
class MsaCoverage:
    """One chain's alignment rows: which positions each covers and its identity to the query."""

    covered: np.ndarray  # (rows, positions) bool: a residue (not a gap) in the row at the position
    identity: np.ndarray  # (rows,) identical residues / covered positions

    @property
    def depth(self) -> np.ndarray:
        """Rows with a residue at each position."""
        return self.covered.sum(axis=0)


def msa_coverage(alignments: Sequence[Alignment]) -> MsaCoverage:
    """Coverage and identity of the distinct rows of ``alignments`` (aligned to the query, insertions dropped),
    as AlphaFold's MSA features keep them: each distinct sequence once, the query first."""
    rows: dict[str, None] = {}
    for alignment in alignments:
        for sequence in alignment.parse().sequences:
            rows.setdefault(sequence, None)
    matrix = np.array([list(row) for row in rows], dtype="<U1")
    covered = matrix != "-"
    same = (matrix == matrix[0]) & covered
    identity = same.sum(axis=1) / np.maximum(covered.sum(axis=1), 1)
    return MsaCoverage(covered, identity)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def _chain_boundaries(ax, prediction: Prediction, both_axes: bool) -> None:
    if prediction.chain_index is None:
        return
    for boundary in np.flatnonzero(np.diff(prediction.chain_index)) + 0.5:
        ax.axvline(boundary, color="black", linewidth=1)
        if both_axes:
            ax.axhline(boundary, color="black", linewidth=1)


def plot_msa_coverage(path: Path, chains: Mapping[str, Sequence[Alignment]]) -> None:
    plt = _pyplot()
    coverages = [msa_coverage(alignments) for alignments in chains.values()]
    rows = max(len(c.identity) for c in coverages)
    width = sum(c.covered.shape[1] for c in coverages)
    lines = np.full((rows, width), np.nan)
    depth = np.zeros(width)
    start = 0
    for coverage in coverages:
        order = np.argsort(coverage.identity)
        span = slice(start, start + coverage.covered.shape[1])
        block = np.where(coverage.covered[order], coverage.identity[order, None], np.nan)
        lines[:len(order), span] = block
        depth[span] = coverage.depth
        start = span.stop
    fig, ax = plt.subplots(figsize=(7, 3.5))
    image = ax.imshow(lines, interpolation="nearest", aspect="auto", cmap="rainbow_r", vmin=0, vmax=1,
                      origin="lower", extent=(0, width, 0, rows))
    ax.plot(np.arange(width) + 0.5, depth, color="black")
    start = 0
    for coverage in coverages[:-1]:
        start += coverage.covered.shape[1]
        ax.axvline(start, color="black", linewidth=1)
    ax.set(xlim=(0, width), ylim=(0, rows), xlabel="position", ylabel="sequences",
           title="Sequence coverage")
    fig.colorbar(image, ax=ax, label="sequence identity to query")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_plddt(path: Path, ranked: Sequence[tuple[str, Prediction]]) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    for name, p in ranked:
        ax.plot(np.arange(1, len(p.plddt) + 1), p.plddt, label=name)
    _chain_boundaries(ax, ranked[0][1], both_axes=False)
    ax.set(xlabel="residue", ylabel="pLDDT", ylim=(0, 100), title="Predicted lDDT per position")
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_pae(path: Path, name: str, prediction: Prediction) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 3.5))
    image = ax.imshow(prediction.pae, cmap="bwr", vmin=0, vmax=prediction.max_pae)
    _chain_boundaries(ax, prediction, both_axes=True)
    fig.colorbar(image, ax=ax, label="expected position error (Å)")
    ax.set(xlabel="scored residue", ylabel="aligned residue", title=f"PAE {name}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_plots(folder: Path, msas: Mapping[str, Sequence[Alignment]],
                ranked: Sequence[tuple[str, Prediction]]) -> list[str]:
    """The target's plots (those it has data for) in ``folder``; returns their file names."""
    written = []
    if msas:
        plot_msa_coverage(folder / "msa_coverage.png", msas)
        written.append("msa_coverage.png")
    plot_plddt(folder / "plddt.png", ranked)
    written.append("plddt.png")
    best_name, best = ranked[0]
    if best.pae is not None:
        plot_pae(folder / "pae.png", best_name, best)
        written.append("pae.png")
    return written
