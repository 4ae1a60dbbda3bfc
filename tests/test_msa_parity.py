"""foldflow's MSAs and MSA features against independent references (issue 11, AlphaFold fidelity).

The references are not foldflow code:

* **MSA search**: the ``jackhmmer`` binary (HMMER 3.3.2), run through AlphaFold 2.3's own wrapper
  ``alphafold.data.tools.jackhmmer.Jackhmmer`` with ``n_cpu=1``, i.e. exactly AlphaFold's command line
  ``jackhmmer -o /dev/null -A out.sto --noali --F1 0.0005 --F2 5e-05 --F3 5e-07 --incE 0.0001
  -E 0.0001 --cpu 1 -N <iterations> query.fasta database.fasta``; its Stockholm output is read with
  AlphaFold's ``parsers.parse_stockholm``.
* **Hit limits**: the same wrapper's ``query(fasta, max_sequences)``, which is how AlphaFold's
  ``pipeline.run_msa_tool`` applies ``mgnify_max_hits``/``uniref_max_hits`` (AlphaFold's own
  ``parsers.truncate_stockholm_msa`` on the binary's full output).
* **Deduplicated MSA features**: DeepMind's AlphaFold 2.3 ``pipeline.make_msa_features``, vendored
  verbatim in ``tests/reference/deepmind_pipeline.py`` (the installed ``alphafold-colabfold`` fork
  disabled its deduplication).
"""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import numpy as np
import pytest
from alphafold.data import parsers, pipeline
from alphafold.data.tools import jackhmmer as af_jackhmmer

from foldflow.config import BUNDLED_DB_DIR, DatabaseConfig, MsaConfig, bundled_databases
from foldflow.features import build_features
from foldflow.alignment import Alignment
from foldflow.msa.jackhmmer import ResidentDatabases
from foldflow.msa.precomputed import load_precomputed
from conftest import DATA, debian_binary
from reference import deepmind_pipeline
from test_msa import ABC_QUERY, SHORT_SEQUENCE

# Real proteins of the bacterial proteome 938293.PRJEB85 (pyhmmer's test data; see
# ../shared/data/SOURCES.md), stop codon removed. Each has hits in the bundled databases:
# (rows in the binary's MSA, 1 / 3 iterations, query included; HMMER 3.3.2)
#                       uniref90  small_bfd  mgnify
#   HG003690_101 (abc)    4 / 4     3 / 4     9 / 9
#   HG003686_698          5 / 12    1 / 1     4 / 6
#   HG003690_137          4 / 5     1 / 1     1 / 1
#   HG003690_99           2 / 4     4 / 4     5 / 8
#   HG003685_150          3 / 4     3 / 4     8 / 9
QUERIES = {
    "HG003690_101": ABC_QUERY,
    "HG003686_698": "MAYVIDADTCISCGTCAGECPVEAISAGDDAYVIDADTCIDCGTCASVCPVDAIDPE",
    "HG003690_137": "MTQDLLEDEAFNQFIAMSDPMGRTGKPGELDTALLMFASHHSSYTTGQLLTVDGGWIAI",
    "HG003690_99": "MGYVNINDVSCTSKTGYKILKGINLNVEKGECILLMGLSGSGKTSLTKLINGIIPHFEEETDFVGEVLIEGESTRNISQYKISEKVGSIFQNPKSQFF"
                   "NSDVEGEIVFGLENMGTDPELIKKSLKKLLII",
    "HG003685_150": "MDIINKSQLTEFIKRQPKGLDTMLTSNGHNISGGEKQRIALARSLVKNVDFILIDESTSQLDKVNRRAIEEIILNFKDVGVIYVSHNTDEIMINKF"
                    "DKILDSKEFK",
}
# No homologue anywhere: every MSA is the query alone.
UNRELATED = "GSGSGSGSGSGSGSGSGSGS"

# Proteome protein 938293.PRJEB85.HG003688_5 (240 aa): seed of the generated deep database.
DEEP_QUERY = ("MKIIISPAKSFKENKDIPTEDLLFKDKTQYLVNKLKKYTMNEMGNLHGTNDKLTEKAYYDYQEMDLNNLKNPALFAYDGLIFKQFKREDFDD"
              "LDYLNDHLYIISPLYGALKPLTAIADYRLYFDNKDIDLYDFWKDLIYKEVYKDNDTIINLASVEYAKTITDYLKDGDRFITIDFKDVRDGKLKS"
              "IVAWMKQMRGKMVKEIISQKIEDPEKIKEIEIDGYKYDPYNSTSDRWVFVRDNQ")
MUTATED_COPIES = 700

