import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.cli import setup_logging
from dualbench.experiment import process_experiment

setup_logging()
process_experiment(
    snakemake.input.data,
    snakemake.params.element,
    snakemake.params.edge,
    snakemake.params.out_dir,
    fmt=snakemake.params.format,
    columns=snakemake.params.columns,
    settings=snakemake.params.experiment,
    ft=snakemake.params.ft,
)
