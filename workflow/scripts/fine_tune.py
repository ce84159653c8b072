import sys

sys.stderr = open(snakemake.log[0], "w")

from pathlib import Path

from dualbench.cli import setup_logging
from dualbench.finetune import FinetuneSettings, run_finetune
from dualbench.models import ModelSpec, set_threads

setup_logging()
set_threads(snakemake.threads)
base = snakemake.params.base
run_finetune(
    pool_file=snakemake.input.pool,
    n_frames=int(snakemake.wildcards.n),
    seed=int(snakemake.wildcards.seed),
    settings=FinetuneSettings.from_config(snakemake.params.settings),
    out_dir=Path(snakemake.output.model).parent,
    base=ModelSpec(kind=base["kind"], weights=base["weights"]),
    provenance_extra={"config_hash": snakemake.params.config_hash},
)
