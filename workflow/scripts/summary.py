import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.io import write_csv
from dualbench.summary import build_summary
from dualbench.workflow import start_script

start_script(snakemake)

runs = snakemake.params.runs
metrics = [
    (path, run["model"], run["n"], run["seed"])
    for path, run in zip(snakemake.input.dft, runs, strict=True)
]
write_csv(
    snakemake.output[0],
    build_summary(
        snakemake.wildcards.material,
        metrics,
        snakemake.input.get("exafs"),
        reference_comparison=snakemake.input.get("reference"),
    ),
)
