import sys

sys.stderr = open(snakemake.log[0], "w")

from pathlib import Path

from dualbench.diagnostics import md_diagnostics
from dualbench.workflow import start_script

start_script(snakemake)
md_diagnostics(
    snakemake.input.snapshots,
    snakemake.input.reference,
    snakemake.params.absorber,
    snakemake.params.temperature,
    Path(snakemake.output.diagnostics).parent,
    md_log=snakemake.input.log,
)
