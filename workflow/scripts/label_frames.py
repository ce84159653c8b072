import os
import sys

sys.stderr = open(snakemake.log[0], "w")
# Before numpy and GPAW load their BLAS: one job, `threads` cores.
os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(snakemake.threads)

from pathlib import Path

from dualbench.label import run_label_chunk
from dualbench.workflow import start_script

start_script(snakemake)
run_label_chunk(
    snakemake.input.configs,
    snakemake.params.label,
    chunk=int(snakemake.wildcards.chunk),
    out=snakemake.output.frames,
    info_out=snakemake.output.info,
    work_dir=Path(snakemake.output.frames).with_suffix(".dft"),
)
