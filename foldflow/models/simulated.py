"""A SIMULATED device model for orchestration benchmarks only: it predicts nothing.

``simulated_device_<seconds>s`` (e.g. ``simulated_device_0.5s``) waits that long per prediction (a sleep: no CPU,
as if a GPU were busy; 1 s when no time is given) and returns a straight CA
trace with pLDDT 0. With ``_host`` (``simulated_device_0.5s_host``) it first
does the CPU work a GPU node's host does per target: AlphaFold's real
``process_features`` for ``model_1_ptm`` at the target's bucket. It exists so the scheduler can be measured with stage
work on separate resources; its outputs must never be read as structures.
"""

from __future__ import annotations

import time

import numpy as np
from alphafold.common import residue_constants

from foldflow.compute import Resources
from foldflow.config import ModelConfig
from foldflow.models.base import Model, Prediction


class SimulatedDevice(Model):
    resources = Resources(cpus=0.0)
    reads_params = False
    version = "simulated"
    uses_random_params = True

    def __init__(self, name: str, settings: ModelConfig):
        self.name = name
        self.seconds = float(name.removeprefix("simulated_device").removesuffix("_host").strip("_s") or 1.0)
        self.host_config = None
        if name.endswith("_host"):
            from foldflow.models.alphafold2 import model_config

            self.host_config = model_config("model_1_ptm", settings)

    def predict(self, features: dict[str, np.ndarray], seed: int, pad_to: int) -> Prediction:
        start = time.perf_counter()
        num_res = int(features["seq_length"][0])
        if self.host_config is not None:
            from foldflow.models.alphafold2 import process_features

            process_features(self.host_config, features, seed, pad_to)
        time.sleep(self.seconds)
        positions = np.zeros((num_res, residue_constants.atom_type_num, 3), dtype=np.float32)
        positions[:, 1, 0] = 3.8 * np.arange(num_res)
        mask = np.zeros((num_res, residue_constants.atom_type_num), dtype=np.float32)
        mask[:, 1] = 1.0
        return Prediction(
            model_name=self.name, aatype=np.argmax(features["aatype"], axis=-1).astype(np.int32),
            residue_index=np.asarray(features["residue_index"]), atom_positions=positions, atom_mask=mask,
            plddt=np.zeros(num_res, dtype=np.float32), ranking_confidence=0.0, seed=seed,
            timings={f"simulated_device_{self.name}": time.perf_counter() - start})
