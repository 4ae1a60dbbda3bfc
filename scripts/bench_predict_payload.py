"""What one prediction call receives: the features only, against the job that carried the preparation record.

Runs two targets in process (the same scheduler and step functions as on Ray) and measures the arguments of
every step call as Ray serialises them (pickle protocol 5; numpy arrays out of band, counted in full):

* ``short``: 73 residues with real AlphaFold MSAs (tests/data/msas/short: 1,024-row BFD A3M, UniRef90 and
  MGnify Stockholm), given as precomputed files; templates searched on the bundled mini PDB;
* ``walker``: a heterodimer (E. coli PotA fragments) searched on the bundled mini databases, with UniProt
  for pairing.

Before (session 9's design), a prediction's job carried the target's preparation record: its alignment and
template-hit texts, depths and spans, next to the features. That record's content is exactly what the
alignment, template and features steps' records hold now, so "before" is measured as the predict call of
now plus those records pickled with it. The models (model_1_ptm, model_1_multimer_v3, random parameters at the
smallest settings) do not change the call's arguments: those are the features, which the MSAs decide.

Usage: .venv/bin/python scripts/bench_predict_payload.py
"""

from __future__ import annotations

import pickle
import tempfile
from collections import defaultdict
from pathlib import Path

import foldflow
from foldflow.config import RunConfig
from foldflow.flow import local, workers

ROOT = Path(__file__).resolve().parent.parent
FASTA = (">short\n" + (ROOT / "tests/data/short.fasta").read_text().split("\n", 1)[1]
         + ">walker\nYKGEIFALLGASGCGKSTLLRMLAGFEQPS:HQLSGGQRQRVALARSLAKRPKLL\n")


def size(value) -> int:
    """Bytes Ray's serialiser moves for ``value``: pickle 5, with out-of-band buffers counted."""
    buffers: list = []
    data = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    return len(data) + sum(b.raw().nbytes for b in buffers)


def main() -> None:
    calls: dict[str, list[tuple[str, int, int]]] = defaultdict(list)  # step -> (target, job bytes, payload bytes)
    records: dict[str, int] = defaultdict(int)  # target -> bytes of its alignment, template and features records
    call = local.LocalBackend.call

    def measuring_call(self, worker, function, args):
        job, payloads = args[0], tuple(self.get(a) if isinstance(a, local.Done) else a for a in args[1:])
        calls[function.__name__].append((job.target.id, size(job), size(payloads)))
        record, payload = call(self, worker, function, args)
        if function in (workers.align, workers.search_templates, workers.make_features) and record.error is None:
            records[job.target.id] += size(record.value)
        return record, payload

    local.LocalBackend.call = measuring_call
    work = Path(tempfile.mkdtemp(prefix="foldflow-payload-"))
    (work / "targets.fasta").write_text(FASTA)
    model = {"names": ["model_1_ptm", "model_1_multimer_v3"], "predictions_per_model": 1, "num_recycle": 0,
             "max_msa_clusters": 8, "max_extra_msa": 16, "bucket_lengths": [64, 96]}
    config = RunConfig(store=str(work / "store"), model=model,
                       relax={"models_to_relax": "none"}, plots=False,
                       msa={"precomputed_dir": str(ROOT / "tests/data/msas")},
                       pipeline={"runner": "in_process", "progress": False})
    run = foldflow.predict(work / "targets.fasta", work / "out", config)
    assert run.ok, run.to_pandas()[["target_id", "error"]]
    print("bytes one predict call receives (pickle 5, as Ray serialises its arguments)")
    print(f"{'target':8} {'job':>8} {'features':>10} {'now':>10} {'before':>10} {'before/now':>10}")
    for target, job, payload in calls["predict"]:
        now = job + payload
        before = now + records[target]
        print(f"{target:8} {job:8,} {payload:10,} {now:10,} {before:10,} {before / now:10.2f}")
    for function, measured in calls.items():
        sizes = [job + payload for _, job, payload in measured]
        print(f"{function}: {len(sizes)} calls, arguments {min(sizes):,}-{max(sizes):,} bytes")


if __name__ == "__main__":
    main()
