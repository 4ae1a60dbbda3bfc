"""Which predictions a target gets: the models of its kind (their class's family: monomer or multimer), each
model's predictions named as run_alphafold names them (``<model>_pred_<i>``) and their seeds."""

from __future__ import annotations

from foldflow.config import PRESET_PREDICTIONS, ModelConfig
from foldflow.models.registry import model_class


def is_multimer_model(name: str) -> bool:
    """Whether the model predicts complexes (its class's family)."""
    return model_class(name).family == "multimer"


def models_for(settings: ModelConfig, is_complex: bool) -> list[str]:
    """The models that predict a complex (multimer) or a monomer."""
    return [m for m in settings.model_names if is_multimer_model(m) == is_complex]


def models_needed(settings: ModelConfig, complexes: set[bool]) -> list[str]:
    """The models a batch needs: ``complexes`` holds True if it has complexes, False if monomers."""
    return [m for m in settings.model_names if is_multimer_model(m) in complexes]


def runners_for(settings: ModelConfig, is_complex: bool) -> list[str]:
    """The predictions of a target, named as run_alphafold names them: ``<model>_pred_<i>``."""
    kind = "multimer" if is_complex else "monomer"
    count = settings.predictions_per_model or PRESET_PREDICTIONS[settings.effective_preset][kind]
    return [f"{model}_pred_{i}" for model in models_for(settings, is_complex) for i in range(count)]


def seed_for(settings: ModelConfig, runner: str, is_complex: bool) -> int:
    """A prediction's seed, derived from the run seed as run_alphafold derives it."""
    runners = runners_for(settings, is_complex)
    return runners.index(runner) + settings.random_seed * len(runners)
