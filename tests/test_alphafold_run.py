"""What a run_alphafold user runs, through the CLI: a monomer with a template, a homomer and a heteromer,
five models each, the best relaxed; outputs and ranking as AlphaFold 2.3 writes them.

Random parameters and the smallest settings (no recycling, 8/16 MSA rows, one 64-residue bucket), on a
local Ray with the real pools (MSA, model, relax).
"""

import json
import os
import subprocess
import sys

import gemmi
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import ROOT
from test_scoring import reference_pdockq
from foldflow.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.ray]

# PDB 5y2e chain A with one substitution (residue 24): 5y2e is its template (for 5y2e's own sequence DeepMind's
# AlphaFold rejects the entry as a duplicate of the query).
MONOMER = "MIEKQMDRVVKEMRRQLEMIDKLATRGIEQVELLKRIHDKLMIRAVD"
WALKER_A = "YKGEIFALLGASGCGKSTLLRMLAGFEQPS"  # E. coli PotA residues 43-72 (tests/data/multimer)
SIGNATURE = "HQLSGGQRQRVALARSLAKRPKLL"  # PotA residues 148-171
FASTA = (f">mono5y2e\n{MONOMER}\n>homodimer\n{SIGNATURE}:{SIGNATURE}\n"
         f">walker complex=heterodimer\n{WALKER_A}\n>signature complex=heterodimer\n{SIGNATURE}\n")
MONOMER_MODELS = [f"model_{i}_ptm" for i in range(1, 6)]
MULTIMER_MODELS = [f"model_{i}_multimer_v3" for i in range(1, 6)]
RANDOM_SEED = 3


def runners(models):
    return [f"{m}_pred_0" for m in models]


