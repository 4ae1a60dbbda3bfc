"""The run options of ``foldflow predict``, declared once (no click, no Ray here).

The command line builds ``predict``'s and ``submit``'s options from
:data:`RUN_OPTIONS` and turns what it parsed into the overrides that
:func:`foldflow.predict` takes (:func:`overrides_from_values`); a submitted job
gets the ``foldflow predict`` arguments back from those overrides
(:func:`predict_args`), so the two commands cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from foldflow.errors import ConfigError

# text, int; file / dir: a path (that must exist where it is read); list: comma-separated;
# flag: given or not (its setting then takes ``flag_value``).
OptionKind = Literal["text", "int", "file", "dir", "list", "flag"]


@dataclass(frozen=True)
class RunOption:
    """One command-line option of a run, and the dotted setting it overrides (None: not a setting)."""

    flag: str
    setting: str | None
    kind: OptionKind
    help: str
    short: str | None = None
    flag_value: bool | str = True

    @property
    def name(self) -> str:
        """The parsed value's name: ``--num-recycle`` -> ``num_recycle``."""
        return self.flag.removeprefix("--").replace("-", "_")

    def to_setting(self, value: object) -> object:
        """A parsed value as the setting's value (None: not given)."""
        if value is None or (self.kind == "flag" and not value):
            return None
        if self.kind == "list":
            return str(value).split(",")
        return self.flag_value if self.kind == "flag" else value

    def keyword_to_setting(self, value: object) -> object:
        """A Python keyword argument's value (``models="a,b"`` or ``["a", "b"]``, ``no_templates=True``) as the
        setting's value (None: leave the setting alone, e.g. ``no_progress=False``)."""
        if self.kind == "list" and isinstance(value, (list, tuple)):
            return list(value)
        if self.kind == "flag" and value is False and isinstance(self.flag_value, bool):
            return not self.flag_value  # skip_invalid=False, no_templates=False: the setting's other value
        return self.to_setting(value)

    def to_args(self, value: object) -> list[str]:
        """The command-line arguments that set this option's setting to ``value``."""
        if self.kind == "flag":
            if value != self.flag_value:
                raise ConfigError(f"{self.setting}: only {self.flag_value} can be set on the command line "
                                  f"({self.flag}); set it in the config file")
            return [self.flag]
        if self.kind == "list" and not isinstance(value, str):
            value = ",".join(map(str, value))
        return [self.flag, str(value)]


RUN_OPTIONS: tuple[RunOption, ...] = (
    RunOption("--config", None, "file", "YAML settings (see configs/). Default: bundled mini databases, random "
              "parameters.", short="-c"),
    RunOption("--params", "model.params_dir", "dir",
              "Folder with AlphaFold's params_model_*.npz. Default: random parameters (not meaningful)."),
    RunOption("--msa-dir", "msa.precomputed_dir", "dir",
              "Precomputed MSAs: DIR/<target>/*.sto|*.a3m or DIR/<target>.a3m."),
    RunOption("--models", "model.names", "list",
              "Comma-separated model names and/or AlphaFold presets (monomer, monomer_ptm, multimer), e.g. "
              "model_1_ptm,model_1_multimer_v3. Monomers run the monomer models, complexes the multimer ones. "
              "Default: all five of each with --params (as run_alphafold), one of each with random parameters."),
    RunOption("--predictions-per-model", "model.predictions_per_model", "int",
              "Predictions (seeds) per model (default: run_alphafold's, 1 per monomer and 5 per multimer model; "
              "1 with random parameters)."),
    RunOption("--preset", "model.preset", "text",
              "alphafold (AlphaFold 2.3's own recycles and MSA depths; the default with --params) or fast "
              "(1 recycle, 32/64 MSA rows; the default with random parameters)."),
    RunOption("--num-recycle", "model.num_recycle", "int", "Recycling iterations (default: the preset's)."),
    RunOption("--random-seed", "model.random_seed", "int",
              "Run seed; model i of n gets seed i + seed * n, as in run_alphafold (default 0)."),
    RunOption("--max-template-date", "msa.templates.max_template_date", "text",
              "YYYY-MM-DD: use no template released after this date (run_alphafold's --max_template_date)."),
    RunOption("--no-templates", "msa.templates.enabled", "flag", "Search no templates.", flag_value=False),
    RunOption("--relax", "relax.models_to_relax", "text",
              "Amber-relax the best prediction, all, or none (run_alphafold's --models_to_relax; default best)."),
    RunOption("--max-length", "max_length", "int", "Longest sequence accepted (all chains of a complex)."),
    RunOption("--run-id", None, "text", "Name this run (default: a new timestamped id)."),
    RunOption("--store", "store", "text", "Store for step results and run records: a path or URI (s3://...)."),
    RunOption("--skip-invalid", "skip_invalid", "flag",
              "Run the valid targets and list the invalid ones in the summary."),
    RunOption("--progress", "pipeline.progress", "text",
              "Progress on stderr: bars (one per stage, the default), jsonl (one JSON line per step event) or none."),
    RunOption("--no-progress", "pipeline.progress", "flag", "The same as --progress none.", flag_value="none"),
)
_BY_NAME = {option.name: option for option in RUN_OPTIONS}


