"""The `foldflow` command as a user runs it: exit codes, one-line errors, nothing lost."""

import os
import subprocess
import sys

import types

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import DATA, DEMO_FASTA
from foldflow import api, cli
from foldflow.errors import FoldflowError
from foldflow.options import overrides_from_values, predict_args
from test_msa import SHORT_SEQUENCE

pytestmark = pytest.mark.ray

SMALL_CONFIG = DATA / "small.yaml"


def foldflow(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "foldflow", *map(str, args)], capture_output=True, text=True,
                          env=os.environ, cwd=cwd, timeout=900)


def test_bad_input_exits_2_with_one_line_per_problem(tmp_path):
    fasta = tmp_path / "bad.fasta"
    fasta.write_text(">ok\nMKVLAAGIVG\n>dna\nACGTACGTACGTACGT\n>../escape\nMKV\n")
    result = foldflow("predict", fasta, "--out", tmp_path / "out", "--config", SMALL_CONFIG)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert "target 'dna': looks like a nucleotide sequence" in errors[0]
    assert "target '../escape': id '../escape' would write outside the output directory" in errors[1]
    assert not (tmp_path / "out").exists(), "nothing runs when input is invalid"


@pytest.mark.parametrize("content", [b"", b"\x00\x01binary"])
def test_unreadable_input_exits_2(tmp_path, content):
    fasta = tmp_path / "in.fasta"
    fasta.write_bytes(content)
    result = foldflow("predict", fasta, "--out", tmp_path / "out")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and str(fasta) in errors[0]


def test_missing_parameter_files_fail_before_anything_starts(tmp_path):
    empty = tmp_path / "params"
    empty.mkdir()
    result = foldflow("predict", DEMO_FASTA, "--out", tmp_path / "out", "--params", empty,
                      "--store", tmp_path / "store")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1
    assert f"parameters: model 'model_1': no params_model_1.npz in {empty}" in errors[0]  # run_alphafold's models
    assert not (tmp_path / "out").exists() and not (tmp_path / "store").exists(), "no run was started"


