import sys

sys.stderr = open(snakemake.log[0], "w")

from pathlib import Path

from dualbench.finetune import run_finetune
from dualbench.models.device import set_threads
from dualbench.models.spec import ModelSpec
from dualbench.training import FinetuneSettings
from dualbench.workflow import start_script

start_script(snakemake)
set_threads(snakemake.threads)
run_finetune(
    pool_file=snakemake.input.pool,
    n_frames=int(snakemake.wildcards.n),
    seed=int(snakemake.wildcards.seed),
    # device is read from the config, not params: moving to a GPU must not rerun jobs
    settings=FinetuneSettings.from_config(
        {**snakemake.config["finetune"], **snakemake.params.settings}
    ),
    out_dir=Path(snakemake.output.model).parent,
    base=ModelSpec(**snakemake.params.base),
)
