"""Subcommands of the DFT arm: metrics of a model on DFT frames, and fine-tuning."""

from __future__ import annotations

import argparse
import json
import math

from dualbench.cli import TRUST_ASE_HELP, model_argument, positive_int, schema_value
from dualbench.cli.outputs import add_overwrite, command_line, output_files, output_folder
from dualbench.data import FRAME_FORMATS

#: What `finetune` writes into --out (what a failure removes).
FINETUNE_OUTPUTS = ("checkpoint.pth.tar", "model.json", "training_curve.csv", "frame_ids.json")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dft-metrics",
        help="energy/force/stress errors and force-parity slope of a model on DFT frames",
    )
    p.add_argument("--model", required=True,
                   help="chgnet[:0.2.0|:r2scan], sevennet[:NAME], matgl[:NAME], a model.json"
                        " or a checkpoint")
    p.add_argument("--trust-ase-model", action="store_true", help=TRUST_ASE_HELP)
    p.add_argument("--frames", required=True, help="DFT frames file")
    p.add_argument("--format", choices=FRAME_FORMATS, help="frames format (default: from name)")
    p.add_argument("--out", required=True, help="metrics JSON to write")
    p.add_argument("--parity-out", help="also write the force parity table (CSV)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    p.set_defaults(func=dft_metrics)

    p = sub.add_parser("finetune", help="fine-tune a model on N frames of a DFT pool")
    p.add_argument("--model", default="chgnet",
                   help="base model: chgnet[:WEIGHTS] (default chgnet) or sevennet[:NAME]")
    p.add_argument("--frames", required=True, help="the training pool of DFT frames")
    p.add_argument("--format", choices=FRAME_FORMATS, help="frames format (default: from name)")
    p.add_argument("--n", type=schema_value("sweep.n_frames[]"), required=True,
                   help="number of frames N (>= 1)")
    p.add_argument("--seed", type=schema_value("sweep.seeds[]"), default=0,
                   help="subset and training seed")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--epochs", type=schema_value("finetune.epochs"), default=10)
    p.add_argument("--learning-rate", type=schema_value("finetune.learning_rate"), default=1e-3)
    p.add_argument("--batch-size", type=schema_value("finetune.batch_size"), default=4)
    p.add_argument("--stress-weight", type=schema_value("finetune.stress_weight"), default=0.1)
    p.add_argument("--freeze", nargs="*", default=["embeddings"],
                   help="parameter groups to freeze (embeddings atom_conv bond_conv ...)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    add_overwrite(p)
    p.set_defaults(func=finetune)

    p = sub.add_parser(
        "dft-label",
        help="label configurations with DFT (GPAW, PBE+D3 by default): energy, forces, stress",
    )
    p.add_argument("--configs", required=True,
                   help="configurations to label (any file ASE reads, e.g. extended XYZ)")
    p.add_argument("--out", required=True, help="labelled frames to write (extended XYZ)")
    # Unset options take the defaults of the config's `dft.label` (the schema).
    p.add_argument("--calculator", choices=["gpaw", "vasp", "espresso"], help="default gpaw")
    p.add_argument("--xc", help="exchange-correlation functional (default PBE)")
    p.add_argument("--dispersion", choices=["d3bj", "d3zero", "none"], help="default d3bj")
    p.add_argument("--cutoff", type=schema_value("$defs.label.cutoff_eV"),
                   help="plane-wave cutoff in eV (default 400)")
    p.add_argument("--kpts", type=schema_value("$defs.label.kpts[]"), nargs=3,
                   metavar=("KA", "KB", "KC"),
                   help="k-point grid (default 3 3 1)")
    p.add_argument("--smearing", type=schema_value("$defs.label.smearing_eV"),
                   help="Fermi-Dirac width in eV (default 0.05)")
    p.add_argument("--magnetic-moment", action="append", type=element_moment, default=[],
                   metavar="EL=MUB",
                   help="initial moment in muB of element EL (repeatable, e.g. Fe=2.5):"
                        " spin-polarised labels")
    p.add_argument("--work-dir", default="dft-work", help="calculator files (GPAW text logs)")
    p.set_defaults(func=dft_label)

    p = sub.add_parser(
        "dft-collect",
        help="collect labelled frames (finished chunks of a round) into one file to commit",
    )
    p.add_argument("files", nargs="+", help="labelled extended-XYZ files (chunk outputs, ...)")
    p.add_argument("--out", required=True, help="the collected frames (extended XYZ)")
    p.set_defaults(func=dft_collect)


def dft_metrics(args: argparse.Namespace) -> int:
    from dualbench.metrics import run_dft_metrics
    from dualbench.models.device import set_threads

    with output_files(args.out, args.parity_out):  # folders made before, removed on failure
        set_threads(args.threads)
        result = run_dft_metrics(model_argument(args), args.frames, args.out, args.format,
                                 args.device, parity_out=args.parity_out)
    keys = ("n_frames", "n_atoms", "energy_mae_eV_per_atom", "force_mae_eV_per_A",
            "force_slope", "stress_mae_GPa")
    print(json.dumps({k: result[k] for k in keys}, indent=2))
    return 0


def finetune(args: argparse.Namespace) -> int:
    from dualbench.finetune import run_finetune
    from dualbench.models.device import set_threads
    from dualbench.training import FinetuneSettings

    if args.n < 1:
        raise ValueError("--n must be at least 1 (N = 0 is the vanilla model itself)")
    settings = FinetuneSettings(
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        stress_weight=args.stress_weight,
        freeze=list(args.freeze),
        device=args.device,
    )
    # Made, probed and locked before the training, not after it.
    with output_folder(args.out, command_line(args), overwrite=args.overwrite,
                       finished=("model.json", "checkpoint.pth.tar"), outputs=FINETUNE_OUTPUTS):
        set_threads(args.threads)
        path = run_finetune(args.frames, args.n, args.seed, settings, args.out, args.model,
                            pool_format=args.format)
    print(path)
    return 0


def element_moment(text: str) -> tuple[str, float]:
    """``Fe=2.5`` as (element, moment in muB), for ``--magnetic-moment``."""
    from ase.data import chemical_symbols

    element, _, value = text.partition("=")
    try:
        moment = float(value)
    except ValueError:
        moment = float("nan")
    if element not in chemical_symbols[1:] or not math.isfinite(moment):
        raise argparse.ArgumentTypeError(f"{text!r} is not EL=MUB (an element and its moment)")
    return element, moment


def dft_label(args: argparse.Namespace) -> int:
    from ase.io import read

    from dualbench.label import LabelSettings, label_configs

    given = {
        "calculator": args.calculator,
        "xc": args.xc,
        "dispersion": args.dispersion,
        "cutoff_eV": args.cutoff,
        "kpts": args.kpts,
        "smearing_eV": args.smearing,
        "magnetic_moments": dict(args.magnetic_moment) or None,
    }
    settings = LabelSettings.from_config({
        "supercell": [1, 1, 1],  # the configurations are labelled as given
        **{key: value for key, value in given.items() if value is not None},
    })
    configs = read(args.configs, index=":")
    info = label_configs(configs, settings, out=args.out, work_dir=args.work_dir)
    print(json.dumps({k: info[k] for k in ("n_frames", "dft", "seconds_per_frame")}, indent=2))
    return 0


def dft_collect(args: argparse.Namespace) -> int:
    from dualbench.label import collect_labelled

    print(f"{collect_labelled(args.files, args.out)} frames -> {args.out}")
    return 0
