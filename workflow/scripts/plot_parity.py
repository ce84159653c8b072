import sys

sys.stderr = open(snakemake.log[0], "w")

from pathlib import Path

import pandas as pd

from dualbench.plots import parity
from dualbench.workflow import start_script

start_script(snakemake)
parity(
    {
        label: pd.read_csv(path)
        for label, path in zip(snakemake.params.labels, snakemake.input, strict=True)
    },
    Path(snakemake.output.png).with_suffix(""),
    title=f"{snakemake.wildcards.material}: held-out DFT forces",
    groups={
        label: run["model"]
        for label, run in zip(snakemake.params.labels, snakemake.params.runs, strict=True)
    },
)
