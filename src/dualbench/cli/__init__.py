"""The ``dualbench`` command line: one subcommand per stage of the study.

Each module of this package registers its subcommands with ``register(subparsers)``
and imports the heavy stage code (torch, CHGNet, larch) only when its command runs,
so ``dualbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from dualbench import __version__

#: Modules of this package that add subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = ("data", "dft", "md", "exafs", "plots")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dualbench",
        description=(
            "Benchmark universal ML interatomic potentials against DFT forces and "
            "experimental EXAFS spectra."
        ),
    )
    parser.add_argument("--version", action="version", version=f"dualbench {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"dualbench.cli.{name}").register(sub)
    return parser


def _schema_property(path: str) -> dict:
    """The schema of a config key: ``md.timestep_fs``, ``$defs.material.temperature_K``;
    an array's items for ``sweep.seeds[]``."""
    from dualbench.schema import load_schema

    schema = load_schema()
    node: dict = schema
    items = path.endswith("[]")
    parts = path.removesuffix("[]").split(".")
    if parts[0] == "$defs":
        node, parts = schema["$defs"][parts[1]], parts[2:]
    for part in parts:
        node = node["properties"][part]
    # X-or-null keys (oneOf): the branch of the wanted type holds the type and bounds
    wanted = ("array",) if items else ("number", "integer")
    node = next((b for b in node.get("oneOf", []) if b.get("type") in wanted), node)
    return node["items"] if items else node


def _display(path: str) -> str:
    """A schema path as the config key a user writes."""
    path = path.removesuffix("[]")
    path = path.replace("$defs.label.", "materials.<name>.dft.label.")
    return path.replace("$defs.material.", "materials.<name>.")


def schema_value(path: str):
    """An argparse ``type`` that applies the config schema's type and bounds of ``path``
    (see :func:`_schema_property`), and refuses NaN and infinity, so that the command line
    accepts what a config file accepts and nothing else."""

    def convert(text: str):
        import math

        spec = _schema_property(path)
        json_type = spec.get("type", "number")
        try:
            value = int(text) if json_type == "integer" else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an {json_type}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        bounds = [
            ("minimum", lambda v, b: v >= b, ">="),
            ("exclusiveMinimum", lambda v, b: v > b, ">"),
            ("maximum", lambda v, b: v <= b, "<="),
            ("exclusiveMaximum", lambda v, b: v < b, "<"),
        ]
        for key, ok, sign in bounds:
            if key in spec and not ok(value, spec[key]):
                raise argparse.ArgumentTypeError(
                    f"{text} is out of range: must be {sign} {spec[key]} (as config key"
                    f" {_display(path)})"
                )
        return value

    convert.__name__ = path  # argparse names the type in some messages
    return convert


#: Help of ``--trust-ase-model`` (``md``, ``dft-metrics``).
TRUST_ASE_HELP = (
    "read a --model model.json of kind ase: its calculator is a Python import path that is"
    " imported and called, so give this only for a file you trust as code (without it, a"
    " model file is data and kind ase in it is refused)"
)


def model_argument(args: argparse.Namespace):
    """``--model`` as the stage code takes it: the text itself (a model file is then read
    as data), or with ``--trust-ase-model`` the spec read with its calculator trusted."""
    if not getattr(args, "trust_ase_model", False):
        return args.model
    from dualbench.models.resolve import parse_model_arg

    return parse_model_arg(args.model, trust_calculator=True)


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer of at least 1 (workers, threads)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is out of range: must be >= 1")
    return value


def setup_logging(verbosity: int = 1) -> None:
    """Log to stderr (Snakemake scripts redirect stderr to the rule's log file)."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in output locks
    if args.command is None:
        parser.print_help()
        return 0
    setup_logging(1 + args.verbose)
    try:
        return int(args.func(args) or 0)
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        # Known failure modes carry a message naming the file and field: show it plainly.
        logging.getLogger("dualbench").debug("traceback", exc_info=True)
        print(f"dualbench {args.command}: error: {err}", file=sys.stderr)
        return 2
