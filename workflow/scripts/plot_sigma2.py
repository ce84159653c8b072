import sys

sys.stderr = open(snakemake.log[0], "w")

from pathlib import Path

from dualbench.io import read_json
from dualbench.plots import runs_table, sigma2_vs_n
from dualbench.workflow import start_script

start_script(snakemake)
fit = snakemake.input.get("fit")
sigma2_vs_n(
    runs_table(snakemake.input.sigma2, snakemake.params.runs),
    Path(snakemake.output.png).with_suffix(""),
    title=f"{snakemake.wildcards.material}: MD mean-square relative displacement",
    experiment_fit=read_json(fit) if fit else None,
)
