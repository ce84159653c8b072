import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.models.spec import ModelSpec, write_model_spec
from dualbench.workflow import start_script

start_script(snakemake)

write_model_spec(
    snakemake.output[0],
    ModelSpec(**snakemake.params.model, seed=int(snakemake.wildcards.seed)),
)
