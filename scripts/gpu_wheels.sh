#!/usr/bin/env bash
# The wheels the device machine lacks for foldflow's model path (scripts/bench_gpu.py), at the versions of
# requirements/cpu.lock, for its Python (3.12, x86-64). The machine has JAX 0.11 (CUDA 13), numpy, scipy,
# pyarrow, PyYAML, absl-py and the rest of what this path imports, and reaches no registry.
#
#   scripts/gpu_wheels.sh [DIR] [PYTHON_VERSION]     (default .whl and 3.12; .whl is git-ignored)
#
# Then name DIR in the device call's carry and install with
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site DIR/*.whl
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.whl}
python_version=${2:-3.12}
packages=(alphafold-colabfold colabfold-kernels dm-haiku jmp dm-tree ml-collections immutabledict biopython
          pydantic pydantic-core annotated-types typing-inspection typing-extensions wcwidth)
pins=()
for package in "${packages[@]}"; do
    pin=$(grep -i "^${package}==" requirements/cpu.lock | cut -d' ' -f1)
    [[ -n $pin ]] || { echo "gpu_wheels.sh: $package is not in requirements/cpu.lock" >&2; exit 1; }
    pins+=("$pin")
done
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")
done
rm -rf "$dir"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$python_version" --implementation cp \
    "${platforms[@]}" -d "$dir" "${pins[@]}"
ls "$dir"
du -sh "$dir"