def test_a_missing_database_fails_before_anything_starts(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("msa:\n  databases:\n    - {name: uniref90, path: /nonexistent/uniref90.fasta}\n")
    result = foldflow("predict", DEMO_FASTA, "--out", tmp_path / "out", "--config", config)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and errors == ["error: database 'uniref90': no file /nonexistent/uniref90.fasta"]
    assert not (tmp_path / "out").exists()


def test_a_stage_this_machine_cannot_hold_is_an_error_not_a_hang(tmp_path):
    config = tmp_path / "gpu.yaml"
    config.write_text(SMALL_CONFIG.read_text() + "  model_actor_gpus: 1\n")  # a cluster setting, run locally
    store = tmp_path / "store"
    result = foldflow("predict", DEMO_FASTA, "--out", tmp_path / "out", "--config", config, "--store", store,
                      "--run-id", "no-gpu")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr
    assert "model actors ask for CPU 1, GPU 1, but no node of this local Ray offers that" in errors[0]
    status = foldflow("runs", "status", "no-gpu", "--store", store)
    assert "run no-gpu: failed" in status.stdout and "error: model actors ask for" in status.stdout


def run_cli(*args):
    return CliRunner().invoke(cli.main, list(map(str, args)))


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_an_unexpected_error_in_a_run_exits_1_not_2(tmp_path, monkeypatch):
    def predict(*args, **kwargs):
        raise ValueError("boom\nsecond line")

    monkeypatch.setattr(api, "predict", predict)
    result = run_cli("predict", DEMO_FASTA, "--out", tmp_path / "out")
    assert result.exit_code == 1 and error_lines(result) == ["error: ValueError: boom", "error: second line"]
    assert "Traceback" not in result.stderr
    verbose = run_cli("predict", DEMO_FASTA, "--out", tmp_path / "out", "-v")
    assert verbose.exit_code == 1 and "Traceback" in verbose.stderr


def test_a_foldflow_error_exits_2_one_line_per_problem(tmp_path, monkeypatch):
    def predict(*args, **kwargs):
        raise FoldflowError("first problem\nsecond problem")

    monkeypatch.setattr(api, "predict", predict)
    result = run_cli("predict", DEMO_FASTA, "--out", tmp_path / "out")
    assert result.exit_code == 2 and error_lines(result) == ["error: first problem", "error: second problem"]


def test_a_bad_config_file_exits_2_naming_each_problem(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("model:\n  num_recycles: 3\nmax_length: 0\n")
    result = run_cli("predict", DEMO_FASTA, "--out", tmp_path / "out", "--config", config)
    assert result.exit_code == 2, result.output
    assert error_lines(result) == [f"error: config {config}: model.num_recycles: Extra inputs are not permitted",
                                   f"error: config {config}: max_length: Input should be greater than or equal to 1"]


def test_submit_takes_every_option_of_predict():
    def options(command) -> set[str]:
        return {flag for param in command.params for flag in param.opts if flag.startswith("-")}

    predict, submit = options(cli.predict), options(cli.submit)
    assert predict <= submit, "--address is the Ray cluster for predict, the dashboard for submit"
    assert submit - predict == {"--python", "--wait"}


def test_submitted_predict_args_make_the_same_run(monkeypatch):
    args = ["in.fasta", "--out", "out", "--config", "c.yaml", "--params", "p", "--msa-dir", "m",
            "--models", "model_1_ptm,model_2_ptm", "--num-recycle", "3", "--max-length", "900",
            "--store", "s3://bucket/store", "--skip-invalid", "--progress", "none"]
    values = cli.submit.make_context("submit", [*args, "--address", "http://head:8265"]).params
    overrides = overrides_from_values(values)
    assert overrides["model.names"] == ["model_1_ptm", "model_2_ptm"] and overrides["pipeline.progress"] == "none"
    assert predict_args("in.fasta", "out", "c.yaml", overrides) == args

    submitted = {}
    jobs = types.SimpleNamespace(submit_run=lambda address, run_id, predict_args, working_dir, python:
                                 submitted.update(args=predict_args, python=python) or f"foldflow-{run_id}")
    monkeypatch.setitem(sys.modules, "foldflow.pipeline.jobs", jobs)  # no Ray
    run_id, job_id = api.submit("in.fasta", "out", "http://head:8265", "c.yaml", "r1", python="py",
                                         **overrides)
    assert (run_id, job_id) == ("r1", "foldflow-r1") and submitted == {"args": args, "python": "py"}


def test_overrides_without_a_command_line_option_are_refused():
    with pytest.raises(FoldflowError, match="setting 'msa.iterations' has no command-line option"):
        predict_args("in.fasta", "out", overrides={"msa.iterations": 3})
    with pytest.raises(FoldflowError, match="skip_invalid: only True"):
        predict_args("in.fasta", "out", overrides={"skip_invalid": False})


def test_the_api_takes_the_command_lines_option_names_with_their_meaning():
    """foldflow.predict/start(..., relax="none", models=..., num_recycle=1) set what the CLI's options set
    (parsed by click here, not by foldflow)."""
    args = ["--relax", "none", "--models", "model_1_ptm,model_1_multimer_v3", "--num-recycle", "1", "--no-templates",
            "--no-progress", "--skip-invalid", "--random-seed", "3", "--max-template-date", "2020-01-01"]
    parsed = overrides_from_values(cli.predict.make_context("predict", ["in.fasta", "--out", "o", *args]).params)
    keywords = dict(relax="none", models="model_1_ptm,model_1_multimer_v3", num_recycle=1, no_templates=True,
                    no_progress=True, skip_invalid=True, random_seed=3, max_template_date="2020-01-01")
    from_cli = api.apply_overrides(api.default_config(), parsed)
    assert api.apply_overrides(api.default_config(), keywords) == from_cli
    assert api.apply_overrides(api.default_config(), {**keywords, "models": ["model_1_ptm", "model_1_multimer_v3"]}
                               ) == from_cli
    assert (from_cli.relax.models_to_relax, from_cli.model.num_recycle, from_cli.msa.templates.enabled,
            from_cli.pipeline.progress) == ("none", 1, False, "none")
    with pytest.raises(FoldflowError, match="--no-progress contradicts another option"):
        api.apply_overrides(api.default_config(), {"progress": "bars", "no_progress": True})


@pytest.mark.parametrize("command", [cli.predict, cli.submit, cli.design])
def test_no_progress_is_progress_none_in_every_command(command):
    required = {cli.predict: ["in.fasta", "--out", "o"], cli.submit: ["in.fasta", "--out", "o", "--address", "a"],
                cli.design: ["--out", "o"]}[command]
    for given in (["--no-progress"], ["--progress", "none"]):
        values = command.make_context(command.name, [*required, *given]).params
        assert overrides_from_values(values)["pipeline.progress"] == "none", given
    helps = {p.opts[0]: p.help for p in command.params if p.opts[0] in ("--progress", "--no-progress")}
    assert helps == {p.opts[0]: p.help for p in cli.predict.params if p.opts[0] in ("--progress", "--no-progress")}


def test_start_takes_the_command_lines_option_names(tmp_path):
    """foldflow.start(..., relax="none") was refused ("setting 'relax' has no command-line option"): the child
    run gets the options, and a bad input ends it with exit 2 as on the command line."""
    import foldflow

    fasta = tmp_path / "bad.fasta"
    fasta.write_text(">dna\nACGTACGTACGTACGT\n")
    handle = foldflow.start(fasta, tmp_path / "out", relax="none", models="model_1_ptm", num_recycle=1,
                            store=str(tmp_path / "store"))
    assert handle.wait(timeout=300) == 2
    command = " ".join(handle.process.args)
    assert "--relax none" in command and "--models model_1_ptm" in command and "--num-recycle 1" in command
    assert "target 'dna': looks like a nucleotide sequence" in handle.log.read_text()


@pytest.mark.slow
def test_skip_invalid_runs_the_rest_and_keeps_earlier_outputs(tmp_path):
    first = DEMO_FASTA.read_text().split(">")[1]
    mutated = "W" + SHORT_SEQUENCE[1:]
    fasta = tmp_path / "mixed.fasta"
    fasta.write_text(f">{first}>dna\nACGTACGTACGTACGT\n>short\n{mutated}\n>../../evil\nMKVLA\n"
                     f">sp|odd:id/A   odd header\nMKVLAAGIVGALLAV\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier_result.txt").write_text("keep me")
    result = foldflow("predict", fasta, "--out", out, "--config", SMALL_CONFIG, "--skip-invalid",
                      "--msa-dir", DATA / "msas", "--store", tmp_path / "store")
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[0].startswith("foldflow: model_1_ptm with RANDOM parameters")
    summary = pq.read_table(out / "summary.parquet").to_pandas().set_index("target_id")
    assert summary.loc["HG003686_698", "status"] == "ok"
    assert summary.loc["dna", "status"] == "invalid"
    assert summary.loc["short", "status"] == "failed"
    assert "query row (73 residues) does not match the target sequence" in summary.loc["short", "error"]
    assert (out / "HG003686_698" / "ranked_0.pdb").is_file()
    assert not (out / "short").exists()
    assert (out / "earlier_result.txt").read_text() == "keep me"
    assert "2/5 targets predicted (0 from the store)" in result.stdout
    escaping = summary[summary["error"].str.contains("would write outside the output directory", na=False)]
    assert escaping["status"].tolist() == ["invalid"]
    assert (out / "sp_odd_id_A" / "ranked_0.pdb").is_file()  # an odd id becomes a safe folder name
    outside = {p.name for p in tmp_path.iterdir()} - {"mixed.fasta", "out", "store"}
    assert not outside and not (tmp_path.parent / "evil").exists(), "nothing written outside --out"
