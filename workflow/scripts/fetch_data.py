import sys

sys.stderr = open(snakemake.log[0], "w")

from pathlib import Path

from dualbench.fetch import fetch
from dualbench.workflow import start_script

start_script(snakemake)
fetch(snakemake.params.source, snakemake.output[0])
if snakemake.wildcards.role == "structure":
    # A downloaded structure is checked as soon as it is here, as `symbols` are before
    # any job: readable, the absorber among its elements, the cluster inside the supercell.
    from dualbench.config import check_structure
    from dualbench.structure import build_structure

    material = snakemake.wildcards.material
    try:
        cell = build_structure(snakemake.config["materials"][material]["structure"],
                               snakemake.output[0])
        check_structure(snakemake.config, material, cell, snakemake.params.source.get("url", ""))
    except ValueError:
        Path(snakemake.output[0]).unlink(missing_ok=True)
        raise
