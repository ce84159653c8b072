import sys

sys.stderr = open(snakemake.log[0], "w")

from dualbench.cli import setup_logging
from dualbench.data import prepare_frames
from dualbench.io import write_json

setup_logging()
dft = snakemake.params.dft
info = prepare_frames(
    train=snakemake.input.train,
    train_format=dft["train"]["format"],
    test=snakemake.input.test or None,
    test_format=dft["test"]["format"] if dft["test"] else None,
    elements=snakemake.params.elements,
    test_fraction=dft["test_fraction"],
    max_n_frames=snakemake.params.max_n,
    out_train=snakemake.output.pool,
    out_test=snakemake.output.test,
)
write_json(snakemake.output.info, info)
