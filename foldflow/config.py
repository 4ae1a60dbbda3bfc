"""Settings as pydantic models; YAML files under ``configs/`` load into them.

With no file at all, :func:`default_config` runs on the small real databases
bundled with the package and random-init AlphaFold parameters.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from foldflow.errors import ConfigError
from foldflow.progress import ProgressMode

BUNDLED_DB_DIR = Path(str(resources.files("foldflow") / "resources" / "db"))
# Random-init parameters and the XLA compilation cache live here; FOLDFLOW_CACHE_DIR moves it.
DEFAULT_CACHE_DIR = Path(os.environ.get("FOLDFLOW_CACHE_DIR", "~/.cache/foldflow")).expanduser()
# Step results and run records, by default in the cache folder; FOLDFLOW_STORE moves them (the tests keep
# theirs apart from the user's runs while sharing the parameter and XLA caches).
DEFAULT_STORE = os.environ.get("FOLDFLOW_STORE") or str(DEFAULT_CACHE_DIR / "store")
# Steps of at most 1.25x up to 1024 (1.33x beyond): padding costs little, and with the persistent
# compilation cache each bucket compiles once per machine, not once per run.
DEFAULT_BUCKETS = (64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024,
                   1280, 1536, 2048, 2560, 3072, 4096)


# The validation context key of the folder a YAML file's relative paths are taken from (load_config sets it).
CONFIG_FOLDER = "config_folder"


def _from_config_folder(path: Path, info: ValidationInfo) -> Path:
    """``~`` expanded; a relative path set in a YAML file taken from the file's folder."""
    path = path.expanduser()
    folder = (info.context or {}).get(CONFIG_FOLDER)
    return path if folder is None or path.is_absolute() else (folder / path).resolve()


def _store_from_config_folder(store: str, info: ValidationInfo) -> str:
    """A store URI (``s3://...``) as it is; a store path as :func:`_from_config_folder` takes it."""
    return store if "://" in store else str(_from_config_folder(Path(store), info))


# Every path setting has one of these types, so that each is taken from the YAML file's folder (defaults, set in
# code, are not validated and stay as they are).
ConfigPath = Annotated[Path, AfterValidator(_from_config_folder)]
StoreLocation = Annotated[str, AfterValidator(_store_from_config_folder)]  # a path or a pyarrow filesystem URI


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseConfig(_Strict):
    """One sequence database and the engine that searches it.

    ``name`` decides where its MSA goes in the features, as in AlphaFold:
    ``uniref90`` first, then ``bfd``/``small_bfd``/``uniref30``/``colabfold_envdb``, then ``mgnify``.
    ``path`` is what the engine reads: a FASTA file (pyhmmer), an HH-suite database prefix
    (``<path>_a3m.ffdata`` ..., hhblits) or an MMseqs2 database (``foldflow databases build``).
    """

    name: Literal["uniref90", "mgnify", "small_bfd", "bfd", "uniref30", "colabfold_envdb", "uniprot"]
    path: ConfigPath
    max_hits: int | None = Field(default=None, ge=1)
    # None: msa.engine. E.g. AlphaFold's full set: uniref90 and mgnify pyhmmer, bfd hhblits.
    engine: str | None = None
    # hhblits only: more databases searched in the same call (AlphaFold searches BFD with UniRef30 this way).
    extra_paths: list[ConfigPath] = Field(default_factory=list)


def bundled_databases() -> list[DatabaseConfig]:
    """Mini UniRef90/BFD/MGnify (1,000 real sequences each) shipped with foldflow."""
    return [
        DatabaseConfig(name="uniref90", path=BUNDLED_DB_DIR / "uniref90_mini.fasta", max_hits=10_000),
        DatabaseConfig(name="small_bfd", path=BUNDLED_DB_DIR / "bfd_mini.fasta"),
        DatabaseConfig(name="mgnify", path=BUNDLED_DB_DIR / "mgnify_mini.fasta", max_hits=501),
    ]


