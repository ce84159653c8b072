import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.exafs import average_stage
from dualbench.workflow import start_script

start_script(snakemake)
average_stage(
    list(snakemake.input.chunks),
    snakemake.params.ft,
    snakemake.output.chi_k,
    snakemake.output.chi_r,
    snakemake.output.convergence,
    snakemake.output.snapshots,
)
