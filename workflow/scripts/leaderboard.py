import sys

sys.stderr = open(snakemake.log[0], "w")

from pathlib import Path

from dualbench.leaderboard_page import write_leaderboard
from dualbench.workflow import start_script

start_script(snakemake)
write_leaderboard(
    snakemake.params.folders,
    snakemake.output.csv,
    Path(snakemake.output.png).with_suffix(""),
    snakemake.output.page,
    temperatures=snakemake.params.temperatures,
    conditions=snakemake.params.conditions,
)
