"""scripts/bench_gpu.py (benchmark 10, measured on a lent GPU) end to end on the CPU at a tiny size, so the
prepared device command keeps working in the sessions that have no device."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alphafold.model import config as af_config

from conftest import ROOT, load_script

SCRIPT = ROOT / "scripts" / "bench_gpu.py"
DERIVE = ROOT / "scripts" / "gpu_end_to_end.py"
MSA_CLUSTERS, EXTRA_MSA, RECYCLES, REPEATS = 8, 16, 0, 1


def test_the_derived_end_to_end_seconds_follow_the_measured_ones():
    """gpu_end_to_end.derive against the same sums done by hand: predictions growing as length^2 between
    the two measured lengths (log-log), compiles linearly, 5 models, foldflow's buckets 112 and 160."""
    derive = load_script("gpu_end_to_end")
    def case(kind: str, precision: str, length: int, predict_s: float, compile_s: float) -> dict:
        return {"case": kind, "precision": precision, "length": length, "pad_to": length, "predict_s": predict_s,
                "compile_s": compile_s}

    record = {"cases": [case("bfloat16", "bfloat16", 100, 2.0, 40.0), case("bfloat16", "bfloat16", 200, 8.0, 60.0),
                        case("float32", "float32", 100, 9.0, 9.0)],
              "cache_load": {"lengths": [{"length": 100, "first_call_s": 3.0}]}}
    result = derive.derive(derive.Measured(record), [112, 150, 150], msa_s=10.0, msa_workers=2)
    assert result["buckets"] == [112, 160]
    sides = result["sides"]
    baseline_compile = 5 * ((40 + 20 * 0.12) + 50)
    baseline_predict = 5 * (2 * 1.12 ** 2 + 2 * 2 * 1.5 ** 2)
    assert sides["run_alphafold, one process"]["total_s"] == pytest.approx(30 + baseline_compile + baseline_predict)
    padded_predict = 5 * (2 * 1.12 ** 2 + 2 * 2 * 1.6 ** 2)
    cold = 5 * ((40 + 20 * 0.12) + 52) + padded_predict + 3 * derive.ORCHESTRATION_S
    assert sides["foldflow, cold XLA cache"]["total_s"] == pytest.approx(cold / derive.PIPELINE_EFFICIENCY)
    warm = 5 * 2 * (3.0 - 2.0) + padded_predict + 3 * derive.ORCHESTRATION_S
    assert sides["foldflow, warm XLA cache"]["total_s"] == pytest.approx(warm / derive.PIPELINE_EFFICIENCY)
    # MSA-bound: 10 targets of 100 s searches on 2 actors take longer than their GPU work
    msa_bound = derive.derive(derive.Measured(record), [112] * 10, msa_s=100.0, msa_workers=2)["sides"]
    assert msa_bound["foldflow, warm XLA cache"]["total_s"] == pytest.approx(500 / derive.PIPELINE_EFFICIENCY)


@pytest.mark.slow
def test_every_case_is_measured_and_a_new_process_loads_the_programs_from_disk(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    # the parameters come from the test session's cache; the XLA programs are compiled cold under tmp_path
    shared_params = Path(os.environ["FOLDFLOW_CACHE_DIR"]) / "params"
    shared_params.mkdir(parents=True, exist_ok=True)
    (cache / "params").symlink_to(shared_params, target_is_directory=True)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--lengths", "16", "--float32-length", "16", "--padding-length", "16",
         "--num-recycle", str(RECYCLES), "--msa-clusters", str(MSA_CLUSTERS), "--extra-msa", str(EXTRA_MSA),
         "--repeats", str(REPEATS), "--cache-dir", str(cache), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "bench_gpu.json").read_text())

    cases = {(c["case"], c["length"], c["pad_to"]): c for c in record["cases"]}
    assert set(cases) == {("bfloat16", 16, 16), ("float32", 16, 16), ("padding", 16, 64)}
    # AlphaFold's monomer input pipeline gives max_templates of the MSA clusters to the templates
    data = af_config.model_config("model_1_ptm").data
    clusters = MSA_CLUSTERS - (data.eval.max_templates if data.common.reduce_msa_clusters_by_max_templates else 0)
    for case in cases.values():
        assert (case["recycles"], case["msa_clusters"], case["extra_msa_rows"]) == (RECYCLES, clusters, EXTRA_MSA)
        assert len(case["predict_calls_s"]) == REPEATS and case["finite"] and math.isfinite(case["mean_plddt"])
        assert case["xla_programs_built"] > 0 and case["xla_programs_from_disk"] == 0  # each shape compiled cold
    assert [c["precision"] for c in record["cases"]] == ["bfloat16", "float32", "bfloat16"]

    padding = record["padding"]
    assert (padding["length"], padding["bucket"]) == (16, 64)
    assert all(math.isfinite(padding[k]) for k in ("max_ca_shift_A", "max_abs_dplddt", "max_abs_dpae_A"))

    loaded = {entry["length"]: entry for entry in record["cache_load"]["lengths"]}
    assert set(loaded) == {16}
    assert loaded[16]["xla_programs_built"] == 0 and loaded[16]["xla_programs_from_disk"] > 0
    assert "skipped" not in json.dumps(record)
    assert "A100 / this" in done.stdout

    derived = subprocess.run([sys.executable, str(DERIVE), str(tmp_path / "bench_gpu.json"), "--targets", "10"],
                             capture_output=True, text=True, timeout=300)
    assert derived.returncode == 0, derived.stderr[-3000:]
    assert "foldflow, warm XLA cache" in derived.stdout and "lengths [16, 64]" in derived.stdout
