"""Benchmark 10, second half: what the end-to-end comparison of benchmark 1 becomes on one GPU, derived.

Derived, not measured: from a ``bench_gpu.json`` measured on a GPU (model seconds and compile seconds by
length, the persistent cache's load seconds) and foldflow's measured CPU-side costs (orchestration per target,
benchmark 4; how fully the pipeline keeps a busy device fed, benchmark 3), for a batch of real proteins of
the bundled 2,100-protein proteome, every AlphaFold monomer model (five) per target:

* ``run_alphafold``, one process: per target its MSA search, then per model a compile at the target's own
  length (each distinct length compiles again; no persistent cache) and the prediction, one after the other;
* foldflow, cold: each model compiles once per length bucket, predicts at the bucket's length, MSA searches
  overlap the GPU work (makespan = the busier stage / pipeline efficiency), plus its orchestration per target;
* foldflow, warm: the same with the programs read from the persistent cache instead of compiled.

Seconds at lengths that were not measured are interpolated between measured ones (targets whose bucket
is longer than the longest measured length are left out of the batch) (log-log for predictions,
linear for compiles); every model's prediction costs what model_1_ptm's does (model_3-5 have no template
stack, so slightly less). Which inputs are measured and which derived is printed with the result.

    .venv/bin/python scripts/gpu_end_to_end.py bench_gpu.json [--targets 200] [--msa-seconds 0] [--msa-workers 4]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

PROTEOME = HERE / "data" / "proteome_938293.faa"
MODELS = 5  # AlphaFold's monomer preset: model_1 ... model_5, one prediction each
ORCHESTRATION_S = 0.018  # per target, the largest of benchmark 4's measured 12-18 ms
PIPELINE_EFFICIENCY = 0.964  # benchmark 3, device-bound: busiest stage's work / makespan (measured on the CPU)


def proteome_lengths(count: int, longest: int) -> list[int]:
    """Lengths of ``count`` proteins of the bundled proteome, evenly spaced in its order, whose bucket is at
    most ``longest`` (so no figure is extrapolated beyond the measured lengths)."""
    from foldflow.config import ModelConfig

    records = PROTEOME.read_text().split(">")[1:]
    lengths = [len("".join(r.split("\n")[1:])) for r in records]
    bucket_for = ModelConfig().bucket_for
    usable = [n for n in lengths if 16 <= n and bucket_for(n) <= longest]
    step = max(1, len(usable) // count)
    return usable[::step][:count]


class Measured:
    """Seconds by input length (the padded one) from bench_gpu.json's bfloat16 cases, interpolated between."""

    def __init__(self, record: dict):
        by_shape = {c["pad_to"]: c for c in record["cases"] if c.get("precision") == "bfloat16" and "predict_s" in c}
        cases = [by_shape[n] for n in sorted(by_shape)]
        if len(cases) < 2:
            raise SystemExit("bench_gpu.json: fewer than two bfloat16 lengths measured")
        self.lengths = np.array([c["pad_to"] for c in cases], dtype=float)
        self.predict = np.array([c["predict_s"] for c in cases])
        self.compile = np.array([c["compile_s"] for c in cases])
        loads = [e["first_call_s"] - self.predict_s(e["length"])
                 for e in (record.get("cache_load") or {}).get("lengths", [])]
        self.cache_load_s = max(loads) if loads else None

    def predict_s(self, length: int) -> float:
        return float(np.exp(np.interp(np.log(length), np.log(self.lengths), np.log(self.predict))))

    def compile_s(self, length: int) -> float:
        return float(np.interp(length, self.lengths, self.compile))


def derive(measured: Measured, lengths: list[int], msa_s: float, msa_workers: int) -> dict[str, dict]:
    from foldflow.config import ModelConfig

    padded = [ModelConfig().bucket_for(n) for n in lengths]
    buckets = sorted(set(padded))
    msa_total = msa_s * len(lengths)
    baseline_compile = MODELS * sum(measured.compile_s(n) for n in set(lengths))
    baseline_predict = MODELS * sum(measured.predict_s(n) for n in lengths)
    padded_predict = MODELS * sum(measured.predict_s(n) for n in padded)
    sides = {"run_alphafold, one process": {
        "compile_s": baseline_compile, "predict_s": baseline_predict, "msa_s": msa_total,
        "total_s": msa_total + baseline_compile + baseline_predict}}
    programs = {"foldflow, cold XLA cache": MODELS * sum(measured.compile_s(b) for b in buckets)}
    if measured.cache_load_s is not None:
        programs["foldflow, warm XLA cache"] = MODELS * len(buckets) * measured.cache_load_s
    for side, program_s in programs.items():
        device = program_s + padded_predict + ORCHESTRATION_S * len(lengths)
        sides[side] = {"compile_s": program_s, "predict_s": padded_predict, "msa_s": msa_total,
                       "total_s": max(device, msa_total / msa_workers) / PIPELINE_EFFICIENCY}
    return {"buckets": buckets, "sides": sides}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("record", type=Path, help="bench_gpu.json measured on the GPU")
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--msa-seconds", type=float, default=0.0,
                        help="MSA search seconds per target (0: precomputed MSAs, as a model-bound batch)")
    parser.add_argument("--msa-workers", type=int, default=4, help="foldflow's MSA actors beside the GPU")
    args = parser.parse_args()

    record = json.loads(args.record.read_text())
    measured = Measured(record)
    lengths = proteome_lengths(args.targets, longest=int(measured.lengths[-1]))
    if not lengths:
        raise SystemExit(f"no protein of {PROTEOME.name} has a bucket within the measured lengths "
                         f"(longest {int(measured.lengths[-1])})")
    result = derive(measured, lengths, args.msa_seconds, args.msa_workers)
    device = record["environment"]["device"]
    print(f"measured on {device['kind']} ({device['platform']}), jax {record['environment']['packages']['jax']}: "
          f"predict and compile seconds at lengths {measured.lengths.astype(int).tolist()}, "
          f"cache load {measured.cache_load_s and round(measured.cache_load_s, 2)} s per program set; "
          f"measured on the 2-core CPU: orchestration {ORCHESTRATION_S * 1000:.0f} ms per target (benchmark 4), "
          f"pipeline efficiency {PIPELINE_EFFICIENCY} (benchmark 3)")
    print(f"derived: {len(lengths)} proteins of the bundled proteome, lengths {min(lengths)}-{max(lengths)}, "
          f"{len(set(lengths))} distinct lengths, {len(result['buckets'])} buckets, {MODELS} models each; "
          f"MSA {args.msa_seconds:g} s per target ({args.msa_workers} foldflow MSA actors)")
    baseline = result["sides"]["run_alphafold, one process"]["total_s"]
    print(f"{'side':28s}  {'compile s':>10s}  {'predict s':>10s}  {'MSA s':>9s}  {'total s':>10s}  vs run_alphafold")
    for side, figures in result["sides"].items():
        print(f"{side:28s}  {figures['compile_s']:10.0f}  {figures['predict_s']:10.0f}  {figures['msa_s']:9.0f}  "
              f"{figures['total_s']:10.0f}  {baseline / figures['total_s']:6.2f}x")


if __name__ == "__main__":
    main()
