import sys

sys.stderr = open(snakemake.log[0], "w")

from pathlib import Path

from dualbench.exafs import FTSettings
from dualbench.plots import fig2_from_files, scored_shifts
from dualbench.workflow import start_script

start_script(snakemake)
experiment = snakemake.input.get("experiment")
comparison = snakemake.input.get("comparison")
fig2_from_files(
    simulations=[
        (label, Path(path).parent)
        for label, path in zip(snakemake.params.labels, snakemake.input.sims, strict=True)
    ],
    stem=Path(snakemake.output.png).with_suffix(""),
    experiment=Path(experiment).parent if experiment else None,
    kweight=snakemake.params.kweight,
    k_window=tuple(snakemake.params.k_window),
    title=snakemake.params.title,
    scored=scored_shifts(comparison, snakemake.params.runs) if comparison else None,
    ft=FTSettings.from_config(snakemake.params.ft),
    models=[run["model"] for run in snakemake.params.runs],
)