def bundled_pairing_database() -> DatabaseConfig:
    """Mini UniProt (1,000 real sequences) for species pairing of complexes; AlphaFold's 50,000 hits."""
    return DatabaseConfig(name="uniprot", path=BUNDLED_DB_DIR / "uniprot_mini.fasta", max_hits=50_000)


# ColabFold's "no limit" date: a fixed date, so template keys do not change from one day to the next.
NO_TEMPLATE_DATE_LIMIT = "2100-01-01"


class TemplateConfig(_Strict):
    """AlphaFold 2.3's template search, hits featurised from an mmCIF folder: hmmsearch of PDB seqres
    (AlphaFold-Multimer's search), hhsearch of PDB70 (AlphaFold's monomer search), or ``alphafold``: each by
    the target's kind, as run_alphafold does (monomers hhsearch, complexes hmmsearch)."""

    enabled: bool = True
    # The bundled data have no PDB70, so the default searches PDB seqres for every target.
    engine: Literal["hmmsearch", "hhsearch", "alphafold"] = "hmmsearch"
    pdb_seqres: ConfigPath = BUNDLED_DB_DIR / "pdb_seqres_mini.fasta"  # hmmsearch's database
    pdb70: ConfigPath | None = None  # hhsearch's database: an HH-suite prefix (foldflow databases build hhsearch)
    hhsearch_binary: str = "hhsearch"
    mmcif_dir: ConfigPath = BUNDLED_DB_DIR / "pdb_mmcif"
    # Templates released after this date are not used (run_alphafold's --max_template_date).
    max_template_date: str = Field(default=NO_TEMPLATE_DATE_LIMIT, pattern=r"^\d{4}-\d{2}-\d{2}$")
    obsolete_pdbs: ConfigPath | None = None  # AlphaFold's obsolete.dat: replaced entries map to their successor
    max_hits: int = Field(default=20, ge=0)  # featurised per chain; the model uses 4
    kalign_binary: str = "kalign"  # realigns a hit whose PDB seqres differs from its mmCIF sequence
    # DeepMind AlphaFold 2.3's hit checks (align ratio, duplicate of the query, length), which the
    # alphafold-colabfold fork's featurizer lacks (foldflow.templates)
    deepmind_prefilter: bool = True

    @model_validator(mode="after")
    def _hhsearch_needs_pdb70(self) -> TemplateConfig:
        if self.enabled and self.engine != "hmmsearch" and self.pdb70 is None:
            raise ValueError(f"msa.templates.engine {self.engine} needs msa.templates.pdb70 (an HH-suite database "
                             "prefix: foldflow databases build hhsearch)")
        return self

    def engine_for(self, is_complex: bool) -> str:
        """The searcher of a target's templates: hmmsearch or hhsearch."""
        if self.engine == "alphafold":
            return "hmmsearch" if is_complex else "hhsearch"
        return self.engine


