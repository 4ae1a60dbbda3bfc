"""Benchmark 10: AlphaFold model seconds by length on a GPU, compile seconds, bfloat16 vs float32, padding.

foldflow's AlphaFold wrapper without Ray (``foldflow.models.alphafold2.AlphaFold2``: the model stage's own
``model_inputs`` and ``predict_processed``), random-init parameters (announced: the arithmetic of real
weights, not their numbers), ``model_1_ptm`` with AlphaFold 2.3's monomer settings (3 recycles, 512 MSA
clusters, 5,120 extra MSA rows), bfloat16. Cases, in this order, each started only if its estimated
seconds fit the time left (``--deadline-s``):

1. bfloat16 at each length up to 1,000 (ascending, so the device's peak memory grows case by case):
   features seconds (CPU), compile seconds (XLA's backend compile time in the first call), first-call
   seconds, predict seconds (median of ``--repeats`` further calls), peak device memory;
2. float32 at ``--float32-length``;
3. padding: bfloat16 at ``--padding-length`` padded to foldflow's bucket for it, against the unpadded
   prediction of case 1 (largest CA shift, largest and mean |pLDDT difference|, largest |PAE difference|);
4. the lengths over 1,000 (1,500 by default), if time allows;
5. the persistent compilation cache: a fresh process loads the programs of two lengths compiled above from
   the disk cache and times its first calls (what the cache saves a new actor).

Inputs: one random protein sequence per length (seeded) and a synthetic MSA of clusters + extra rows (the
query with 15 % of positions substituted per row). The model's arrays have AlphaFold's fixed shapes whatever
the MSA holds, so timing does not depend on its content; the MSA rows the model saw are recorded per case.

Writes ``bench_gpu.json`` (in ``$OUT`` if set, else ``--out``) after every case, so a run cut short keeps
what it measured, and prints a table with AlphaFold's published A100 seconds beside the predict seconds.

CPU check (minutes):
    .venv/bin/python scripts/bench_gpu.py --lengths 16,24,40 --float32-length 24 --padding-length 24 \
        --num-recycle 1 --msa-clusters 8 --extra-msa 16 --repeats 2 --out /tmp/bench-gpu
On the device: the command in docs/benchmarks.md (benchmark 10), with the wheels of scripts/gpu_wheels.sh.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the repository, when foldflow is not installed (the device machine)

from bench_padding import padding_differences  # noqa: E402

MODEL = "model_1_ptm"
# AlphaFold's published prediction seconds on one A100 (README, "AlphaFold prediction speed": unrelaxed, three
# recycles, MSA and template search excluded, the run_alphafold --benchmark second call, so compile excluded).
A100_SECONDS = {100: 4.9, 200: 7.7, 300: 13.0, 400: 18.0, 500: 29.0, 1000: 96.0, 1500: 280.0}
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
SUBSTITUTED = 0.15  # fraction of positions changed in each synthetic MSA row
LONG = 1000  # lengths above this run after the float32 and padding cases


def synthetic_features(length: int, rows: int, seed: int) -> dict[str, np.ndarray]:
    """Raw features of a random protein and an MSA of ``rows`` rows (query first), through build_features."""
    from foldflow.features import build_features
    from foldflow.alignment import Alignment

    rng = np.random.default_rng(seed)
    letters = np.array(list(AMINO_ACIDS))
    query = letters[rng.integers(0, 20, length)]
    msa = np.repeat(query[None], rows, axis=0)
    changed = rng.random((rows - 1, length)) < SUBSTITUTED
    msa[1:][changed] = letters[rng.integers(0, 20, int(changed.sum()))]
    a3m = "".join(f">row{i}\n{''.join(row)}\n" for i, row in enumerate(msa))
    return build_features("".join(query), "query", [Alignment("uniref90", "a3m", a3m)])


def device_summary() -> dict:
    import jax

    device = jax.devices()[0]
    return {"platform": device.platform, "kind": device.device_kind, "count": jax.device_count()}


def peak_bytes() -> int | None:
    import jax

    stats = jax.devices()[0].memory_stats()
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def environment() -> dict:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = os.environ.get("FOLDFLOW_COMMIT")  # the device machine's copy of the tree has no .git
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "commit": commit,
            "device": device_summary(),
            "packages": {name: version(name) for name in (
                "jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin", "numpy", "alphafold-colabfold",
                "dm-haiku", "colabfold-kernels")}}


class Bench:
    """Runs the cases against one deadline and writes the record after each."""

    def __init__(self, args: argparse.Namespace, record_path: Path):
        self.args = args
        self.record_path = record_path
        self.started = time.perf_counter()
        self.models: dict[bool, object] = {}
        self.features: dict[int, dict[str, np.ndarray]] = {}
        self.unpadded: dict[int, object] = {}
        self.record: dict = {"benchmark": "bench_gpu", "command": sys.argv, "environment": environment(),
                             "cases": [], "padding": None, "cache_load": None}

    @property
    def seconds_left(self) -> float:
        return self.args.deadline_s - (time.perf_counter() - self.started)

    def save(self) -> None:
        self.record_path.write_text(json.dumps(self.record, indent=1))

    def settings(self, bfloat16: bool):
        from foldflow.config import ModelConfig

        return ModelConfig(names=[MODEL], preset="alphafold", bfloat16=bfloat16, cache_dir=self.args.cache_dir,
                           num_recycle=self.args.num_recycle, max_msa_clusters=self.args.msa_clusters,
                           max_extra_msa=self.args.extra_msa)

    def model(self, bfloat16: bool):
        """The resident model of one precision; the first one created initialises the random parameters."""
        from foldflow.models.alphafold2 import AlphaFold2

        if bfloat16 not in self.models:
            model = AlphaFold2(MODEL, self.settings(bfloat16))
            self.record.setdefault("params", {})[("bfloat16" if bfloat16 else "float32")] = {
                "seconds": model.load_seconds, "initialised": model.initialised}
            self.record["settings"] = {"model": MODEL, "random_params": True,
                                       **AlphaFold2.effective_settings(MODEL, self.settings(True))}
            self.models[bfloat16] = model
        return self.models[bfloat16]

    def raw_features(self, length: int) -> tuple[dict[str, np.ndarray], float]:
        start = time.perf_counter()
        if length not in self.features:
            rows = self.record["settings"]["max_msa_clusters"] + self.record["settings"]["max_extra_msa"]
            self.features[length] = synthetic_features(length, rows, seed=length)
        return self.features[length], time.perf_counter() - start

    def estimate(self, length: int, bfloat16: bool, repeats: int) -> float | None:
        """Seconds a case should take, from the longest bfloat16 case measured (None: nothing yet): compile
        as measured, prediction seconds growing as length squared (AlphaFold's A100 times grow as
        length^0.9 to length^1.7 between 100 and 1,000 residues), float32 twice as slow."""
        measured = [c for c in self.record["cases"] if c.get("precision") == "bfloat16" and "predict_s" in c]
        if not measured:
            return None
        ref = max(measured, key=lambda c: c["length"])
        predict = ref["predict_s"] * max(1.0, length / ref["length"]) ** 2 * (1.0 if bfloat16 else 2.0)
        return ref["compile_s"] + (1 + repeats) * predict

    def run_case(self, kind: str, length: int, bfloat16: bool, pad_to: int | None = None):
        """Measure one case and record it (skipped when its estimate passes the deadline); its first
        prediction, or None."""
        pad_to = pad_to or length
        repeats = self.args.repeats
        estimate = self.estimate(pad_to, bfloat16, repeats)
        if estimate is not None and estimate > self.seconds_left:
            repeats = 1
            estimate = self.estimate(pad_to, bfloat16, repeats)
        case = {"case": kind, "length": length, "pad_to": pad_to, "precision": "bfloat16" if bfloat16 else "float32"}
        first = None
        if estimate is not None and estimate > self.seconds_left:
            case["skipped"] = f"estimated {estimate:.0f} s, {self.seconds_left:.0f} s left"
        else:
            try:
                first = self.measure(case, length, bfloat16, pad_to, repeats)
            except Exception as error:  # out of memory at the longest lengths, say: a result too; the rest go on
                case["error"] = f"{type(error).__name__}: {str(error)[:500]}"
        self.record["cases"].append(case)
        self.save()
        print(row(case), flush=True)
        if first is not None and bfloat16 and pad_to == length:
            self.unpadded[length] = first  # the reference of the padding case
        return first

    def measure(self, case: dict, length: int, bfloat16: bool, pad_to: int, repeats: int):
        """Fill in ``case``'s figures; the first call's prediction."""
        from foldflow.models.compile_stats import measure_compiles

        model = self.model(bfloat16)
        features, case["features_s"] = self.raw_features(length)
        start = time.perf_counter()
        processed = model.model_inputs(features, 0, pad_to)
        case["process_features_s"] = time.perf_counter() - start
        peak_before = peak_bytes()
        with measure_compiles() as compiled:
            start = time.perf_counter()
            first = model.predict_processed(processed, 0, length)
            case["first_call_s"] = time.perf_counter() - start
        case.update(compile_s=compiled.seconds, xla_programs_built=compiled.compiles,
                    xla_programs_from_disk=compiled.cache_hits)
        calls = []
        for _ in range(repeats):
            start = time.perf_counter()
            model.predict_processed(processed, 0, length)
            calls.append(time.perf_counter() - start)
        peak = peak_bytes()
        case.update(predict_s=statistics.median(calls), predict_calls_s=calls, recycles=first.recycles,
                    msa_clusters=first.msa_clusters, extra_msa_rows=first.extra_msa_rows,
                    mean_plddt=first.mean_plddt, finite=bool(np.isfinite(first.atom_positions).all()),
                    # the device's peak since the process started: this case's own only if it rose during it
                    peak_gib=peak / 2 ** 30 if peak is not None and peak != peak_before else None,
                    a100_s=A100_SECONDS.get(length) if pad_to == length else None)
        return first

    def padding(self, length: int) -> None:
        from foldflow.config import ModelConfig

        bucket = ModelConfig().bucket_for(length)
        exact = self.unpadded.get(length) or self.run_case("bfloat16", length, True)
        if exact is None:
            return
        padded = self.run_case("padding", length, True, pad_to=bucket)
        if padded is not None:
            self.record["padding"] = {"length": length, "bucket": bucket, "precision": "bfloat16",
                                      **padding_differences(exact, padded)}
            self.save()

    def cache_load(self, lengths: list[int]) -> None:
        """A new process reads the programs of ``lengths`` from the disk cache: its first-call seconds."""
        measured = {c["length"]: c for c in self.record["cases"]
                    if c.get("case") == "bfloat16" and "predict_s" in c}
        lengths = [n for n in lengths if n in measured]
        if not lengths or self.seconds_left < 30 + sum(measured[n]["predict_s"] for n in lengths):
            self.record["cache_load"] = {"skipped": f"{self.seconds_left:.0f} s left"}
            self.save()
            return
        command = [sys.executable, __file__, "--cache-load", ",".join(map(str, lengths)), *self.passed_settings()]
        # this process still holds JAX's preallocated share (75 %) of the GPU: the new one allocates as it goes
        env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
        start = time.perf_counter()
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env,
                                  timeout=max(self.seconds_left, 30))
        except subprocess.TimeoutExpired:
            self.record["cache_load"] = {"error": f"still running after {time.perf_counter() - start:.0f} s"}
            self.save()
            return
        if done.returncode != 0:
            self.record["cache_load"] = {"error": done.stderr[-2000:]}
        else:
            loaded = json.loads(done.stdout.strip().splitlines()[-1])
            for entry in loaded["lengths"]:
                entry["cold_first_call_s"] = measured[entry["length"]]["first_call_s"]
                entry["cold_compile_s"] = measured[entry["length"]]["compile_s"]
            self.record["cache_load"] = {"process_s": time.perf_counter() - start, **loaded}
        self.save()

    def passed_settings(self) -> list[str]:
        args = ["--cache-dir", str(self.args.cache_dir)]
        for flag, value in (("--num-recycle", self.args.num_recycle), ("--msa-clusters", self.args.msa_clusters),
                            ("--extra-msa", self.args.extra_msa)):
            if value is not None:
                args += [flag, str(value)]
        return args


def cache_load_child(args: argparse.Namespace) -> None:
    """In a fresh process: load the parameters and, per length, the model program from the disk cache."""
    from foldflow.models.alphafold2 import enable_compilation_cache
    from foldflow.models.compile_stats import measure_compiles

    enable_compilation_cache(args.cache_dir / "xla")
    bench = Bench(args, Path(os.devnull))
    model = bench.model(True)
    entries = []
    for length in map(int, args.cache_load.split(",")):
        features, _ = bench.raw_features(length)
        processed = model.model_inputs(features, 0, length)
        with measure_compiles() as compiled:
            start = time.perf_counter()
            model.predict_processed(processed, 0, length)
            first = time.perf_counter() - start
        entries.append({"length": length, "first_call_s": first, "compile_s": compiled.seconds,
                        "xla_programs_built": compiled.compiles, "xla_programs_from_disk": compiled.cache_hits})
    print(json.dumps({"params_load_s": model.load_seconds, "lengths": entries}))


HEADER = ("case       length  pad_to  precision  features s  compile s  first call s  predict s  calls  "
          "peak GiB  recycles  rows      A100 s  A100 / this")


def row(case: dict) -> str:
    if "skipped" in case:
        return f"{case['case']:9s}  {case['length']:6d}  skipped: {case['skipped']}"
    if "error" in case:
        return f"{case['case']:9s}  {case['length']:6d}  failed: {case['error']}"
    peak = f"{case['peak_gib']:8.2f}" if case["peak_gib"] is not None else "       -"
    a100 = case.get("a100_s")
    ratio = f"{a100 / case['predict_s']:11.2f}" if a100 else "          -"
    return (f"{case['case']:9s}  {case['length']:6d}  {case['pad_to']:6d}  {case['precision']:9s}  "
            f"{case['features_s'] + case['process_features_s']:10.1f}  {case['compile_s']:9.1f}  "
            f"{case['first_call_s']:12.2f}  {case['predict_s']:9.2f}  {len(case['predict_calls_s']):5d}  {peak}  "
            f"{case['recycles']:8d}  {case['msa_clusters']}/{case['extra_msa_rows']:<5d}  "
            f"{a100 if a100 else '-':>6}  {ratio}")


def print_summary(record: dict) -> None:
    env = record["environment"]
    print(f"\n{env['device']['kind']} ({env['device']['platform']}), jax {env['packages']['jax']}, "
          f"{record['settings']}, random parameters; params: {record.get('params')}")
    print(HEADER)
    for case in record["cases"]:
        print(row(case))
    if (padding := record["padding"]) is not None:
        print(f"padding {padding['length']} -> {padding['bucket']} ({padding['precision']}): max CA shift "
              f"{padding['max_ca_shift_A']:.3f} A, max |dpLDDT| {padding['max_abs_dplddt']:.3f}, mean |dpLDDT| "
              f"{padding['mean_abs_dplddt']:.3f}, max |dPAE| {padding['max_abs_dpae_A']:.3f} A")
    if (cache := record["cache_load"]) is not None:
        if "lengths" not in cache:
            print(f"persistent cache: {cache}")
        for entry in cache.get("lengths", []):
            print(f"persistent cache, new process, length {entry['length']}: first call "
                  f"{entry['first_call_s']:.2f} s ({entry['xla_programs_from_disk']} programs from disk, "
                  f"{entry['xla_programs_built']} built) vs {entry['cold_first_call_s']:.2f} s compiling "
                  f"({entry['cold_compile_s']:.1f} s of XLA compile)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="100,200,300,500,1000,1500")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the first (median reported)")
    parser.add_argument("--float32-length", type=int, default=300, help="0: no float32 case")
    parser.add_argument("--padding-length", type=int, default=300, help="0: no padding case")
    parser.add_argument("--no-cache-load", action="store_true", help="no persistent-cache case")
    parser.add_argument("--deadline-s", type=float, default=500.0, help="start no case expected to end later")
    parser.add_argument("--num-recycle", type=int, help="default: AlphaFold's (3)")
    parser.add_argument("--msa-clusters", type=int, help="default: AlphaFold's (512)")
    parser.add_argument("--extra-msa", type=int, help="default: AlphaFold's (5,120)")
    parser.add_argument("--cache-dir", type=Path, help="random parameters and XLA programs (default: a new "
                        "temporary folder, so initialisation and compiles are measured cold)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")), help="folder of bench_gpu.json")
    parser.add_argument("--cache-load", help=argparse.SUPPRESS)  # the child process of case 5
    args = parser.parse_args()
    args.cache_dir = args.cache_dir or Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    if args.cache_load:
        cache_load_child(args)
        return

    from foldflow.models.alphafold2 import enable_compilation_cache

    enable_compilation_cache(args.cache_dir / "xla")
    args.out.mkdir(parents=True, exist_ok=True)
    bench = Bench(args, args.out / "bench_gpu.json")
    print(f"{bench.record['environment']}\nmodel {MODEL}, RANDOM parameters; writing {bench.record_path}",
          flush=True)
    bench.model(True)
    print(f"settings {bench.record['settings']}; parameters {bench.record['params']}\n{HEADER}", flush=True)
    lengths = sorted(map(int, args.lengths.split(",")))
    for length in (n for n in lengths if n <= LONG):
        bench.run_case("bfloat16", length, True)
    if args.float32_length:
        bench.run_case("float32", args.float32_length, False)
    if args.padding_length:
        bench.padding(args.padding_length)
    for length in (n for n in lengths if n > LONG):
        bench.run_case("bfloat16", length, True)
    if not args.no_cache_load:
        bench.cache_load(sorted({lengths[0], args.padding_length or lengths[0]}))
    print_summary(bench.record)
    if any("error" in c for c in bench.record["cases"]) or "error" in (bench.record["cache_load"] or {}):
        sys.exit("a case failed: see its error above and in bench_gpu.json")
    if not math.isfinite(sum(c.get("mean_plddt", 0.0) for c in bench.record["cases"])):
        sys.exit("non-finite pLDDT in a case: see bench_gpu.json")


if __name__ == "__main__":
    main()
