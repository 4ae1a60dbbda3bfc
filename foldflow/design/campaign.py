"""A design campaign's stages as plain Python over batches of rows (Ray Data calls them in
:mod:`foldflow.pipeline.design`; a test can call them directly).

backbones (one row per design index) -> sequences (ProteinMPNN, ``sequences_per_backbone`` rows each) ->
refolded and filtered (the structure model through the Model interface, single sequence; TM-score and
CA-RMSD to the backbone) -> relaxed (passing designs, when asked). Every row keeps ``id``, its backbone's
index: a resumed campaign skips the indices whose rows were written.
"""

from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd

from foldflow.config import DesignConfig, ModelConfig
from foldflow.design.backbones import Backbone
from foldflow.design.sources import backbone

# The summary's columns, in order (one declaration: the Parquet schema follows it).
DESIGN_COLUMNS = {
    "id": "backbone index in the campaign",
    "design_id": "<backbone name>_<sequence number>",
    "backbone_source": "helical_bundle or the file read",
    "backbone_params": "the generator's parameters (JSON)",
    "length": "residues",
    "sequence": "ProteinMPNN's sequence",
    "mpnn_score": "ProteinMPNN's mean negative log-likelihood per designed (not fixed) residue (lower: more likely)",
    "mpnn_recovery": "fraction of designed positions equal to the backbone's own sequence (files with residues)",
    "plddt": "mean pLDDT of the refolded structure",
    "tm_score": "TM-score of the refolded structure to the backbone (normalised by the backbone)",
    "rmsd": "CA-RMSD (Å) after TM-align's superposition",
    "passed": "pLDDT, TM-score and RMSD within the campaign's limits",
    "relaxed": "the structure is Amber-relaxed",
    "random_params": "refolded with random parameters: scores NOT meaningful",
    "structure": "PDB text (refolded; relaxed where relaxed)",
}


def backbone_rows(batch: dict[str, np.ndarray], config: DesignConfig) -> pd.DataFrame:
    """One row per design index in ``batch["id"]``: the backbone as PDB text and what it was made from."""
    rows = []
    for index in batch["id"]:
        made = backbone(int(index), config)
        rows.append({"id": int(index), "backbone_name": made.name, "backbone_source": made.source,
                     "backbone_params": json.dumps(made.params, sort_keys=True), "length": len(made),
                     "backbone_pdb": made.pdb_text or made.to_pdb()})
    return pd.DataFrame(rows)


class SequenceDesigner:
    """ProteinMPNN resident; one call designs ``sequences_per_backbone`` sequences for each backbone row."""

    def __init__(self, config: DesignConfig):
        from foldflow.design.mpnn import ProteinMPNN

        self.config = config
        self.mpnn = ProteinMPNN(config.mpnn_model, seed=config.seed)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        c, rows = self.config, []
        for row in batch.itertuples(index=False):
            sequences = self.mpnn.design(row.backbone_pdb, c.sequences_per_backbone, c.temperature, c.omit_aa,
                                         c.fixed_positions, seed=c.seed * 1_000_003 + row.id)
            for number, designed in enumerate(sequences):
                rows.append({**row._asdict(), "design_id": f"{row.backbone_name}_{number}",
                             "sequence": designed.sequence, "mpnn_score": designed.score,
                             "mpnn_recovery": designed.recovery})
        return pd.DataFrame(rows)


class Refolder:
    """The refolding model resident (the prediction pipeline's model pool's :class:`ModelResident`); refolds
    each designed sequence alone and applies the campaign's filters."""

    def __init__(self, config: DesignConfig, model: ModelConfig, store_uri: str):
        from foldflow.flow.workers import ModelResident

        self.config = config
        self.settings = model
        self.models = ModelResident(model, store_uri, [config.refold_model])

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from foldflow.design.refold import refold

        c, rows = self.config, []
        model = self.models.model(c.refold_model)
        for row in batch.itertuples(index=False):
            made = Backbone.from_pdb(row.backbone_pdb, row.backbone_name)
            folded = refold(made, row.sequence, model, seed=c.seed, pad_to=self.settings.bucket_for(row.length))
            # the ledger counts refolds, so a resumed campaign can be checked to redo none it had finished
            self.models.cache.store.log_computation("design-refold", row.design_id, uuid.uuid4().hex, "finished")
            passed = folded.plddt >= c.min_plddt and folded.tm_score >= c.min_tm_score and folded.rmsd <= c.max_rmsd
            rows.append({**row._asdict(), "plddt": folded.plddt, "tm_score": folded.tm_score, "rmsd": folded.rmsd,
                         "passed": bool(passed), "relaxed": False, "random_params": model.uses_random_params,
                         "structure": folded.pdb})
        return pd.DataFrame(rows)


class Relaxer:
    """Amber relaxation (``alphafold.relax``, the run's settings: :meth:`RunConfig.effective_relax`) of the rows
    that passed."""

    def __init__(self, settings):
        self.settings = settings

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from foldflow.relax import RelaxSettings, relax_pdb

        batch = batch.copy()
        for i, row in batch.iterrows():
            if row["passed"]:
                settings = RelaxSettings(use_gpu=self.settings.use_gpu, **self.settings.minimisation())
                batch.at[i, "structure"] = relax_pdb(row["structure"], settings).pdb
                batch.at[i, "relaxed"] = True
        return batch


def summary_rows(batch: pd.DataFrame) -> pd.DataFrame:
    """The summary's columns, in :data:`DESIGN_COLUMNS` order (the backbone's PDB text is dropped)."""
    return batch[list(DESIGN_COLUMNS)]
