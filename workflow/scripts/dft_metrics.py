import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.cli import setup_logging
from dualbench.metrics import run_dft_metrics
from dualbench.models import set_threads

setup_logging()
set_threads(snakemake.threads)
run_dft_metrics(
    model=snakemake.input.model,
    frames_file=snakemake.input.test,
    out=snakemake.output.metrics,
    parity_out=snakemake.output.parity,
    frames_format="extxyz",
    device=snakemake.params.device,
    provenance_extra={
        "config_hash": snakemake.params.config_hash,
        "seed": int(snakemake.wildcards.seed),
    },
)
