import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.cli import setup_logging
from dualbench.fetch import fetch

setup_logging()
fetch(snakemake.params.source, snakemake.output[0])
