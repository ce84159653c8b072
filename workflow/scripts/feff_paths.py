import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.exafs import paths_stage
from dualbench.workflow import start_script

start_script(snakemake)
paths_stage(
    snakemake.params.material,
    snakemake.params.exafs,
    snakemake.params.potentials_dir,
    snakemake.output[0],
    structure_file=snakemake.input.get("structure"),
)
