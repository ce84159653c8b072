import sys

sys.stderr = open(snakemake.log[0], "w")

from pathlib import Path

import pandas as pd

from dualbench.plots import convergence, run_label
from dualbench.workflow import start_script

start_script(snakemake)
convergence(
    {
        f"{run_label(run['model'], run['n'])}, seed {run['seed']}": pd.read_csv(path)
        for run, path in zip(snakemake.params.runs, snakemake.input, strict=True)
    },
    Path(snakemake.output.png).with_suffix(""),
    value="chir_max",
    ylabel=r"max $|\chi(R)|$ of the running average (Å$^{-3}$)",
    title=f"{snakemake.wildcards.material}: MD-EXAFS convergence",
)