def _first_option_per_setting() -> dict[str, RunOption]:
    """Each setting's first option, in declaration order; later ones (--no-progress) are its aliases."""
    first: dict[str, RunOption] = {}
    for option in RUN_OPTIONS:
        if option.setting:
            first.setdefault(option.setting, option)
    return first


_BY_SETTING = _first_option_per_setting()


def _settings(given: list[tuple[RunOption | None, str, object]]) -> dict[str, object]:
    """(option or None, setting, value) triples as overrides; None values left out, contradictions refused."""
    overrides: dict[str, object] = {}
    for option, setting, value in given:
        if value is None:
            continue
        if setting in overrides and overrides[setting] != value:
            name = option.flag if option else setting
            raise ConfigError(f"{name} contradicts another option: {setting} is {overrides[setting]!r} and {value!r}")
        overrides[setting] = value
    return overrides


def overrides_from_values(values: Mapping[str, object]) -> dict[str, object]:
    """Parsed option values (by :attr:`RunOption.name`) as dotted-setting overrides; options not given are left out."""
    return _settings([(option, option.setting, option.to_setting(values.get(option.name)))
                      for option in RUN_OPTIONS if option.setting])


def overrides_from_keywords(keywords: Mapping[str, object]) -> dict[str, object]:
    """The Python API's keyword arguments as dotted-setting overrides: a command-line option's name
    (``relax="none"``, ``models="model_1_ptm"``, ``num_recycle=1``, ``no_templates=True``) means what the option
    means; any other keyword is a dotted setting (``**{"model.max_msa_clusters": 8}``)."""
    given = []
    for key, value in keywords.items():
        option = _BY_NAME.get(key)
        if option is not None and option.setting is None:
            raise ConfigError(f"'{key}' is an argument of its own, not a setting")
        given.append((option, option.setting, option.keyword_to_setting(value)) if option else (None, key, value))
    return _settings(given)


def predict_args(fasta: str | Path, out: str | Path, config: str | Path | None = None,
                 overrides: Mapping[str, object] | None = None) -> list[str]:
    """``foldflow predict`` arguments for ``foldflow.predict(fasta, out, config, **overrides)`` (option names or
    dotted settings, as :func:`overrides_from_keywords` reads them); no --run-id.

    Raises ConfigError for an override that no option sets (put it in the config file instead).
    """
    overrides = overrides_from_keywords(overrides or {})
    if unknown := sorted(set(overrides) - set(_BY_SETTING)):
        raise ConfigError("\n".join(f"setting '{setting}' has no command-line option; set it in the config file"
                                    for setting in unknown))
    args = [str(fasta), "--out", str(out)]
    if config is not None:
        args += [_BY_NAME["config"].flag, str(config)]
    for setting, option in _BY_SETTING.items():
        if setting in overrides:
            args += option.to_args(overrides[setting])
    return args
