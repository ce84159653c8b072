import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.exafs import chunk_stage
from dualbench.workflow import start_script

start_script(snakemake)
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
    paths_file=snakemake.input.get("paths"),
)
