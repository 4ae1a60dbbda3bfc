"""foldflow: batch protein structure prediction (AlphaFold 2) on Ray."""

from foldflow.api import InvalidInputError, RunResult, predict
from foldflow.config import RunConfig, load_config

__all__ = ["InvalidInputError", "RunConfig", "RunResult", "load_config", "predict"]
__version__ = "0.1.0"