class MsaConfig(_Strict):
    """MSA search: jackhmmer (pyhmmer) with AlphaFold 2.3's thresholds, or precomputed files."""

    # The search engine of databases that name none (foldflow.msa.registry): "pyhmmer" (databases resident in
    # each MSA actor), "pyhmmer_sharded" (each database held as `shards` shard actors), "hhblits" (HH-suite,
    # AlphaFold 2.3's flags) or "mmseqs2" (ColabFold's search, many queries per call).
    engine: str = "pyhmmer"

    databases: list[DatabaseConfig] = Field(default_factory=bundled_databases)
    iterations: int = Field(default=1, ge=1)
    e_value: float = 1e-4
    inclusion_e_value: float = 1e-4
    filter_f1: float = 5e-4
    filter_f2: float = 5e-5
    filter_f3: float = 5e-7
    cpus_per_search: int = Field(default=1, ge=1)
    # With engine "pyhmmer_sharded": each database held as this many shards, one resident actor each
    # (a database too big for one node); hits and MSAs are those of one search over the whole database.
    shards: int = Field(default=1, ge=1)
    shard_actor_cpus: float = Field(default=0.0, ge=0)
    # Binaries: a name on PATH or a full path (Debian packages hhsuite and mmseqs2).
    hhblits_binary: str = "hhblits"
    mmseqs_binary: str = "mmseqs"
    # mmseqs2: queries per search call (chains of the run searched together) and colabfold_search's
    # sensitivity (-s 8).
    mmseqs_batch_size: int = Field(default=50, ge=1)
    mmseqs_sensitivity: float = Field(default=8.0, gt=0)
    precomputed_dir: ConfigPath | None = None
    require_precomputed: bool = False
    deduplicate: bool = True
    # Searched for each chain of a heteromer, for species pairing (AlphaFold-Multimer's uniprot search).
    pairing_database: DatabaseConfig | None = Field(default_factory=bundled_pairing_database)
    templates: TemplateConfig = Field(default_factory=TemplateConfig)

    def database(self, name: str) -> DatabaseConfig:
        """A configured database by name, the pairing database included."""
        return next(db for db in (*self.databases, self.pairing_database) if db is not None and db.name == name)

    def searched_databases(self, pairing: bool) -> list[DatabaseConfig]:
        """The databases a chain is searched against; with ``pairing`` (a heteromer's chain) also UniProt."""
        extra = [self.pairing_database] if pairing and self.pairing_database is not None else []
        return [*self.databases, *extra]

    def engine_of(self, database: DatabaseConfig) -> str:
        """The engine that searches ``database`` (its own, else msa.engine)."""
        return database.engine or self.engine

    def search_engines(self) -> list[str]:
        """Every engine some database needs, in the order databases are configured."""
        return list(dict.fromkeys(self.engine_of(db) for db in self.searched_databases(pairing=True)))

    @model_validator(mode="after")
    def _shards_need_the_sharded_engine(self) -> MsaConfig:
        if self.shards > 1 and "pyhmmer_sharded" not in self.search_engines():
            raise ValueError(f"msa.shards: {self.shards} needs msa.engine: pyhmmer_sharded (engine is '{self.engine}')")
        return self


# The "fast" preset's model settings (demo and tests); "alphafold" keeps each model's own (AlphaFold 2.3:
# 3 recycles, 512 MSA clusters, 5,120 extra MSA rows for the monomer models).
FAST_PRESET = {"num_recycle": 1, "max_msa_clusters": 32, "max_extra_msa": 64}
# The fast preset's relaxation: random-parameter structures are full of clashes, and minimising them to
# convergence, three times, takes minutes per target; a bounded minimisation shows the stage in seconds.
FAST_RELAX = {"max_iterations": 100, "max_outer_iterations": 1}
PRESET_SETTINGS = tuple(FAST_PRESET)

# AlphaFold 2.3's model presets (alphafold.model.config.MODEL_PRESETS), usable as names in model.names.
MODEL_SETS = {
    "monomer": [f"model_{i}" for i in range(1, 6)],
    "monomer_ptm": [f"model_{i}_ptm" for i in range(1, 6)],
    "multimer": [f"model_{i}_multimer_v3" for i in range(1, 6)],
}
# Models per preset when model.names is not set: run_alphafold's monomer and multimer sets, or one of each.
PRESET_MODELS = {"alphafold": ["monomer", "multimer"], "fast": ["model_1_ptm", "model_1_multimer_v3"]}
# Predictions (seeds) per model when predictions_per_model is not set: run_alphafold's 1 per monomer
# model and 5 per multimer model (--num_multimer_predictions_per_model), or 1 with the fast preset.
PRESET_PREDICTIONS = {"alphafold": {"monomer": 1, "multimer": 5}, "fast": {"monomer": 1, "multimer": 1}}
_RUNNER = re.compile(r"^(?P<model>.+)_pred_(?P<index>\d+)$")


def runner_model(runner: str) -> str:
    """The model of a prediction's name (``model_1_pred_0`` -> ``model_1``)."""
    match = _RUNNER.match(runner)
    return match.group("model") if match else runner


