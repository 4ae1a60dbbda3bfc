"""Structure models behind one interface (:class:`foldflow.models.base.Model`), chosen by name.

A registry (:mod:`foldflow.models.registry`) maps model names (regular expressions) to model classes, so
configs name models (``model_1_ptm``, ``model_1_multimer_v3``) and the stages never test for a kind.
``simulated_device[_<seconds>s][_host]`` is a benchmark-only model (it predicts
nothing; see :mod:`foldflow.models.simulated`).
"""

from __future__ import annotations

from foldflow.config import ModelConfig
from foldflow.models.base import Model
from foldflow.models.registry import UnknownModelError, model_class, register_model

__all__ = ["UnknownModelError", "load_model", "model_class", "register_model"]


def load_model(name: str, settings: ModelConfig) -> Model:
    """The model called ``name``, with its parameters loaded."""
    return model_class(name)(name, settings)
