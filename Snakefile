# dualbench: benchmark universal ML interatomic potentials against DFT and EXAFS.
#
#   snakemake --cores 2                      # the default study (config/config.yaml)
#   snakemake --profile profiles/slurm       # on a Slurm cluster
#
# The logic lives in the `dualbench` package (src/dualbench); the rules only wire
# files together and call it through workflow/scripts.

import os

from snakemake.utils import min_version

min_version("9.0")

# The envs' post-deploy script (--sdm conda) installs the package from this repository.
# (Set here, not read: an `envvars:` directive would demand it from the user, so it is set
# with update(), which `snakemake --lint` does not take for a read of os.environ[...].)
os.environ.update(DUALBENCH_REPO=workflow.basedir)

# Snakemake's own reader reports a YAML syntax error in the default config without its
# file or line: read it first with dualbench's (which also refuses a duplicate key).  A
# --configfile is read by Snakemake before this file; `dualbench check-config FILE` names
# the line of its error.
if not workflow.overwrite_configfiles and os.path.isfile("config/config.yaml"):
    from dualbench.config import load_yaml

    load_yaml("config/config.yaml")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/common_dft.smk"
include: "workflow/rules/common_exafs.smk"
include: "workflow/rules/common_results.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/label.smk"
include: "workflow/rules/dft.smk"
include: "workflow/rules/md.smk"
include: "workflow/rules/exafs.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/leaderboard.smk"


rule all:
    default_target: True
    input:
        get_final_output(),


onerror:
    print(
        "\ndualbench: a job failed. Its log is the file under results/<material>/logs/ "
        "named in the error above; `snakemake --summary` lists every output's state."
    )
