import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.scoring.convergence import convergence_stage
from dualbench.workflow import start_script

start_script(snakemake)
convergence_stage(
    snakemake.input.summary,
    snakemake.output[0],
    config=snakemake.params.convergence,
    experiment_fit=snakemake.input.get("fit"),
    production_ps=snakemake.params.production_ps,
)
