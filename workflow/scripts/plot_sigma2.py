import sys

sys.stderr = open(snakemake.log[0], "w")

from pathlib import Path

from dualbench.plots import runs_table, sigma2_vs_n
from dualbench.workflow import start_script

start_script(snakemake)
sigma2_vs_n(
    runs_table(snakemake.input, snakemake.params.runs),
    Path(snakemake.output.png).with_suffix(""),
    title=f"{snakemake.wildcards.material}: MD mean-square relative displacement",
)