class ModelConfig(_Strict):
    """AlphaFold 2 settings.

    ``preset`` chooses recycles and MSA depths: ``alphafold`` (AlphaFold 2.3's
    own, the default with real parameters) or ``fast`` (the default with random
    parameters: demo and tests). A value set here overrides the preset's.
    """

    # Model names and/or AlphaFold's preset names (monomer, monomer_ptm, multimer); monomers run the
    # monomer models, complexes the multimer models. None: the preset's (alphafold: all ten).
    names: list[str] | None = Field(default=None, min_length=1)
    # Predictions (seeds) per model; None: run_alphafold's (1 per monomer model, 5 per multimer model).
    predictions_per_model: int | None = Field(default=None, ge=1)
    params_dir: ConfigPath | None = None
    params_seed: int = 0
    preset: Literal["alphafold", "fast"] | None = None
    # The run seed: prediction i of n gets seed i + random_seed * n, as run_alphafold assigns them.
    random_seed: int = Field(default=0, ge=0)
    num_recycle: int | None = Field(default=None, ge=0)
    max_msa_clusters: int | None = Field(default=None, ge=1)
    max_extra_msa: int | None = Field(default=None, ge=1)
    bfloat16: bool = True
    # Each target is padded to the next bucket, so XLA compiles once per bucket, not per length.
    # An empty list pads nothing (one compile per distinct length).
    bucket_lengths: list[int] = Field(default_factory=lambda: list(DEFAULT_BUCKETS))
    cache_dir: ConfigPath = DEFAULT_CACHE_DIR

    @property
    def uses_random_params(self) -> bool:
        return self.params_dir is None

    @property
    def effective_preset(self) -> str:
        return self.preset or ("fast" if self.uses_random_params else "alphafold")

    def preset_value(self, setting: str) -> int | None:
        """A recycles/MSA-depth setting: set here, else the preset's (None: the model's own)."""
        value = getattr(self, setting)
        if value is None and self.effective_preset == "fast":
            return FAST_PRESET[setting]
        return value

    @property
    def model_names(self) -> list[str]:
        """Every model this config names (preset names expanded), in order."""
        names = self.names or PRESET_MODELS[self.effective_preset]
        return list(dict.fromkeys(m for name in names for m in MODEL_SETS.get(name, [name])))

    def bucket_for(self, num_res: int) -> int:
        """The smallest bucket that holds ``num_res`` residues (``num_res`` itself past the last)."""
        return next((b for b in sorted(self.bucket_lengths) if b >= num_res), num_res)


class RelaxConfig(_Strict):
    """Amber relaxation (alphafold.relax on OpenMM) with AlphaFold 2.3's settings."""

    # Which predictions to relax, as run_alphafold's --models_to_relax: the best-ranked, all, or none.
    models_to_relax: Literal["best", "all", "none"] = "best"
    use_gpu: bool = False  # OpenMM on CUDA (give the relax actors a GPU: pipeline.relax_actor_gpus)
    # L-BFGS steps per minimisation (0: until converged) and minimisations at most (more while violations
    # remain). None: the preset's: AlphaFold 2.3's own (0 and 3), or FAST_RELAX with the fast preset.
    max_iterations: int | None = Field(default=None, ge=0)
    max_outer_iterations: int | None = Field(default=None, ge=1)

    def minimisation(self) -> dict[str, int]:
        """The minimisation settings given here (the others are AlphaFold's: foldflow.relax.RelaxSettings)."""
        return {k: v for k in ("max_iterations", "max_outer_iterations") if (v := getattr(self, k)) is not None}


