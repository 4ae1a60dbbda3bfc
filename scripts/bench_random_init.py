"""Random-parameter initialisation: JAX's default threefry keys vs foldflow's unsafe_rbg keys, side by side.

Each side runs in a fresh process without the persistent XLA cache and initialises the same model
(AlphaFold's init program traced at the same inputs, on the CPU), printing trace+compile and run seconds.

    .venv/bin/python scripts/bench_random_init.py [model_1_ptm]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

ONE_SIDE = """
import json, sys, time
import jax
from alphafold.model import model as af_model
from foldflow.config import ModelConfig
from foldflow.models import alphafold2 as af2

name, generator = sys.argv[1], sys.argv[2]
cfg = af2.model_config(name, ModelConfig(num_recycle=0, max_msa_clusters=8, max_extra_msa=16))
cfg.model.global_config.zero_init = False
runner = af_model.RunModel(cfg)
features = af2.monomer_init_features(cfg)
with jax.default_prng_impl(generator), jax.default_device(jax.devices("cpu")[0]):
    rng = jax.random.PRNGKey(0)
    start = time.perf_counter()
    compiled = runner.init.lower(rng, features).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    params = jax.device_get(compiled(rng, features))
    run_s = time.perf_counter() - start
count = sum(v.size for module in params.values() for v in module.values())
print(json.dumps({"generator": generator, "compile_s": compile_s, "run_s": run_s, "parameters": int(count)}))
"""


def measure(model: str, generator: str) -> dict:
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": "", "JAX_ENABLE_COMPILATION_CACHE": "false"}
    result = subprocess.run([sys.executable, "-c", ONE_SIDE, model, generator], capture_output=True, text=True,
                            env=env, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    model = sys.argv[1] if len(sys.argv) > 1 else "model_1_ptm"
    threefry, rbg = measure(model, "threefry2x32"), measure(model, "unsafe_rbg")
    assert threefry["parameters"] == rbg["parameters"]
    print(f"{model}: {rbg['parameters']:,} parameters")
    print(f"{'keys':<14}{'trace+compile s':>16}{'run s':>8}")
    for side in (threefry, rbg):
        print(f"{side['generator']:<14}{side['compile_s']:>16.1f}{side['run_s']:>8.1f}")
    print(f"compile: unsafe_rbg / threefry = {rbg['compile_s'] / threefry['compile_s']:.2f}")


if __name__ == "__main__":
    main()
