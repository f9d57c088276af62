#!/usr/bin/env bash
# Creates or refreshes the project-local Python environment that the embedded
# interpreter loads its packages from (default .venv, or $KMEANS_PYTHON_ENV),
# with the pinned versions of src/contenders/python/requirements.txt.
#
# It must be built from the same python3 that the crate links against (the
# python3 on PATH at build time, or $PYO3_PYTHON); nothing is done when the
# environment already matches the requirements.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
env_dir="${KMEANS_PYTHON_ENV:-$root/.venv}"
python="${PYO3_PYTHON:-python3}"
requirements="$root/src/contenders/python/requirements.txt"
stamp="$env_dir/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0], sys.prefix)')"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "python-env: building $env_dir from $requirements" >&2
"$python" -m venv --clear "$env_dir"
"$env_dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
echo "$want" > "$stamp"
echo "python-env: ready ($("$env_dir/bin/python" -c 'import numpy, sklearn; print("numpy", numpy.__version__, "scikit-learn", sklearn.__version__)'))" >&2