def run_cli(tmp_path, run_id):
    config = {"model": {"names": ["monomer_ptm", "multimer"], "predictions_per_model": 1, "num_recycle": 0,
                        "max_msa_clusters": 8, "max_extra_msa": 16, "bucket_lengths": [64]},
              "store": str(tmp_path / "store")}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "input.fasta").write_text(FASTA)
    return subprocess.run(
        [sys.executable, "-m", "foldflow", "predict", str(tmp_path / "input.fasta"), "--out", str(tmp_path / "out"),
         "--config", str(tmp_path / "config.yaml"), "--random-seed", str(RANDOM_SEED), "--relax", "best",
         "--run-id", run_id, "--progress", "jsonl"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=1500)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("alphafold_run")
    first = run_cli(tmp_path, "first")
    assert first.returncode == 0, first.stderr[-3000:]
    (tmp_path / "first.stderr").write_text(first.stderr)
    table = pq.read_table(tmp_path / "out" / "summary.parquet").to_pandas().set_index("target_id")
    return tmp_path, table


def mean_plddt_from_b_factors(path) -> float:
    """Mean pLDDT read back from a structure's CA B-factors (AlphaFold writes pLDDT there)."""
    structure = gemmi.read_structure(str(path))
    return float(np.mean([r["CA"][0].b_iso for chain in structure[0] for r in chain]))


def chain_plddt_from_b_factors(path) -> tuple[float, ...]:
    structure = gemmi.read_structure(str(path))
    return tuple(float(np.mean([r["CA"][0].b_iso for r in chain])) for chain in structure[0])


def chains_of(path) -> dict[str, str]:
    structure = gemmi.read_structure(str(path))
    return {chain.name: gemmi.one_letter_code([r.name for r in chain]) for chain in structure[0]}


def test_every_target_predicted_with_five_models(run):
    tmp_path, table = run
    assert (table["status"] == "ok").all(), table["error"].to_dict()
    assert table.loc["mono5y2e", "chains"] == 1 and table.loc["homodimer", "chains"] == 2
    for target, models in (("mono5y2e", MONOMER_MODELS), ("homodimer", MULTIMER_MODELS),
                           ("heterodimer", MULTIMER_MODELS)):
        folder = tmp_path / "out" / target
        names = runners(models)
        assert sorted(p.name for p in folder.glob("unrelaxed_*.pdb")) == sorted(f"unrelaxed_{n}.pdb" for n in names)
        assert sorted(p.name for p in folder.glob("ranked_*.cif")) == [f"ranked_{i}.cif" for i in range(5)]
        # run_alphafold: prediction i of n has seed i + random_seed * n
        seeds = {n: int(table.loc[target, f"seed_{n}"]) for n in names}
        assert seeds == {n: i + RANDOM_SEED * 5 for i, n in enumerate(names)}, target
        assert table.loc[target, "model_calls"] == 5 and table.loc[target, "bucket"] == 64


def test_monomer_ranking_and_relaxation_follow_run_alphafold(run):
    tmp_path, table = run
    folder = tmp_path / "out" / "mono5y2e"
    ranking = json.loads((folder / "ranking_debug.json").read_text())
    assert set(ranking) == {"plddts", "order"}
    scores = ranking["plddts"]
    assert ranking["order"] == sorted(scores, key=scores.get, reverse=True)
    for name, score in scores.items():  # the ranking confidence of a monomer is its mean pLDDT
        assert mean_plddt_from_b_factors(folder / f"unrelaxed_{name}.pdb") == pytest.approx(score, abs=0.05)
    best, *others = ranking["order"]
    assert [p.name for p in folder.glob("relaxed_*.pdb")] == [f"relaxed_{best}.pdb"], "--relax best"
    assert (folder / "ranked_0.pdb").read_text() == (folder / f"relaxed_{best}.pdb").read_text()
    for rank, name in enumerate(others, start=1):
        assert (folder / f"ranked_{rank}.pdb").read_text() == (folder / f"unrelaxed_{name}.pdb").read_text()
    metrics = json.loads((folder / "relax_metrics.json").read_text())
    assert list(metrics) == [best] and len(metrics[best]["remaining_violations"]) == len(MONOMER)
    assert metrics[best]["remaining_violations_count"] == table.loc["mono5y2e", "relax_violations"]
    assert table.loc["mono5y2e", "relaxed"] and table.loc["mono5y2e", "model"] == best
    assert set(json.loads((folder / "timings.json").read_text())) == {
        "features", *(f"{stage}_{n}" for n in scores for stage in ("process_features", "predict_and_compile")),
        f"relax_{best}"}


def test_monomer_uses_its_template(run):
    tmp_path, table = run
    # 5y2e_A and 7rye_J (the same protein in another entry), both in the bundled mmCIF folder
    assert table.loc["mono5y2e", "templates"] == 2 and table.loc["mono5y2e", "template_searches"] == 1
    hits = (tmp_path / "out" / "mono5y2e" / "msas" / "pdb_hits.sto").read_text()
    assert "5y2e_A" in hits
    assert (tmp_path / "out" / "mono5y2e" / "msas" / "uniref90_hits.sto").is_file()


@pytest.mark.parametrize("target, chains", [("homodimer", {"A": SIGNATURE, "B": SIGNATURE}),
                                            ("heterodimer", {"A": WALKER_A, "B": SIGNATURE})])
def test_complexes_have_chains_and_multimer_ranking(run, target, chains):
    tmp_path, table = run
    folder = tmp_path / "out" / target
    for name in ("ranked_0.pdb", "ranked_4.pdb"):
        assert chains_of(folder / name) == chains, name
    ranking = json.loads((folder / "ranking_debug.json").read_text())
    assert set(ranking) == {"iptm+ptm", "order"}
    scores = ranking["iptm+ptm"]
    assert ranking["order"] == sorted(scores, key=scores.get, reverse=True)
    row = table.loc[target]
    assert row["model"] == ranking["order"][0]
    assert scores[row["model"]] == pytest.approx(0.8 * row["iptm"] + 0.2 * row["ptm"], abs=2e-3)
    assert (folder / f"relaxed_{row['model']}.pdb").is_file()
    assert chains_of(folder / f"relaxed_{row['model']}.pdb") == chains
    # the interface scores of the summary are the pDockQ authors' code's on the best (unrelaxed) model, whose
    # B-factors hold its pLDDT to 2 decimals; per-chain pLDDT are the means of each chain's B-factors
    best = folder / f"unrelaxed_{row['model']}.pdb"
    assert row["pdockq"] == pytest.approx(reference_pdockq(best, ("A", "B")), abs=1e-4)
    assert (row["plddt_A"], row["plddt_B"]) == pytest.approx(chain_plddt_from_b_factors(best), abs=0.01)


def test_each_distinct_chain_is_searched_once(run):
    """A homomer searches its chain once; a heteromer's chains also search UniProt for pairing. Every
    search key of the batch was computed exactly once (the store's ledger)."""
    tmp_path, table = run
    homodimer, heterodimer = tmp_path / "out" / "homodimer" / "msas", tmp_path / "out" / "heterodimer" / "msas"
    assert sorted(p.name for p in homodimer.iterdir()) == ["A"]
    assert "uniprot_hits.sto" not in {p.name for p in (homodimer / "A").iterdir()}
    assert sorted(p.name for p in heterodimer.iterdir()) == ["A", "B"]
    assert {p.name for p in (heterodimer / "B").iterdir()} >= {"uniref90_hits.sto", "uniprot_hits.sto"}
    searches = Store(tmp_path / "store").computations("msa")
    # mono: 3 databases; homodimer: 3; heterodimer: WALKER_A 3 + UniProt, SIGNATURE only UniProt (its three
    # monomer searches are the homodimer's: same keys)
    assert len(searches) == 3 + 3 + 4 + 1
    assert all(counts["finished"] == 1 for counts in searches.values())


def progress_events(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_progress_is_reported_per_stage_as_json_lines(run):
    tmp_path, _ = run
    events = progress_events((tmp_path / "first.stderr").read_text())
    final = {event["stage"]: event["counts"] for event in events}  # each stage's counts after its last event
    # per distinct chain: mono5y2e's, the homodimer's and the heterodimer's two (SIGNATURE twice: searched for
    # pairing in the heterodimer only); the homodimer's SIGNATURE runs after the heterodimer's (longest first,
    # one MSA actor), which searched every database it needs: it is found in the store
    chain_steps = {"total": 4, "done": 3, "cached": 1}
    assert final == {"msa": chain_steps, "templates": chain_steps, "features": {"total": 3, "done": 3},
                     "model": {"total": 15, "done": 15}, "relax": {"total": 3, "done": 3},
                     "score": {"total": 3, "done": 3}, "output": {"total": 3, "done": 3}}
    states: dict = {}
    for event in events:
        states.setdefault((event["target"], event["stage"], event["item"]), []).append(event["state"])
    assert len(states) == 4 + 4 + 3 + 15 + 3 + 3 + 3
    assert all(s in (["queued", "running", "done"], ["queued", "running", "cached"]) for s in states.values())
    assert [key for key, s in states.items() if s[-1] == "cached"] == [("homodimer", "msa", "A"),
                                                                      ("homodimer", "templates", "A")]
    assert {e["run_id"] for e in events} == {"first"}


def test_a_second_run_computes_nothing(run):
    tmp_path, _ = run
    second = run_cli(tmp_path, "second")
    assert second.returncode == 0, second.stderr[-3000:]
    final = {event["stage"]: event["counts"] for event in progress_events(second.stderr)}
    assert final["model"] == {"total": 15, "cached": 15} and final["msa"] == {"total": 4, "cached": 4}
    assert final["features"] == {"total": 3, "cached": 3}
    table = pq.read_table(tmp_path / "out" / "summary.parquet").to_pandas()
    assert table["cached"].all()
    assert (table[["msa_searches", "template_searches", "model_calls", "relaxations"]] == 0).all().all()
    # every step of the batch was computed once, by the first run: 5 models x 3 targets, the best of each
    # relaxed, the templates of each distinct uniref90 alignment (mono5y2e, SIGNATURE, WALKER_A), the
    # features of each target, the searches of test_each_distinct_chain_is_searched_once
    store = Store(tmp_path / "store")
    computed = {kind: store.computations(kind) for kind in store.list_dir("computations")}
    assert {kind: len(keys) for kind, keys in computed.items()} == {
        "prediction": 15, "relax": 3, "templates": 3, "features": 3, "msa": 11}
    assert all(counts == {"started": 1, "finished": 1} for keys in computed.values() for counts in keys.values())
