"""One interface for every way of getting a target's alignments (the registry is :mod:`.registry`).

An engine turns a target into :class:`MsaStep`\\ s, one per alignment: each
step carries its store key (what affects its result, never the target's
display name) and how to compute it. Engines declare the databases they
need, the resources one search wants, a version for the keys, and whether
they hold state resident (databases in memory).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

from foldflow.compute import Resources
from foldflow.config import DatabaseConfig, MsaConfig
from foldflow.alignment import Alignment
from foldflow.msa.tools import ToolError, find_binary, version_line
from foldflow.steps import search_key
from foldflow.targets import Target


@dataclass(frozen=True)
class MsaStep:
    """One alignment to obtain: ``key`` addresses its stored result, ``compute`` makes it."""

    database: str
    key: str
    compute: Callable[[], Alignment]


class MsaEngine(ABC):
    """A way to get alignments: search engines, or files given by the user."""

    name: ClassVar[str]
    resident: ClassVar[bool]  # holds databases (or other state) in memory between targets
    stores_results: ClassVar[bool] = True  # False: results are inputs already (files), not stored again
    resident_args: ClassVar[tuple[str, ...]] = ()  # handles the stage passes (registry.make_engine)
    # The kind of database it searches (foldflow.msa.databases.DATABASE_FORMATS: how one is built and
    # checked); None: it searches none.
    database_format: ClassVar[str | None] = "fasta"

    def __init__(self, config: MsaConfig):
        self.config = config

    @property
    @abstractmethod
    def version(self) -> str:
        """The tool's version: part of every key this engine makes."""

    def databases(self) -> list[DatabaseConfig]:
        """Databases this engine reads (checked to exist before a run starts)."""
        return []

    def missing(self, database: DatabaseConfig) -> str | None:
        """What is missing of ``database`` on this machine (one line), None when it is complete."""
        return None if database.path.is_file() else f"database '{database.name}': no file {database.path}"

    def tool_problem(self) -> str | None:
        """What is missing of the tools this engine runs (one line naming what to install), None if none."""
        return None

    def resources(self) -> Resources:
        return Resources(cpus=self.config.cpus_per_search)

    @abstractmethod
    def plan(self, target: Target, pairing: bool = False) -> list[MsaStep]:
        """The alignments of ``target`` (one chain); empty when this engine has none for it. With
        ``pairing`` (a chain of a heteromer) the UniProt alignment for species pairing too."""

    def warm(self) -> None:
        """Load resident state now (before the first target needs it)."""

    def info(self) -> dict:
        """Facts about resident state for run records (load seconds, residues held)."""
        return {}


class DatabaseSearchEngine(MsaEngine):
    """A search engine: one search of the target's sequence per database configured for this engine."""

    def databases(self) -> list[DatabaseConfig]:
        return self._mine(pairing=True)

    def _mine(self, pairing: bool) -> list[DatabaseConfig]:
        return [db for db in self.config.searched_databases(pairing) if self.config.engine_of(db) == self.name]

    def key_settings(self) -> dict:
        """The settings that change this engine's results (part of every search key)."""
        return self.config.model_dump(include={"iterations", "e_value", "inclusion_e_value",
                                               "filter_f1", "filter_f2", "filter_f3"})

    @abstractmethod
    def search(self, sequence: str, database: DatabaseConfig) -> Alignment:
        """Search ``sequence`` (named :data:`foldflow.alignment.QUERY_NAME`) against one database."""

    def plan(self, target: Target, pairing: bool = False) -> list[MsaStep]:
        return [MsaStep(db.name, search_key(target.sequence, db, self.key_settings(), self.name, self.version),
                        lambda db=db: self.search(target.sequence, db))
                for db in self._mine(pairing)]


class ToolSearchEngine(DatabaseSearchEngine):
    """A search engine that runs a binary, named by an MSA setting and found before the run starts."""

    binary_setting: ClassVar[str]  # the MsaConfig field that names the binary
    version_args: ClassVar[tuple[str, str]]  # (argument that prints the version, text on its line)

    @cached_property
    def binary(self) -> str:
        return find_binary(getattr(self.config, self.binary_setting), f"msa.{self.binary_setting}")

    @cached_property
    def version(self) -> str:
        argument, marker = self.version_args
        return version_line([self.binary, argument], marker)

    def tool_problem(self) -> str | None:
        try:
            self.binary
        except ToolError as error:
            return str(error)
        return None
