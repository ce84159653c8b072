import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.scoring.against_reference_model import reference_stage
from dualbench.workflow import start_script

start_script(snakemake)
reference_stage(
    snakemake.params.runs,
    snakemake.input.simulations,
    snakemake.input.snapshots,
    reference=tuple(snakemake.params.reference),
    ft=snakemake.params.ft,
    out_csv=snakemake.output[0],
)
