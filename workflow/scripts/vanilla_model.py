import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.models import ModelSpec, write_model_spec
from dualbench.workflow import start_script

start_script(snakemake)

model = snakemake.params.model
write_model_spec(
    snakemake.output[0],
    ModelSpec(kind=model["kind"], weights=model["weights"], seed=int(snakemake.wildcards.seed)),
)
