"""foldflow: batch protein structure prediction (AlphaFold 2) on Ray."""

from foldflow.api import (InvalidInputError, RunResult, cancel, design, list_runs, predict, report, resume,
                          run_status, submit)
from foldflow.config import RunConfig, load_config
from foldflow.handles import start

__all__ = ["InvalidInputError", "RunConfig", "RunResult", "cancel", "design", "list_runs", "load_config", "predict",
           "report", "resume", "run_status", "start", "submit"]
__version__ = "0.1.0"
