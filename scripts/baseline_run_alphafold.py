"""The way `run_alphafold` works, for one target, as a baseline: one process does everything.

Start Python, load the parameters from their npz, read the databases from disk
and search them, build features, compile XLA for this exact length (no
buckets, no persistent compilation cache), predict, write the outputs, exit.
Used by scripts/bench_end_to_end.py; it calls the same science functions
foldflow uses, so the comparison measures the orchestration, not the code.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from foldflow.config import ModelConfig, MsaConfig
from foldflow.features import build_features
from foldflow.models.alphafold2 import AlphaFold2
from foldflow.msa.jackhmmer import ResidentDatabases
from foldflow.outputs import write_target
from foldflow.targets import load_targets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("fasta", type=Path)
    parser.add_argument("--params", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model-settings", required=True, help="ModelConfig as JSON")
    args = parser.parse_args()
    start = time.perf_counter()
    (target,) = load_targets(args.fasta).targets
    settings = ModelConfig.model_validate_json(args.model_settings).model_copy(
        update={"params_dir": args.params, "bucket_lengths": []})
    model = AlphaFold2("model_1_ptm", settings)  # loads the npz
    alignments = ResidentDatabases(MsaConfig()).search(target.id, target.sequence)  # reads the databases
    features = build_features(target.sequence, target.description, alignments)
    prediction = model.predict(features, settings.seed_for("model_1_ptm"), target.length)  # compiles for this length
    args.out.mkdir(parents=True, exist_ok=True)
    write_target(args.out, target.id, alignments, [prediction], {"total": time.perf_counter() - start}, False)


if __name__ == "__main__":
    main()
