"""Structure models behind one interface (:class:`foldflow.models.base.Model`), chosen by name.

A registry maps model names (regular expressions) to model classes, so
configs name models (``model_1_ptm``, ``model_1_multimer_v3``) and the stages never test for a kind.
``simulated_device[_<seconds>s][_host]`` is a benchmark-only model (it predicts
nothing; see :mod:`foldflow.models.simulated`).
"""

from __future__ import annotations

import re

from foldflow.config import ModelConfig
from foldflow.errors import SetupError
from foldflow.models.base import Model

_REGISTRY: list[tuple[re.Pattern, str]] = [
    (re.compile(r"model_[1-5](_ptm)?"), "foldflow.models.alphafold2:AlphaFold2"),
    (re.compile(r"model_[1-5]_multimer_v3"), "foldflow.models.alphafold2_multimer:AlphaFold2Multimer"),
    (re.compile(r"simulated_device(_[0-9.]+s)?(_host)?"), "foldflow.models.simulated:SimulatedDevice"),
]


class UnknownModelError(SetupError):
    """A model name no class is registered for."""


def register_model(pattern: str, target: str) -> None:
    """Name a model class (``"package.module:Class"``, imported where the model is loaded)."""
    _REGISTRY.insert(0, (re.compile(pattern), target))


def model_class(name: str) -> type[Model]:
    import importlib

    for pattern, target in _REGISTRY:
        if pattern.fullmatch(name):
            module, attr = target.split(":")
            return getattr(importlib.import_module(module), attr)
    raise UnknownModelError(f"unknown model '{name}' (AlphaFold 2 monomer models: model_1 ... model_5, "
                            f"model_1_ptm ... model_5_ptm; multimer models: model_1_multimer_v3 ... "
                            f"model_5_multimer_v3)")


def load_model(name: str, settings: ModelConfig) -> Model:
    """The model called ``name``, with its parameters loaded."""
    return model_class(name)(name, settings)
