import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.scoring.against_experiment import compare_stage
from dualbench.workflow import start_script

start_script(snakemake)
compare_stage(
    snakemake.input.experiment,
    snakemake.params.runs,
    list(snakemake.input.simulations),
    exafs=snakemake.params.exafs,
    ft=snakemake.params.ft,
    out_csv=snakemake.output.csv,
    out_json=snakemake.output.json,
    experiment_fit=snakemake.input.get("fit"),
    snapshot_files=list(snakemake.input.snapshots),
)
