import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.io import write_json
from dualbench.label import gather_labels
from dualbench.workflow import start_script

start_script(snakemake)
info = gather_labels(snakemake.input, snakemake.output.train, snakemake.output.test)
write_json(snakemake.output.info, info)
