"""foldflow's own errors: bad input or setup, found before anything was run.

The command line prints their messages one ``error:`` line per line and exits
2; any other exception is a failure (exit 1). Subclasses keep the built-in
base classes (ValueError, LookupError, ...) that callers may catch.
"""

from __future__ import annotations


def error_line(error: BaseException) -> str:
    """An error as one line: its type and the first line of its message (a target's error in records)."""
    return f"{type(error).__name__}: {error}".splitlines()[0]


class FoldflowError(Exception):
    """Bad input or setup: nothing was run. The message has one line per problem."""


class ConfigError(FoldflowError, ValueError):
    """A settings file or override is not valid."""


class RunExistsError(FoldflowError, ValueError):
    """A run (or a Ray job) with this run id exists already."""


class JobExistsError(RunExistsError):
    """The Ray job of this run id was submitted before (``job_id``)."""

    def __init__(self, message: str, job_id: str):
        super().__init__(message)
        self.job_id = job_id


class ClusterConnectionError(FoldflowError, ConnectionError):
    """The Ray cluster named by an address cannot be reached."""


class InvalidRunIdError(FoldflowError, ValueError):
    """A run id that is not a safe name (letters, digits, '.', '_', '-')."""


class SetupError(FoldflowError, ValueError):
    """The run's databases, tools or parameter files are missing; nothing was run."""
