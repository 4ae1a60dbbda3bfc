"""Structure models behind one interface (:class:`foldflow.models.base.Model`)."""

from __future__ import annotations

from foldflow.config import ModelConfig
from foldflow.models.base import Model


def load_model(name: str, settings: ModelConfig) -> Model:
    """The model called ``name``: AlphaFold 2 (``model_1_ptm``, ...) or the simulated benchmark device."""
    from foldflow.models.simulated import SIMULATED_DEVICE, SimulatedDevice

    if name == SIMULATED_DEVICE:
        return SimulatedDevice(settings)
    from foldflow.models.alphafold2 import AlphaFold2

    return AlphaFold2(name, settings)
