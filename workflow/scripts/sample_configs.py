import sys

sys.stderr = open(snakemake.log[0], "a")

from pathlib import Path

from dualbench.io import write_json
from dualbench.label import LabelSettings, sample_configs
from dualbench.models.spec import ModelSpec
from dualbench.structure import build_structure
from dualbench.workflow import start_script

start_script(snakemake)
structure_file = next(iter(snakemake.input.structure), None)
info = sample_configs(
    build_structure(snakemake.params.structure, structure_file),
    LabelSettings.from_config(snakemake.params.label),  # this round's counts
    temperature_K=snakemake.params.temperature,
    model=ModelSpec(**snakemake.params.model),
    material=snakemake.wildcards.material,
    md_config=snakemake.config["md"],
    work_dir=Path(snakemake.output.configs).parent / "md",
    out=snakemake.output.configs,
    threads=snakemake.threads,
    round_index=int(snakemake.wildcards.round),
)
write_json(snakemake.output.info, info)
