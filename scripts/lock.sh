#!/usr/bin/env bash
# Regenerate the locks of the tested dependency versions (uv keeps every version already in a lock;
# pass --upgrade to move to the newest). CI (make test) and docker/Dockerfile install with
# requirements/cpu.lock as constraints, docker/Dockerfile.gpu with requirements/gpu.lock. The CPU lock also
# holds what the head image installs besides foldflow (requirements/cluster.in).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-uv}
common=(--python-version 3.11 --python-platform x86_64-manylinux_2_34 --no-header --annotation-style line "$@")
"$UV" pip compile pyproject.toml requirements/cluster.in --extra test "${common[@]}" -o requirements/cpu.lock
jax=$(sed -n 's/^jax==\([^ ]*\).*/\1/p' requirements/cpu.lock)
echo "jax[cuda12]==$jax" | "$UV" pip compile pyproject.toml - -c requirements/cpu.lock "${common[@]}" \
  -o requirements/gpu.lock