# AlphaFold's DataPipeline defaults (mgnify_max_hits=501, uniref_max_hits=10000), read from AlphaFold itself.
_AF_DEFAULTS = inspect.signature(pipeline.DataPipeline.__init__).parameters
AF_MGNIFY_MAX_HITS = _AF_DEFAULTS["mgnify_max_hits"].default
AF_UNIREF_MAX_HITS = _AF_DEFAULTS["uniref_max_hits"].default
# DataPipeline's max_sto_sequences per database (small_bfd: run_msa_tool is called without one).
AF_LIMITS = {"uniref90": AF_UNIREF_MAX_HITS, "small_bfd": None, "mgnify": AF_MGNIFY_MAX_HITS}
MSA_FEATURES = ("msa", "deletion_matrix_int", "num_alignments", "msa_species_identifiers")


@pytest.fixture(scope="module")
def jackhmmer_binary() -> str:
    return debian_binary("jackhmmer", "hmmer")


def alphafold_jackhmmer(binary: str, tmp_path: Path, name: str, sequence: str, database: Path,
                        iterations: int, max_hits: int | None = None) -> str:
    """The Stockholm text AlphaFold 2.3 gets from the binary (its wrapper, its flags, its truncation)."""
    fasta = tmp_path / f"{name}.fasta"
    fasta.write_text(f">{name}\n{sequence}\n")
    runner = af_jackhmmer.Jackhmmer(binary_path=binary, database_path=str(database), n_cpu=1, n_iter=iterations)
    return runner.query(str(fasta), max_hits)[0]["sto"]


def assert_same_msa(ours: parsers.Msa, reference: parsers.Msa, context) -> None:
    assert ours.descriptions == reference.descriptions, context
    assert ours.sequences == reference.sequences, context
    assert ours.deletion_matrix == reference.deletion_matrix, context


def assert_same_msa_features(ours: dict, reference: dict, context) -> None:
    for key in MSA_FEATURES:
        assert ours[key].dtype == reference[key].dtype, (context, key)
        np.testing.assert_array_equal(ours[key], reference[key], err_msg=f"{context}: {key}")


# ---------------------------------------------------------------------------------------------
# 1. MSA search: foldflow (pyhmmer) == the jackhmmer binary as AlphaFold runs it


def test_search_settings_are_alphafolds():
    """foldflow's default thresholds are the defaults of AlphaFold's Jackhmmer wrapper (incE = E there)."""
    wrapper = inspect.signature(af_jackhmmer.Jackhmmer.__init__).parameters
    config = MsaConfig()
    assert config.iterations == wrapper["n_iter"].default
    assert config.e_value == config.inclusion_e_value == wrapper["e_value"].default
    assert (config.filter_f1, config.filter_f2, config.filter_f3) == (
        wrapper["filter_f1"].default, wrapper["filter_f2"].default, wrapper["filter_f3"].default)
    assert {db.name: db.max_hits for db in bundled_databases()} == AF_LIMITS


@pytest.mark.parametrize("iterations", [1, 3])
@pytest.mark.parametrize("database", ["uniref90", "small_bfd", "mgnify"])
def test_search_equals_the_jackhmmer_binary(jackhmmer_binary, tmp_path, database, iterations):
    """Every row (name, aligned sequence, deletions) of foldflow's MSA is the binary's, in its order."""
    config = MsaConfig(iterations=iterations)
    (db,) = [d for d in config.databases if d.name == database]
    ours = ResidentDatabases(config)
    depths = {}
    for name, sequence in {**QUERIES, "unrelated": UNRELATED}.items():
        reference = parsers.parse_stockholm(
            alphafold_jackhmmer(jackhmmer_binary, tmp_path, name, sequence, db.path, iterations, db.max_hits))
        assert_same_msa(ours.search_one(name, sequence, database).parse(), reference, (database, iterations, name))
        depths[name] = len(reference.sequences)
    # meaningful only if some query has homologues in this database, and the unrelated one none
    assert max(depths.values()) >= 3, depths
    assert depths["unrelated"] == 1


def test_more_iterations_find_more_homologues(jackhmmer_binary, tmp_path):
    """The 3-iteration parity cases differ from the 1-iteration ones (per the binary itself)."""
    deeper = []
    for db in bundled_databases():
        for name in QUERIES:
            one, three = (len(parsers.parse_stockholm(alphafold_jackhmmer(
                jackhmmer_binary, tmp_path, name, QUERIES[name], db.path, n)).sequences) for n in (1, 3))
            assert three >= one
            if three > one:
                deeper.append((db.name, name, one, three))
    assert len(deeper) >= 5, deeper


# ---------------------------------------------------------------------------------------------
# 2. Hit limits: foldflow truncates as AlphaFold's run_msa_tool does


