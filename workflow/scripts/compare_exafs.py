import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.cli import setup_logging
from dualbench.compare import compare_stage

setup_logging()
compare_stage(
    snakemake.input.experiment,
    snakemake.params.runs,
    list(snakemake.input.simulations),
    exafs=snakemake.params.exafs,
    ft=snakemake.params.ft,
    out_csv=snakemake.output.csv,
    out_json=snakemake.output.json,
)
