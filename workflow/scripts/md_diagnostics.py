import sys

sys.stderr = open(snakemake.log[0], "w")

from pathlib import Path

from dualbench.cli import setup_logging
from dualbench.config import config_hash
from dualbench.diagnostics import md_diagnostics

setup_logging()
md_diagnostics(
    snakemake.input.snapshots,
    snakemake.input.reference,
    snakemake.params.absorber,
    snakemake.params.temperature,
    Path(snakemake.output.diagnostics).parent,
    md_log=snakemake.input.log,
    config_hash=config_hash(snakemake.config),
)
