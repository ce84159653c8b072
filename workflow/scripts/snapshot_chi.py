import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.cli import setup_logging
from dualbench.exafs import chunk_stage

setup_logging()
chunk_stage(
    snakemake.input.snapshots,
    snakemake.params.potentials_dir,
    snakemake.output[0],
    exafs=snakemake.params.exafs,
    edge=snakemake.params.edge,
    chunk=snakemake.params.chunk,
    n_chunks=snakemake.params.n_chunks,
    seed=snakemake.params.seed,
    workers=snakemake.threads,
)
