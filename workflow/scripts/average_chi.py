import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.cli import setup_logging
from dualbench.exafs import average_stage

setup_logging()
average_stage(
    list(snakemake.input.chunks),
    snakemake.params.ft,
    snakemake.output.chi_k,
    snakemake.output.chi_r,
    snakemake.output.convergence,
)