def write_deep_database(path: Path, copies: int = MUTATED_COPIES) -> None:
    """``copies`` mutants of DEEP_QUERY (30 % random substitutions, fixed seed) interleaved with the
    1,000 real, unrelated MGnify sequences of the bundled mini database: every mutant is a hit."""
    rng = np.random.default_rng(0)
    alphabet = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    query = np.array(list(DEEP_QUERY))
    real_sequences, real_descriptions = parsers.parse_fasta((BUNDLED_DB_DIR / "mgnify_mini.fasta").read_text())
    with path.open("w") as handle:
        for i in range(max(copies, len(real_sequences))):
            if i < copies:
                mutant = query.copy()
                mask = rng.random(len(query)) < 0.30
                mutant[mask] = rng.choice(alphabet, int(mask.sum()))
                handle.write(f">mutant{i:04d} 30% substitutions of HG003688_5\n{''.join(mutant)}\n")
            if i < len(real_sequences):
                handle.write(f">{real_descriptions[i]}\n{real_sequences[i]}\n")


@pytest.fixture(scope="module")
def deep_database(tmp_path_factory, jackhmmer_binary):
    folder = tmp_path_factory.mktemp("deep")
    database = folder / "database.fasta"  # not deep.fasta: that is the query file
    write_deep_database(database)
    full = alphafold_jackhmmer(jackhmmer_binary, folder, "deep", DEEP_QUERY, database, 1)
    return database, folder, full


def test_deep_query_reaches_the_mgnify_limit(deep_database):
    _, _, full = deep_database
    depth = len(parsers.parse_stockholm(full).sequences)
    assert depth == MUTATED_COPIES + 1 > AF_MGNIFY_MAX_HITS  # every mutant found, more than AlphaFold keeps


def test_mgnify_hit_limit_is_alphafolds(deep_database, jackhmmer_binary):
    """mgnify with AlphaFold's max_hits=501: the query plus the binary's first 500 hits, exactly the
    rows AlphaFold's run_msa_tool keeps (truncate_stockholm_msa counts the query among the 501)."""
    database, folder, full = deep_database
    reference = parsers.parse_stockholm(alphafold_jackhmmer(
        jackhmmer_binary, folder, "deep", DEEP_QUERY, database, 1, AF_MGNIFY_MAX_HITS))
    untruncated = parsers.parse_stockholm(full)
    assert len(reference.sequences) == AF_MGNIFY_MAX_HITS
    assert reference.descriptions == untruncated.descriptions[:AF_MGNIFY_MAX_HITS]
    assert reference.sequences == untruncated.sequences[:AF_MGNIFY_MAX_HITS]

    config = MsaConfig(databases=[DatabaseConfig(name="mgnify", path=database, max_hits=AF_MGNIFY_MAX_HITS)])
    alignment = ResidentDatabases(config).search_one("deep", DEEP_QUERY, "mgnify")
    assert alignment.depth == AF_MGNIFY_MAX_HITS
    assert_same_msa(alignment.parse(), reference, "mgnify 501")


def test_uniref90_hit_limit_is_alphafolds(deep_database, jackhmmer_binary):
    """uniref90's limit of 10,000 hits is out of reach of a test-sized database: with it, nothing is cut
    (foldflow's MSA is the binary's full output); the same rule is then checked with a limit of 250
    applied as AlphaFold applies uniref_max_hits (the wrapper's truncate_stockholm_msa)."""
    database, folder, full = deep_database
    for limit, expected in ((AF_UNIREF_MAX_HITS, parsers.parse_stockholm(full)),
                            (250, parsers.parse_stockholm(alphafold_jackhmmer(
                                jackhmmer_binary, folder, "deep", DEEP_QUERY, database, 1, 250)))):
        config = MsaConfig(databases=[DatabaseConfig(name="uniref90", path=database, max_hits=limit)])
        ours = ResidentDatabases(config).search_one("deep", DEEP_QUERY, "uniref90").parse()
        assert len(ours.sequences) == min(limit, MUTATED_COPIES + 1)
        assert_same_msa(ours, expected, f"uniref90 max_hits={limit}")


# ---------------------------------------------------------------------------------------------
# 3. Deduplication: foldflow's features == DeepMind AlphaFold 2.3's make_msa_features


def test_reference_is_the_fork_with_deduplication_restored():
    """The vendored reference is the installed fork's function with the three deduplication lines the
    fork commented out put back (guards the reference against drift; also passes if the fork
    restores them itself)."""
    def body(function):
        return [line.strip() for line in inspect.getsource(function).splitlines()]

    fork = [line.lstrip("#").strip() for line in body(pipeline.make_msa_features)]
    deepmind = body(deepmind_pipeline.make_msa_features)
    assert fork == deepmind
    for line in ("if sequence in seen_sequences:", "continue", "seen_sequences.add(sequence)"):
        assert line in deepmind


