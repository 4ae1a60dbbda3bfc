"""A target's plots: MSA coverage and identity counted by hand on a small alignment, chain boundaries where the
chains meet, the files written."""

import numpy as np
import pytest
from matplotlib import image as mpimg

from foldflow.alignment import Alignment
from foldflow.plots import _chain_boundaries, _pyplot, msa_coverage, write_plots
from test_outputs import prediction

QUERY_A3M = ">query\nACDEFG\n>covers_half\nACD---\n>one_substitution\nAC-EFWk\n>query_again\nACDEFG\n>unrelated\nWWWWWW\n"
MGNIFY_A3M = ">query\nACDEFG\n>end_only\n---EFG\n>covers_half\nACD---\n"


def test_coverage_and_identity_of_distinct_rows_counted_by_hand():
    coverage = msa_coverage([Alignment("uniref90", "a3m", QUERY_A3M), Alignment("mgnify", "a3m", MGNIFY_A3M)])
    # distinct rows, query first: ACDEFG, ACD---, AC-EFW (insertion k dropped), WWWWWW, ---EFG
    assert coverage.identity == pytest.approx([1.0, 1.0, 4 / 5, 0.0, 1.0])
    assert coverage.depth.tolist() == [4, 4, 3, 4, 4, 4]


def test_chain_boundaries_are_drawn_where_the_chains_meet():
    complex_prediction = prediction("model_1_multimer_v3_pred_0", 70.0, length=12)
    complex_prediction.chain_index = np.repeat([0, 1, 2], [5, 4, 3])
    plt = _pyplot()
    fig, ax = plt.subplots()
    _chain_boundaries(ax, complex_prediction, both_axes=True)
    vertical = sorted(line.get_xdata()[0] for line in ax.lines if line.get_xdata()[0] == line.get_xdata()[1])
    assert vertical == [4.5, 8.5] and len(ax.lines) == 4
    plt.close(fig)


def test_plots_are_written_for_a_complex(tmp_path):
    best = prediction("model_1_multimer_v3_pred_0", 80.0, length=12)
    best.chain_index = np.repeat([0, 1], [6, 6])
    best.pae, best.max_pae = np.random.default_rng(0).uniform(0, 30, (12, 12)), 31.75
    msas = {"A": [Alignment("uniref90", "a3m", QUERY_A3M)], "B": [Alignment("uniref90", "a3m", MGNIFY_A3M)]}
    written = write_plots(tmp_path, msas, [("model_1_multimer_v3_pred_0", best),
                                           ("model_2_multimer_v3_pred_0", prediction("m2", 60.0, length=12))])
    assert written == ["msa_coverage.png", "plddt.png", "pae.png"]
    for name in written:
        height, width, _ = mpimg.imread(tmp_path / name).shape
        assert height > 200 and width > 300, name
