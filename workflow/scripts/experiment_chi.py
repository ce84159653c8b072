import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.scoring.measured import process_experiment
from dualbench.workflow import start_script

start_script(snakemake)
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
