"""Model names to model classes: configs name models (``model_1_ptm``, ``model_1_multimer_v3``), the registry
finds their class (imported only when a model is looked up), and the class says what the model is (its family,
parameters, resources)."""

from __future__ import annotations

import importlib
import re

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
    for pattern, target in _REGISTRY:
        if pattern.fullmatch(name):
            module, attr = target.split(":")
            return getattr(importlib.import_module(module), attr)
    raise UnknownModelError(f"unknown model '{name}' (AlphaFold 2 monomer models: model_1 ... model_5, "
                            f"model_1_ptm ... model_5_ptm; multimer models: model_1_multimer_v3 ... "
                            f"model_5_multimer_v3)")
