import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.data import prepare_frames, selection_of
from dualbench.io import write_json
from dualbench.workflow import start_script

start_script(snakemake)
dft = snakemake.params.dft
elements = snakemake.params.elements
if elements is None:  # a structure file fetched by this run: its elements
    from dualbench.structure import build_structure

    cell = build_structure(snakemake.config["materials"][snakemake.wildcards.material]["structure"],
                           snakemake.input.structure[0])
    elements = sorted(set(cell.get_chemical_symbols()))
info = prepare_frames(
    train=snakemake.input.train,
    # labelled frames (dft.label) are extended XYZ
    train_format=dft["train"]["format"] if dft["train"] else "extxyz",
    test=snakemake.input.test or None,
    test_format=dft["test"]["format"] if dft["test"] else "extxyz",
    elements=elements,
    max_force_eV_per_A=dft["max_force_eV_per_A"],
    test_fraction=dft["test_fraction"],
    # read from the config, not params: the check must not make a new N rerun everything
    max_n_frames=max(snakemake.config["sweep"]["n_frames"]),
    out_train=snakemake.output.pool,
    out_test=snakemake.output.test,
    selection=selection_of(dft),
)
write_json(snakemake.output.info, info)
