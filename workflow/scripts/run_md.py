import sys

# Append: a job that resumes from its checkpoint keeps the killed attempt's log above.
sys.stderr = open(snakemake.log[0], "a")

from pathlib import Path

from dualbench.md.driver import run_md_job
from dualbench.md.settings import md_settings
from dualbench.structure import build_structure
from dualbench.workflow import start_script

start_script(snakemake)
structure_file = next(iter(snakemake.input.structure), None)
run_md_job(
    model=snakemake.input.model,
    unit_cell=build_structure(snakemake.params.structure, structure_file),
    supercell=snakemake.params.supercell,
    settings=md_settings(
        {**snakemake.config["md"], **snakemake.params.md},
        temperature_K=snakemake.params.temperature,
        seed=int(snakemake.wildcards.seed),
    ),
    out_dir=Path(snakemake.output.snapshots).parent,
    threads=snakemake.threads,
)
