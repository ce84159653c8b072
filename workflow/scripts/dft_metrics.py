import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.metrics import run_dft_metrics
from dualbench.models.device import set_threads
from dualbench.workflow import start_script

start_script(snakemake)
set_threads(snakemake.threads)
run_dft_metrics(
    model=snakemake.input.model,
    frames_file=snakemake.input.test,
    out=snakemake.output.metrics,
    parity_out=snakemake.output.parity,
    frames_format="extxyz",
    device=snakemake.config["finetune"]["device"],
)
