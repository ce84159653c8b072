import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.exafs import ideal_supercell
from dualbench.scoring.experiment_fit import fit_stage
from dualbench.workflow import start_script

start_script(snakemake)
fit_stage(
    snakemake.input.chi_k,
    ideal_supercell(snakemake.params.material, snakemake.input.get("structure")),
    snakemake.params.potentials_dir,
    exafs=snakemake.params.exafs,
    ft=snakemake.params.ft,
    fit=snakemake.params.fit,
    out=snakemake.output[0],
)
