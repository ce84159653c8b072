import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.exafs import potentials_stage
from dualbench.workflow import start_script

start_script(snakemake)
potentials_stage(
    snakemake.params.material,
    snakemake.params.exafs,
    snakemake.params.out_dir,
    structure_file=snakemake.input.get("structure"),
    snapshots_file=snakemake.input.get("snapshots"),
)
