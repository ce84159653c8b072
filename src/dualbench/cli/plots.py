"""`dualbench plot`: the study's figures from its tables, without the workflow."""

from __future__ import annotations

import argparse
from pathlib import Path


def _labelled(text: str) -> tuple[str, str]:
    label, sep, folder = text.partition("=")
    if not sep or not label or not folder:
        raise argparse.ArgumentTypeError(f"expected LABEL=FOLDER, got {text!r}")
    return label, folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="draw Fig. 2 or Fig. 3 from the study's tables")
    figs = p.add_subparsers(dest="figure", metavar="FIGURE", required=True)

    f2 = figs.add_parser("fig2", help="|FT| of the experiment and MD-EXAFS of several models")
    f2.add_argument("--experiment", help="folder with the experiment's chi_k.csv and chi_r.csv")
    f2.add_argument("--simulation", action="append", type=_labelled, required=True,
                    metavar="LABEL=FOLDER",
                    help="a simulation's folder (chi_k.csv, chi_r.csv); repeat for more")
    f2.add_argument("--kweight", type=int, default=2, help="k-weight of the transform")
    f2.add_argument("--title", default="")
    f2.add_argument("--k-window", nargs=2, type=float, metavar=("KMIN", "KMAX"),
                    help="shade the FT window and bound the k panel (1/Å)")
    f2.add_argument("--out", required=True, help="output stem: writes STEM.png, .pdf, .csv")
    f2.set_defaults(func=fig2)

    f3 = figs.add_parser("fig3", help="EXAFS MSE and force MAE against N from summary.csv")
    f3.add_argument("--summary", required=True, help="results/<material>/summary.csv")
    f3.add_argument("--exafs-column", default="exafs_mse_k",
                    help="summary column on the left axis (default: exafs_mse_k)")
    f3.add_argument("--convergence",
                    help="results/<material>/convergence.json, whose decisions the figure"
                    " shows (default: decided here with the default margins)")
    f3.add_argument("--title", default="")
    f3.add_argument("--out", required=True, help="output stem: writes STEM.png, .pdf, .csv")
    f3.set_defaults(func=fig3)


def fig2(args: argparse.Namespace) -> int:
    from dualbench.plots import fig2_from_files

    window = tuple(args.k_window) if args.k_window else None
    for path in fig2_from_files(args.simulation, Path(args.out), args.experiment,
                                args.kweight, args.title, window):
        print(path)
    return 0


def fig3(args: argparse.Namespace) -> int:
    import pandas as pd

    from dualbench.io import read_json
    from dualbench.plot_answer import fig3 as draw

    record = read_json(args.convergence) if args.convergence else None
    for path in draw(pd.read_csv(args.summary), Path(args.out), args.exafs_column,
                     title=args.title, record=record):
        print(path)
    return 0
