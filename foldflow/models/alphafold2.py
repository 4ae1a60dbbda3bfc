"""AlphaFold 2 from ``alphafold-colabfold``, wrapped, not rewritten.

One :class:`AlphaFold2` holds one model's parameters and its jitted program;
XLA compiles once per input shape and the compiled program stays resident.
The multimer models (:mod:`foldflow.models.alphafold2_multimer`) share the
settings, parameters and prediction code here.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import haiku as hk
import jax
import ml_collections
import numpy as np
from alphafold.model import config as af_config
from alphafold.model import features as af_features
from alphafold.model import model as af_model
from alphafold.model.tf import input_pipeline, proteins_dataset
from alphafold.model.tf import np_backend as tf

from foldflow.config import ModelConfig
from foldflow.models import params as af_params
from foldflow.compute import Resources
from foldflow.models.base import Model, Prediction

_INIT_SEQUENCE = "ACDEFGHIKLMNPQRSTVWY"
RANDOM_PARAMS_PRNG = "unsafe_rbg"  # the random-number generator of random parameters (part of their cache path)

# Where each of foldflow's settings lives in AlphaFold's config, monomer (False) and multimer (True);
# the first path is the value reported by effective_settings.
SETTING_PATHS = {
    False: {"num_recycle": ("model.num_recycle", "data.common.num_recycle"),
            "max_msa_clusters": ("data.eval.max_msa_clusters",),
            "max_extra_msa": ("data.common.max_extra_msa",)},
    True: {"num_recycle": ("model.num_recycle",),
           "max_msa_clusters": ("model.embeddings_and_evoformer.num_msa",),
           "max_extra_msa": ("model.embeddings_and_evoformer.num_extra_msa",)},
}


def is_multimer(cfg: ml_collections.ConfigDict) -> bool:
    return bool(cfg.model.global_config.multimer_mode)


def model_config(model_name: str, settings: ModelConfig) -> ml_collections.ConfigDict:
    """AlphaFold's config for ``model_name`` with foldflow's overrides applied (AlphaFold's own value
    where the preset gives none)."""
    cfg = af_config.model_config(model_name)
    if not is_multimer(cfg):
        cfg.data.eval.num_ensemble = 1
    for setting, paths in SETTING_PATHS[is_multimer(cfg)].items():
        if (value := settings.preset_value(setting)) is not None:
            cfg.update_from_flattened_dict(dict.fromkeys(paths, value))
    cfg.model.global_config.bfloat16 = settings.bfloat16
    return cfg


def _config_value(cfg: ml_collections.ConfigDict, path: str):
    return functools.reduce(getattr, path.split("."), cfg)


InitFeatures = Callable[[ml_collections.ConfigDict], dict[str, np.ndarray]]


def monomer_init_features(cfg: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
    """Model inputs for the one-off random initialisation (any length gives the same parameters)."""
    from foldflow.features import build_features

    return af_features.np_example_to_features(build_features(_INIT_SEQUENCE, "init", []), cfg, random_seed=0)


def _initialise_random(model_name: str, settings: ModelConfig, init_features: InitFeatures) -> hk.Params:
    """Random parameters with non-zero final layers (``zero_init=False``), so outputs vary.

    Drawn on the CPU with XLA's RngBitGenerator (JAX's ``unsafe_rbg`` keys, for this initialisation only):
    the same parameters for a seed on every machine with this jaxlib, GPU or not, and the init program
    compiles in 0.4 times the time of JAX's default threefry keys (docs/benchmarks.md, benchmark 9).
    """
    cfg = model_config(model_name, settings)
    cfg.model.global_config.zero_init = False
    runner = af_model.RunModel(cfg)
    with jax.default_prng_impl(RANDOM_PARAMS_PRNG), jax.default_device(jax.devices("cpu")[0]):
        runner.init_params(init_features(cfg), random_seed=settings.params_seed)
    return jax.device_get(runner.params)


def architecture_key(model_name: str) -> str:
    """What a model's parameter tree depends on: its AlphaFold config with foldflow's run-time settings
    (recycles, MSA depths, precision) held fixed. model_1/2(_ptm) share one, model_3/4/5(_ptm) another,
    the five multimer models a third."""
    fixed = ModelConfig(num_recycle=0, max_msa_clusters=1, max_extra_msa=1, bfloat16=True)
    text = model_config(model_name, fixed).model.to_json(sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_model_params(model_name: str, settings: ModelConfig, init_features: InitFeatures = monomer_init_features
                      ) -> tuple[hk.Params, Path, float, bool]:
    """(params, npz path, seconds, created) from ``params_dir`` or the random-params cache
    (``init_features``: the model inputs a random initialisation traces).

    Random parameters are created once per architecture and seed (the same seed gives the same
    parameters to every model of one architecture) and linked to each model's file name.
    """
    if settings.params_dir is not None:
        path = af_params.params_path(settings.params_dir, model_name)
        start = time.perf_counter()
        return af_params.load_params(path), path, time.perf_counter() - start, False
    directory = af_params.random_params_dir(settings.cache_dir, settings.params_seed, RANDOM_PARAMS_PRNG)
    path = directory / af_params.PARAMS_FILE.format(model_name=model_name)
    if path.is_file():
        start = time.perf_counter()
        return af_params.load_params(path), path, time.perf_counter() - start, False
    shared = directory / f"architecture-{architecture_key(model_name)}.npz"
    params, seconds, created = af_params.cached_or_initialised(
        shared, lambda: _initialise_random(model_name, settings, init_features))
    af_params.link(shared, path)
    return params, path, seconds, created


def process_features(cfg: ml_collections.ConfigDict, raw: dict[str, np.ndarray], seed: int,
                     pad_to: int) -> dict[str, np.ndarray]:
    """AlphaFold's ``np_example_to_features`` with the crop size set to ``pad_to``.

    The input pipeline's own ``make_fixed_size`` step then pads every
    per-residue feature to ``pad_to``; ``seq_mask`` marks the real residues.
    """
    raw = dict(raw)
    data_cfg, feature_names = af_features.make_data_config(cfg, num_res=pad_to)
    if "deletion_matrix_int" in raw:
        raw["deletion_matrix"] = raw.pop("deletion_matrix_int").astype(np.float32)
    graph = tf.Graph()
    with graph.as_default(), tf.device("/device:CPU:0"):
        tf.compat.v1.set_random_seed(seed)
        tensors = proteins_dataset.np_to_tensor_dict(np_example=raw, features=feature_names)
        processed = input_pipeline.process_tensors_from_config(tensors, data_cfg)
    graph.finalize()
    with tf.Session(graph=graph) as session:
        result = session.run(processed)
    return {k: v for k, v in result.items() if v.dtype != "O"}


class AlphaFold2(Model):
    """A resident AlphaFold 2 monomer model; :class:`~foldflow.models.alphafold2_multimer.AlphaFold2Multimer`
    extends it to complexes through :meth:`model_inputs`, :meth:`_input_fields` and :meth:`_confidence_fields`."""

    version = f"alphafold-colabfold {metadata.version('alphafold-colabfold')}, jax {jax.__version__}"
    resources = Resources(cpus=1.0)  # set pipeline.model_actor_gpus on GPU nodes

    @classmethod
    def params_fingerprint(cls, name: str, settings: ModelConfig) -> str:
        """AlphaFold's parameter file (path, size, modification time), or random initialisation."""
        if settings.params_dir is None:
            return super().params_fingerprint(name, settings)
        path = af_params.params_path(settings.params_dir, name)
        stat = path.stat()
        return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"

    def __init__(self, model_name: str, settings: ModelConfig):
        self.name = model_name
        self.uses_random_params = settings.uses_random_params
        self.config = model_config(model_name, settings)
        if is_multimer(self.config) != (self.family == "multimer"):
            takes = "complexes" if self.family == "multimer" else "monomers"
            raise ValueError(f"model '{model_name}' is {'a' if is_multimer(self.config) else 'not a'} multimer "
                             f"model; {type(self).__name__} takes {takes}")
        params, self.params_path, self.load_seconds, self.initialised = load_model_params(
            model_name, settings, self.init_features)
        self._runner = af_model.RunModel(self.config, params)
        self.settings = settings

    @staticmethod
    def init_features(cfg: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
        return monomer_init_features(cfg)

    @classmethod
    def effective_settings(cls, name: str, settings: ModelConfig) -> dict[str, int]:
        cfg = model_config(name, settings)
        return {setting: _config_value(cfg, paths[0]) for setting, paths in SETTING_PATHS[is_multimer(cfg)].items()}

    @property
    def compiles(self) -> int:
        """Model programs compiled in this process: the size of JAX's own cache of the jitted model."""
        return self._runner.apply._cache_size()

    def model_inputs(self, features: dict[str, np.ndarray], seed: int, pad_to: int) -> dict[str, np.ndarray]:
        """Raw features -> what RunModel.predict takes, padded to ``pad_to`` residues."""
        return process_features(self.config, features, seed, pad_to)

    def predict(self, features: dict[str, np.ndarray], seed: int, pad_to: int) -> Prediction:
        start = time.perf_counter()
        processed = self.model_inputs(features, seed, pad_to)
        processing = time.perf_counter() - start
        prediction = self.predict_processed(processed, seed, num_res=len(features["aatype"]))
        prediction.timings = {f"process_features_{self.name}": processing, **prediction.timings}
        return prediction

    def predict_processed(self, processed: dict[str, np.ndarray], seed: int, num_res: int) -> Prediction:
        """One prediction from model inputs (:meth:`model_inputs`), sliced to the first ``num_res`` residues;
        its timing is named ``predict_and_compile_<model>`` when the input shape was compiled for it."""
        start = time.perf_counter()
        programs = self.compiles
        result, recycles = self._runner.predict(processed, random_seed=seed)
        step = "predict_and_compile" if self.compiles > programs else "predict"
        return self._to_prediction(processed, result, recycles, num_res, seed,
                                   {f"{step}_{self.name}": time.perf_counter() - start})

    def _to_prediction(self, processed, result, recycles: int, num_res: int, seed: int,
                       timings: dict[str, float]) -> Prediction:
        structure = result["structure_module"]
        has_pae = "predicted_aligned_error" in result
        return Prediction(
            model_name=self.name,
            atom_positions=np.asarray(structure["final_atom_positions"][:num_res], dtype=np.float32),
            atom_mask=np.asarray(structure["final_atom_mask"][:num_res], dtype=np.float32),
            plddt=np.asarray(result["plddt"][:num_res], dtype=np.float32),
            pae=np.asarray(result["predicted_aligned_error"][:num_res, :num_res], dtype=np.float32) if has_pae else None,
            max_pae=float(result["max_predicted_aligned_error"]) if has_pae else None,
            recycles=int(recycles),
            seed=seed,
            timings=timings,
            **self._input_fields(processed, num_res),
            **self._confidence_fields(result),
        )

    def _input_fields(self, processed, num_res: int) -> dict:
        """The prediction's fields read from the model inputs: residues and the MSA rows seen."""
        return {"aatype": np.asarray(processed["aatype"][0][:num_res]),
                "residue_index": np.asarray(processed["residue_index"][0][:num_res]),
                "msa_clusters": int(processed["msa_feat"].shape[1]),
                "extra_msa_rows": int(processed["extra_msa"].shape[1])}

    def _confidence_fields(self, result) -> dict:
        """Ranking confidence (AlphaFold's: mean pLDDT) and pTM where the model has a PAE head."""
        return {"ranking_confidence": float(result["ranking_confidence"]),
                "ptm": float(result["ptm"]) if "ptm" in result else None}


def enable_compilation_cache(directory: Path) -> None:
    """Persist XLA programs on disk so a new process or actor does not compile them again."""
    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
