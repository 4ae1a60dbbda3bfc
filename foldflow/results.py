"""The per-target result record and the summary table's columns, declared once.

A :class:`TargetResult` has what identifies the target and how it ended, what
the science produced (:class:`ScienceResult`), what the run observed while
producing it (:class:`RunObservations`), and one part per step that adds
columns of its own (its record is the part: :data:`PARTS`). Each field declares its summary
column (name and Arrow type) in its metadata; :func:`summary_table` derives
the table from those declarations, so adding a fact means adding one field.
Mapping fields (MSA depth per database, seconds per stage, stage spans)
expand into one column per key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import pyarrow as pa


def column(arrow_type: pa.DataType, default: Any = None, report: bool = False) -> Any:
    """A field that is one summary column of ``arrow_type``; ``report``: also a column of the report's table."""
    return field(default=default, metadata={"arrow": arrow_type, "report": report})


def expanded(arrow_type: pa.DataType, *prefixes: str) -> Any:
    """A mapping field that becomes one column per key: ``<prefix>_<key>``.

    With several prefixes the values are tuples, one element per prefix.
    """
    return field(default_factory=dict, metadata={"arrow": arrow_type, "prefixes": prefixes})


@dataclass
class ScienceResult:
    """What the science produced for one target."""

    sequence_hash: str | None = column(pa.string())
    chains: int | None = column(pa.int32(), report=True)  # 1: a monomer
    msa_source: str | None = column(pa.string())  # the engine(s): "pyhmmer", "precomputed", ...
    msa_depth: int | None = column(pa.int32(), report=True)  # MSA rows in the features (after deduplication)
    templates: int | None = column(pa.int32(), report=True)  # templates the template-using models saw (<= 4 per chain)
    model: str | None = column(pa.string(), report=True)  # best-ranked prediction (<model>_pred_<i>)
    ranking_confidence: float | None = column(pa.float64(), report=True)  # AlphaFold's: pLDDT, or 0.8 ipTM + 0.2 pTM
    mean_plddt: float | None = column(pa.float64(), report=True)
    ptm: float | None = column(pa.float64(), report=True)
    iptm: float | None = column(pa.float64(), report=True)  # complexes
    relaxed: bool | None = column(pa.bool_())  # the best prediction was Amber-relaxed
    relax_violations: int | None = column(pa.int32())  # remaining violations after relaxation (best)
    relax_rmsd: float | None = column(pa.float64())  # Å, relaxed vs unrelaxed heavy atoms (best)
    bucket: int | None = column(pa.int32())  # length the model padded the target to
    preset: str | None = column(pa.string())  # "alphafold" or "fast"
    recycles: int | None = column(pa.int32())  # as run by the best model
    msa_clusters: int | None = column(pa.int32())  # MSA rows the best model saw (max_msa_clusters)
    extra_msa_rows: int | None = column(pa.int32())  # extra MSA rows it saw (max_extra_msa)
    msa_depths: dict[str, int] = expanded(pa.int32(), "msa_depth")  # rows per database
    seeds: dict[str, int] = expanded(pa.int64(), "seed")  # each prediction's seed


@dataclass
class RunObservations:
    """What the run observed while producing it: work done, compiles, placement, times."""

    msa_searches: int = column(pa.int32(), 0)  # MSA searches run for this target (0: from the store)
    template_searches: int = column(pa.int32(), 0)  # template searches run (0: from the store or none)
    model_calls: int = column(pa.int32(), 0)  # model predictions run for this target (0: from the store)
    relaxations: int = column(pa.int32(), 0)  # Amber relaxations run for this target (0: from the store)
    cached: bool = column(pa.bool_(), False, report=True)  # every step came from the store
    attempts: int = column(pa.int32(), 0, report=True)  # times the target was submitted (>1 after a lost actor)
    xla_compiles: int = column(pa.int32(), 0)  # XLA programs built for this target
    xla_cache_hits: int = column(pa.int32(), 0)  # XLA programs loaded from the persistent cache
    xla_compile_seconds: float = column(pa.float64(), 0.0)
    params_load_seconds: float = column(pa.float64(), 0.0)  # parameters loaded for this target
    model_worker: int | None = column(pa.int64())  # pid of the model actor
    msa_node: str | None = column(pa.string())  # node ids of the actors that did the work
    model_node: str | None = column(pa.string())
    output_dir: str | None = column(pa.string())
    outputs_written: bool = column(pa.bool_(), False)  # False: an earlier run wrote the folder from the same results
    plots: list[str] | None = column(pa.list_(pa.string()))  # plot files in the target's folder
    timings: dict[str, float] = expanded(pa.float64(), "seconds")  # seconds per stage
    stage_spans: dict[str, tuple[float, float]] = expanded(pa.float64(), "started", "ended")  # epoch


