"""The baseline: targets predicted the way AlphaFold's run_alphafold predicts them, in one process.

One process loops over every record of the FASTA file, sequentially: the
parameters are loaded once, each target's MSAs are searched, its features
built and the model run at the target's exact length (so XLA compiles once
per distinct length, as run_alphafold does; no persistent compilation cache),
and its folder written in AlphaFold's layout (the files foldflow writes with
plots off). Called once per target it is the "job array" way (a process per
target). It uses foldflow's own science functions, so only the orchestration
differs from foldflow.

Usage: baseline_run_alphafold.py FASTA --params DIR --out DIR --model-settings JSON --report JSON
The report holds what the process counted: targets, model programs JAX
compiled (its jit cache), XLA programs built, seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from foldflow.config import ModelConfig, MsaConfig
from foldflow.features import build_features
from foldflow.models.alphafold2 import AlphaFold2
from foldflow.models.compile_stats import measure_compiles
from foldflow.models.predictions import models_for, runners_for, seed_for
from foldflow.msa.jackhmmer import ResidentDatabases
from foldflow.outputs import TargetOutputs, write_target
from foldflow.targets import load_targets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("fasta", type=Path)
    parser.add_argument("--params", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model-settings", required=True, help="ModelConfig as JSON")
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args()
    start = time.perf_counter()
    settings = ModelConfig.model_validate_json(args.model_settings).model_copy(update={"params_dir": args.params})
    (name,) = models_for(settings, False)  # the benchmark's one model
    (runner,) = runners_for(settings, False)
    model = AlphaFold2(name, settings)  # loads the npz once
    databases = ResidentDatabases(MsaConfig())
    args.out.mkdir(parents=True, exist_ok=True)
    targets = load_targets(args.fasta).targets
    with measure_compiles() as xla:
        for target in targets:
            began = time.perf_counter()
            alignments = databases.search(target.id, target.sequence)
            features = build_features(target.sequence, target.description, alignments)
            prediction = model.predict(features, seed_for(settings, runner, False), target.length)  # exact length
            outputs = TargetOutputs(msas={"A": alignments}, template_hits={}, predictions={runner: prediction},
                                    relaxed={}, relax_requested=False,
                                    timings={"total": time.perf_counter() - began}, multimer=False)
            write_target(args.out, target.id, outputs, random_params=False, plots=False)
    args.report.write_text(json.dumps({
        "targets": len(targets), "model_programs": model.compiles, "xla_programs": xla.compiles,
        "xla_cache_hits": xla.cache_hits, "seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
