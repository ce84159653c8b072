#!/bin/sh
# Snakemake's post-deploy script of every env here (envs/NAME.post-deploy.sh links to this
# file): run once, inside the new env, after `--sdm conda` created it from its own copy of
# envs/NAME.yaml (under .snakemake/conda or --conda-prefix, where a relative path such as
# `-e ..` would not point at this repository).  It installs the dualbench package from the
# repository whose Snakefile runs, which the Snakefile exports as DUALBENCH_REPO; the env
# file already holds every dependency, hence --no-deps.
set -eu
repo="${DUALBENCH_REPO:-}"
if [ -z "$repo" ] || [ ! -f "$repo/pyproject.toml" ]; then
    echo "dualbench post-deploy: DUALBENCH_REPO='$repo' is not the dualbench repository" \
        "(the Snakefile sets it; run Snakemake with this repository's Snakefile)" >&2
    exit 1
fi
python -m pip install --no-deps -e "$repo"
