import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.io import write_csv
from dualbench.summary import build_summary

runs = snakemake.params.runs
table = build_summary(
    snakemake.wildcards.material,
    [(path, r["model"], r["n"], r["seed"]) for path, r in zip(snakemake.input.dft, runs)],
    snakemake.input.get("exafs"),
)
write_csv(snakemake.output[0], table)
