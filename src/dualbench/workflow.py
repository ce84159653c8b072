"""Glue for the Snakemake scripts in workflow/scripts: one call at the start of each."""

from __future__ import annotations

from typing import Any

from dualbench.cli import setup_logging
from dualbench.config import config_hash
from dualbench.io import set_provenance_context


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