@dataclass
class TargetScores:
    """The score step's record: confidence scores of the best prediction (foldflow.scoring)."""

    chain_plddt: dict[str, float] = expanded(pa.float64(), "plddt")  # mean pLDDT per chain
    pdockq: float | None = column(pa.float64(), report=True)  # complexes: Bryant et al. 2022's pDockQ
    interface_plddt: float | None = column(pa.float64())  # complexes: mean pLDDT of residues in contact
    interface_contacts: int | None = column(pa.int32())  # complexes: inter-chain residue pairs within 8 Å
    interface_pae: float | None = column(pa.float64(), report=True)  # complexes: mean PAE over them, both ways


@dataclass
class TargetResult:
    """One row of the summary: the target, how it ended, the science and the run's observations."""

    target_id: str = column(pa.string(), report=True)
    length: int | None = column(pa.int32(), report=True)
    status: str = column(pa.string(), "ok", report=True)  # "ok", "failed", "invalid" or "cancelled"
    error: str | None = column(pa.string())
    science: ScienceResult = field(default_factory=ScienceResult)
    observed: RunObservations = field(default_factory=RunObservations)
    scores: TargetScores = field(default_factory=TargetScores)

    def to_record(self) -> dict:
        """The result as JSON-ready values (its parts' fields shared, not copied: the run records' cost per
        target)."""
        return {**{f.name: getattr(self, f.name) for f in fields(self) if f.name not in PARTS},
                **{name: dict(vars(getattr(self, name))) for name in PARTS}}

    @classmethod
    def from_record(cls, record: dict) -> TargetResult:
        parts = {name: dict(record.get(name, {})) for name in PARTS}
        parts["observed"]["stage_spans"] = {k: tuple(v) for k, v in parts["observed"].get("stage_spans", {}).items()}
        return cls(**{**record, **{name: PARTS[name](**values) for name, values in parts.items()}})

    def with_part(self, part: Any) -> TargetResult:
        """This result with a step's part (a record whose class is in :data:`PARTS`)."""
        (name,) = [name for name, kind in PARTS.items() if isinstance(part, kind)]
        return replace(self, **{name: part})


# Each part of a TargetResult by its field: its class declares the part's columns.
PARTS: dict[str, type] = {"science": ScienceResult, "observed": RunObservations, "scores": TargetScores}


def _column_fields() -> list[tuple[str, Any]]:
    """(path, field) of every declared column, in table order; path is (part,) or (part, name)."""
    top = [((f.name,), f) for f in fields(TargetResult) if "arrow" in f.metadata]
    nested = [((part, f.name), f) for part, kind in PARTS.items() for f in fields(kind)]
    return top + nested


SUMMARY_COLUMNS = [path[-1] for path, f in _column_fields() if "prefixes" not in f.metadata]
REPORT_COLUMNS = [path[-1] for path, f in _column_fields() if f.metadata.get("report")]


def _value(result: TargetResult, path: tuple[str, ...]) -> Any:
    value: Any = result
    for part in path:
        value = getattr(value, part)
    return value


def summary_table(results: Sequence[TargetResult]) -> pa.Table:
    """One row per target, one column per declared field (mapping fields: one per key)."""
    arrays: dict[str, pa.Array] = {}
    for path, f in _column_fields():
        values = [_value(r, path) for r in results]
        prefixes = f.metadata.get("prefixes")
        if not prefixes:
            arrays[path[-1]] = pa.array(values, type=f.metadata["arrow"])
            continue
        for key in sorted({key for mapping in values for key in mapping}):
            for i, prefix in enumerate(prefixes):
                picked = [m.get(key) if len(prefixes) == 1 else (m[key][i] if key in m else None) for m in values]
                arrays[f"{prefix}_{key}"] = pa.array(picked, type=f.metadata["arrow"])
    return pa.table(arrays)
