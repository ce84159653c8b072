import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.fetch import fetch
from dualbench.workflow import start_script

start_script(snakemake)
fetch(snakemake.params.source, snakemake.output[0])