class PipelineConfig(_Strict):
    """How the Ray pipeline is laid out."""

    address: str | None = None
    # "ray": the actor pools (local Ray or --address); "in_process": one target after the other in
    # this process, no Ray (debugging, a notebook that wants a few targets now).
    runner: Literal["ray", "in_process"] = "ray"
    # Pools: each starts with (and keeps at least) *_actors actors and grows up to *_actors_max
    # while work waits for it; actors idle for idle_timeout_s above the minimum are removed.
    msa_actors: int = Field(default=1, ge=1)
    msa_actors_max: int | None = Field(default=None, ge=1)
    model_actors: int = Field(default=1, ge=1)
    model_actors_max: int | None = Field(default=None, ge=1)
    idle_timeout_s: float = Field(default=60.0, ge=0)
    # Placement: what each actor asks of its node. Custom resources (e.g. {msa: 1}) and node labels
    # (e.g. {role: msa}) keep MSA actors on MSA nodes and model actors on GPU nodes of a cluster.
    # None: what the MSA engine / the models declare (foldflow.compute.Resources).
    msa_actor_cpus: float | None = Field(default=None, ge=0)
    msa_actor_memory_gb: float | None = Field(default=None, gt=0)
    msa_actor_resources: dict[str, float] = Field(default_factory=dict)
    msa_actor_labels: dict[str, str] = Field(default_factory=dict)
    model_actor_cpus: float | None = Field(default=None, ge=0)
    model_actor_gpus: float | None = Field(default=None, ge=0)
    model_actor_resources: dict[str, float] = Field(default_factory=dict)
    model_actor_labels: dict[str, str] = Field(default_factory=dict)
    # Relaxation runs in its own pool (CPU actors by default), overlapping with later targets' models.
    relax_actors: int = Field(default=1, ge=1)
    relax_actors_max: int | None = Field(default=None, ge=1)
    relax_actor_cpus: float = Field(default=1.0, ge=0)
    relax_actor_gpus: float = Field(default=0.0, ge=0)
    # Output writers (each target's folder, plots included, and its summary row): Ray actors in processes of
    # their own, so the driver only schedules and records. writer_nodes "driver": on the driver's node, where a
    # local output folder is (0 CPUs by default: the driver's node may offer none to actors, a head that runs
    # the driver only); "any": on any node with the writers' resources and labels (an output folder every node
    # mounts, e.g. NFS).
    writer_actors: int = Field(default=1, ge=1)
    writer_actors_max: int | None = Field(default=None, ge=1)
    writer_actor_cpus: float = Field(default=0.0, ge=0)
    writer_nodes: Literal["driver", "any"] = "driver"
    writer_actor_resources: dict[str, float] = Field(default_factory=dict)
    writer_actor_labels: dict[str, str] = Field(default_factory=dict)
    max_in_flight: int = Field(default=4, ge=1)
    max_attempts: int = Field(default=3, ge=1)  # per target, when its actor or node is lost
    longest_first: bool = True  # start long targets first: a shorter makespan than input order
    progress: ProgressMode = "bars"  # per-stage bars, jsonl (one JSON line per event) or none; on stderr

    @field_validator("progress", mode="before")
    @classmethod
    def _progress_flag(cls, value):
        """``progress: true/false`` (older configs) as bars / none."""
        return {True: "bars", False: "none"}.get(value, value) if isinstance(value, bool) else value

    def cluster_address(self) -> str | None:
        """The Ray cluster a run joins: ``address``, else the one ``RAY_ADDRESS`` names (KubeRay sets it in
        every Ray pod, Ray for a Ray job's driver), so a run inside a cluster joins it and its autoscaler
        by default; None: start a local Ray."""
        return self.address or os.environ.get("RAY_ADDRESS") or None


class BundleSpace(_Strict):
    """The helical bundles a design campaign generates: each design's parameters drawn from these ranges
    (inclusive), from the design's index and the campaign seed."""

    helices: list[int] = Field(default_factory=lambda: [3, 4])
    helix_length: tuple[int, int] = (16, 22)
    # Supercoil radius (Å) per helix count: the distance of the helix axes from the bundle axis.
    supercoil_radius: dict[int, tuple[float, float]] = Field(
        default_factory=lambda: {2: (4.6, 5.2), 3: (6.3, 7.0), 4: (7.3, 8.0), 5: (8.5, 9.5)})
    supercoil_pitch: tuple[float, float] = (150.0, 250.0)  # Å per supercoil turn


