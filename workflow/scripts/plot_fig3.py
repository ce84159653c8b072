import sys

sys.stderr = open(snakemake.log[0], "w")

from pathlib import Path

import pandas as pd

from dualbench.io import read_json
from dualbench.plot_answer import fig3
from dualbench.workflow import start_script

start_script(snakemake)
fig3(
    pd.read_csv(snakemake.input.summary),
    Path(snakemake.output.png).with_suffix(""),
    title=snakemake.wildcards.material,
    record=read_json(snakemake.input.convergence),
)
