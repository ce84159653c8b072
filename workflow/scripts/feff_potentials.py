import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.cli import setup_logging
from dualbench.exafs import potentials_stage

setup_logging()
potentials_stage(
    snakemake.params.material,
    snakemake.params.exafs,
    snakemake.params.out_dir,
    structure_file=snakemake.input.get("structure"),
    snapshots_file=snakemake.input.get("snapshots"),
)
