"""Glue for the Snakemake workflow: the study config the Snakefile runs with
(:func:`study_config`, called once by workflow/rules/common.smk) and the call at the start
of each script in workflow/scripts (:func:`start_script`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dualbench.cli import setup_logging
from dualbench.io import set_provenance_context
from dualbench.schema import config_hash


def start_script(snakemake: Any) -> None:
    """Log to the rule's log (stderr, already redirected), take the config's models as
    the trusted ones, and record the job's provenance.

    Every result JSON the job writes then carries the config hash, the seeds (the run's
    seed, or the sweep's for a material-level job), the rule and the wildcards.
    """
    setup_logging()
    # The config is trusted (a model file is data): its kind ase calculators may be imported.
    from dualbench.models.resolve import trust_config_models

    trust_config_models(snakemake.config.get("models") or {})
    wildcards = dict(snakemake.wildcards.items())
    if "seed" in wildcards:
        seeds = [int(wildcards["seed"])]
    else:
        seeds = list(snakemake.config["sweep"]["seeds"])
    set_provenance_context(
        config_hash=config_hash(snakemake.config),
        seeds=seeds,
        rule=snakemake.rule,
        wildcards=wildcards,
    )


def study_config(config: Mapping[str, Any], files: Sequence[str | Path],
                 replacement: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config every rule reads, prepared in one place.

    ``replacement`` (the --configfile's own config) replaces config/config.yaml instead of
    being merged into it (Snakemake's default), so that another study does not inherit its
    materials.  Each of ``files`` is read again to refuse a key given twice (Snakemake keeps
    the last one silently, and names no line of a YAML error).  The config is validated
    against the package's schema (the one schema file: a bad key stops here, naming the
    files and the dotted key), defaults filled, and its mappings put in sorted key order,
    so that a config written back with its keys in another order gives every rule the
    same params (Snakemake compares params by repr, and a dict's repr follows its key
    order).  A relative $DUALBENCH_DATA_MIRROR means the folder it was given in (the
    shell's), not a job's working directory (`--directory`): it is made absolute.
    """
    from dualbench.config import load_yaml, prepare_config
    from dualbench.fetch import MIRROR_ENV, mirror_folder
    from dualbench.schema import canonical_config

    for path in files:
        load_yaml(path)
    source = ", ".join(map(str, files))
    prepared = canonical_config(prepare_config(dict(replacement or config), source))
    check_local_structures(prepared, source)
    if os.environ.get(MIRROR_ENV):
        os.environ[MIRROR_ENV] = str(mirror_folder())
    return prepared


def data_file(material: str, role: str, source: Mapping[str, Any]) -> str:
    """Where a data source's file lies: in resources/{material}/{role}/ after fetch_data
    checked it (downloads, and local files with a sha256, such as the committed DFT
    frames), or the local path as given."""
    from dualbench.fetch import source_filename

    if "path" in source and not source.get("sha256"):
        return str(source["path"])
    return f"resources/{material}/{role}/{source_filename(source)}"


def local_structure_file(material: Mapping[str, Any], name: str) -> Path | None:
    """The structure file of a material whose structure comes from a file (see
    :func:`data_file`), or None for a structure given by its symbols."""
    source = material["structure"].get("source")
    return None if source is None else Path(data_file(name, "structure", source))


def check_local_structures(config: Mapping[str, Any], source: str) -> None:
    """A structure file that is already here is checked before any job, as `symbols` are
    by prepare_config: absorber among its elements, the EXAFS cluster inside the
    supercell.  (A structure still to be downloaded is checked by fetch_data, the first
    job to see it.)"""
    from dualbench.config import check_structure
    from dualbench.schema import ConfigError
    from dualbench.structure import build_structure

    for name, material in config["materials"].items():
        path = local_structure_file(material, name)
        if path is None or not path.is_file():
            continue
        try:
            cell = build_structure(material["structure"], path)
        except ValueError as err:
            raise ConfigError(source, f"materials.{name}.structure.source", str(err)) from err
        check_structure(config, name, cell, source)
