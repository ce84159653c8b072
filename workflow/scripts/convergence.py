import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.convergence import convergence_stage
from dualbench.workflow import start_script

start_script(snakemake)
convergence_stage(snakemake.input[0], snakemake.output[0])