class DesignConfig(_Strict):
    """A design campaign: backbones -> ProteinMPNN -> refold and filter -> relaxation -> Parquet."""

    designs: int = Field(default=8, ge=1)  # backbones generated (or read: the files' count)
    backbone_files: list[ConfigPath] = Field(default_factory=list)  # PDB/mmCIF backbones instead of generated ones
    bundle: BundleSpace = Field(default_factory=BundleSpace)
    seed: int = 0
    mpnn_model: str = "v_48_020"  # ProteinMPNN weights shipped in colabdesign (v_48_002 ... v_48_030)
    sequences_per_backbone: int = Field(default=2, ge=1)
    temperature: float = Field(default=0.1, gt=0)
    fixed_positions: str | None = None  # residues kept as in the backbone file, counted from 1: "1-5,12"
    omit_aa: str = "C"  # amino acids ProteinMPNN may not use
    refold_model: str = "model_1_ptm"  # through the same Model interface and model actors as prediction
    min_plddt: float = 70.0  # filters: a design passes with all three
    min_tm_score: float = 0.5
    max_rmsd: float = 2.0  # CA-RMSD (Å) of the refolded structure to the design backbone, TM-align superposed
    relax: bool = False  # Amber-relax the designs that pass
    # Autoscaling range of each actor pool; a JAX actor on a CPU uses all the node's cores (one per CPU node).
    mpnn_actors: tuple[int, int] = (1, 1)
    refold_actors: tuple[int, int] = (1, 1)
    actor_cpus: float = Field(default=0.5, gt=0)  # fractional: Ray Data's reads and writes need CPU too
    mpnn_gpus: float = Field(default=0.0, ge=0)  # e.g. 0.25 where GPUs exist
    refold_gpus: float = Field(default=0.0, ge=0)
    batch_size: int = Field(default=2, ge=1)  # backbones per Ray Data batch


class RunConfig(_Strict):
    # Where step results and run records live: a path or a pyarrow filesystem URI (s3://...).
    store: StoreLocation = DEFAULT_STORE
    msa: MsaConfig = Field(default_factory=MsaConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    relax: RelaxConfig = Field(default_factory=RelaxConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    design: DesignConfig = Field(default_factory=DesignConfig)
    max_length: int = Field(default=2500, ge=1)
    skip_invalid: bool = False
    plots: bool = True  # msa_coverage.png, plddt.png, pae.png per target (foldflow.plots)

    @property
    def relaxes(self) -> bool:
        """Whether the run relaxes any prediction (the one place this is decided)."""
        return self.relax.models_to_relax != "none"

    def effective_relax(self) -> RelaxConfig:
        """The relaxation settings as they run: with the fast preset, FAST_RELAX where none are given."""
        if self.model.effective_preset != "fast":
            return self.relax
        return self.relax.model_copy(update={k: v for k, v in FAST_RELAX.items() if getattr(self.relax, k) is None})


def default_config() -> RunConfig:
    return RunConfig()


def load_config(path: Path | str | None) -> RunConfig:
    """Read a YAML file into a RunConfig; relative paths in it (every ConfigPath and StoreLocation setting) are taken
    from the file's folder, whatever the working directory.

    Raises ConfigError, one line per problem, when the file cannot be read or its settings are not valid.
    """
    if path is None:
        return default_config()
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise ConfigError(f"config {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config {path}{where}: not valid YAML: {getattr(error, 'problem', None) or error}") \
            from None
    return validate_config(data, f"config {path}", config_folder=path.parent.resolve())


def validate_config(data: object, source: str, config_folder: Path | None = None) -> RunConfig:
    """``data`` as a RunConfig, or a ConfigError with one ``<source>: <setting>: <problem>`` line per problem.

    Relative paths in ``data`` are taken from ``config_folder`` (None: left relative, to the working directory).
    """
    try:
        return RunConfig.model_validate(data, context={CONFIG_FOLDER: config_folder})
    except ValidationError as error:
        problems = (f"{source}: {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors())
        raise ConfigError("\n".join(problems)) from None


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