def alphafold_msas_from_files(folder: Path) -> list[parsers.Msa]:
    """What AlphaFold's DataPipeline (use_precomputed_msas) parses: hit-limited Stockholm, bfd A3M."""
    uniref90 = parsers.parse_stockholm(parsers.truncate_stockholm_msa(
        str(folder / "uniref90_hits.sto"), AF_UNIREF_MAX_HITS))
    mgnify = parsers.parse_stockholm(parsers.truncate_stockholm_msa(
        str(folder / "mgnify_hits.sto"), AF_MGNIFY_MAX_HITS))
    bfd = parsers.parse_a3m((folder / "bfd_uniclust_hits.a3m").read_text())
    return [uniref90, bfd, mgnify]


def test_features_of_real_alphafold_msas_equal_deepminds(tmp_path):
    """The real AlphaFold MSAs of tests/data/msas/short (uniref90 + mgnify Stockholm, 1,024-row bfd A3M)."""
    shutil.copytree(DATA / "msas" / "short", tmp_path / "short")
    msas = alphafold_msas_from_files(tmp_path / "short")
    reference = {**pipeline.make_sequence_features(SHORT_SEQUENCE, "short", len(SHORT_SEQUENCE)),
                 **deepmind_pipeline.make_msa_features(msas)}

    alignments = load_precomputed(tmp_path, "short", SHORT_SEQUENCE, {"uniref90": AF_UNIREF_MAX_HITS,
                                                                       "mgnify": AF_MGNIFY_MAX_HITS})
    ours = build_features(SHORT_SEQUENCE, "short", alignments, deduplicate=True)
    assert_same_msa_features(ours, reference, "short")
    for key in ("aatype", "residue_index", "seq_length", "sequence", "domain_name"):
        np.testing.assert_array_equal(ours[key], reference[key], err_msg=key)

    # the data do repeat rows across (and within) MSAs, so deduplication is exercised ...
    rows = sum(len(msa.sequences) for msa in msas)
    assert reference["num_alignments"][0] < rows - len(msas) + 1
    # ... and the fork's features (deduplicate=False) are not DeepMind's
    undeduplicated = build_features(SHORT_SEQUENCE, "short", alignments, deduplicate=False)
    assert undeduplicated["num_alignments"][0] == rows
    assert undeduplicated["msa"].shape != reference["msa"].shape


@pytest.mark.parametrize("iterations", [1, 3])
def test_features_of_searched_msas_equal_alphafolds(jackhmmer_binary, tmp_path, iterations):
    """AlphaFold 2.3 end to end (use_small_bfd): the binary's uniref90 (10,000 hits), small_bfd and mgnify
    (501 hits) MSAs of the bundled databases through DeepMind's make_msa_features, against foldflow's
    own search and build_features."""
    config = MsaConfig(iterations=iterations)
    ours_search = ResidentDatabases(config)
    paths = {db.name: db.path for db in config.databases}
    for name, sequence in {**QUERIES, "unrelated": UNRELATED}.items():
        msas = [parsers.parse_stockholm(alphafold_jackhmmer(
            jackhmmer_binary, tmp_path, name, sequence, paths[db], iterations, AF_LIMITS[db]))
            for db in ("uniref90", "small_bfd", "mgnify")]
        reference = deepmind_pipeline.make_msa_features(msas)

        alignments = ours_search.search(name, sequence)
        ours = build_features(sequence, name, alignments, deduplicate=True)
        assert_same_msa_features(ours, reference, (iterations, name))
        # every MSA starts with the query, so without deduplication the query row is repeated
        assert build_features(sequence, name, alignments, deduplicate=False)["num_alignments"][0] \
            == sum(len(msa.sequences) for msa in msas) > reference["num_alignments"][0]


def test_deduplication_keeps_first_occurrence_in_alphafold_order():
    """A hand-made case: a row shared by mgnify and uniref90 is kept where uniref90 has it (first in
    AlphaFold's order, whatever the order of the alignments given), with uniref90's name."""
    query, shared, own = "MKVLA", "MKVIA", "MRVLA"
    uniref90 = Alignment("uniref90", "a3m", f">q\n{query}\n>UniRef90_A/1-5\n{shared}\n")
    mgnify = Alignment("mgnify", "a3m", f">q\n{query}\n>MGYP1/1-5\n{shared}\n>MGYP2/1-5\n{own}\n>MGYP3/1-5\n{own}\n")
    small_bfd = Alignment("small_bfd", "a3m", f">q\n{query}\n>bfd1\nMKV-A\n")
    reference = deepmind_pipeline.make_msa_features([a.parse() for a in (uniref90, small_bfd, mgnify)])
    assert reference["num_alignments"][0] == 4
    ours = build_features(query, "q", [mgnify, small_bfd, uniref90], deduplicate=True)
    assert_same_msa_features(ours, reference, "hand-made")
