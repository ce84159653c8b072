"""Subcommands of the EXAFS arm: the measured spectrum, the FEFF average, the comparison.

Settings come from the schema defaults, or from a study config's ``exafs``,
``experiment`` and ``ft`` sections with ``--config``; options given on the command line
override both.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from dualbench.cli import positive_int, schema_value
from dualbench.cli.outputs import add_overwrite, command_line, output_files, output_folder

EDGES = ("K", "L1", "L2", "L3")
#: What `experiment` and `exafs-average` write into --out (what a failure removes).
EXPERIMENT_OUTPUTS = ("chi_k.csv", "chi_r.csv", "experiment.json")
AVERAGE_OUTPUTS = ("chi_k.csv", "chi_r.csv", "convergence.csv", "chi_snapshots.npz",
                   "paths.npz", "potentials")
WINDOWS = ("hanning", "kaiser", "gaussian", "sine", "welch", "parzen")


def register(sub: argparse._SubParsersAction) -> None:
    _register_experiment(sub)
    _register_exafs_average(sub)
    _register_compare(sub)


def _register_experiment(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "experiment",
        help="reduce a measured mu(E) (XDI, column ASCII, Athena) to chi(k) and |chi(R)|",
    )
    p.add_argument("--data", required=True, help="spectrum file")
    p.add_argument("--element", required=True, help="absorbing element, e.g. W")
    p.add_argument("--edge", required=True, choices=EDGES, help="absorption edge")
    p.add_argument("--out", required=True, help="folder for chi_k.csv, chi_r.csv")
    p.add_argument("--format", choices=["xdi", "ascii", "athena"],
                   help="file format (default: from the suffix: .xdi, .prj, else ascii)")
    p.add_argument("--mode", choices=["transmission", "fluorescence", "mu"],
                   help="mu(E) = ln(i0/itrans), ifluor/i0, or the mu column (default transmission)")
    for col in ("energy", "i0", "itrans", "ifluor", "mu"):
        p.add_argument(f"--{col}-column", dest=f"col_{col}", metavar="NAME",
                       help=f"name of the {col} column (default {col})")
    p.add_argument("--group", help="Athena project group label (default: the first)")
    p.add_argument("--e0", type=schema_value("experiment.e0_eV"),
                   help="edge energy E0 in eV (default: from the data)")
    p.add_argument("--rbkg", type=schema_value("experiment.rbkg_A"),
                   help="autobk cutoff in Å (default 1.0)")
    add_overwrite(p)
    _add_common(p)
    p.set_defaults(func=experiment)


def _register_exafs_average(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "exafs-average",
        help="configuration-averaged FEFF8L chi(k) of MD snapshots with fixed potentials",
        description="Configuration-averaged chi(k) of MD snapshots.  The fast engine"
        " (default) carries FEFF8L's paths of the ideal crystal to every snapshot; the feff"
        " engine runs FEFF8L on every (snapshot, absorber) cluster.",
    )
    p.add_argument("--snapshots", required=True, help="extended XYZ trajectory (cell, pbc)")
    p.add_argument("--absorber", required=True, help="absorbing element, e.g. W")
    p.add_argument("--edge", required=True, choices=EDGES, help="absorption edge")
    p.add_argument("--out", required=True,
                   help="folder for chi_k.csv (k, chi, chi_stderr), chi_r.csv, convergence.csv")
    p.add_argument("--rmax", type=schema_value("exafs.rmax_A"), help="FEFF RPATH in Å (default 6)")
    p.add_argument("--nleg", type=schema_value("exafs.nleg"),
                   help="FEFF NLEG, most legs per path (default 4)")
    p.add_argument("--cluster-radius", type=schema_value("exafs.cluster_radius_A"),
                   help="cluster radius in Å (default 7)")
    p.add_argument("--shell-margin", type=schema_value("exafs.shell_margin_A"),
                   help="refuse --rmax or --cluster-radius within this many Å of a shell of"
                        " the ideal structure (default 0.1; 0: not checked)")
    p.add_argument("--scf-radius", type=schema_value("exafs.scf_radius_A"),
                   help="FEFF SCF radius in Å (default: no SCF)")
    p.add_argument("--engine", choices=["fast", "feff"],
                   help="fast: FEFF's paths of the ideal crystal carried to each snapshot;"
                        " feff: FEFF on every (snapshot, absorber) (default: fast)")
    p.add_argument("--criteria", type=schema_value("exafs.criteria_pct[]"),
                   nargs=2, metavar=("CW", "PW"),
                   help="FEFF CRITERIA in %% (default: FEFF's 4 2.5)")
    p.add_argument("--n-snapshots", type=schema_value("exafs.snapshots"),
                   help="snapshots used, evenly spaced; 0 = all (default 0)")
    p.add_argument("--absorbers-per-snapshot",
                   type=schema_value("exafs.absorbers_per_snapshot"),
                   help="absorbers per snapshot chosen by --seed; 0 = all (default 0)")
    p.add_argument("--seed", type=schema_value("sweep.seeds[]"), default=0,
                   help="seed of the absorber draw")
    p.add_argument("--potentials", help="folder of fixed potentials computed earlier")
    p.add_argument("--reference",
                   help="ideal structure in the snapshots' atom order: the potentials are"
                        " computed from it (unless --potentials) and the fast engine maps"
                        " its paths onto it (default: potentials from the mean positions of"
                        " the snapshots, lattice from supercell.extxyz beside them)")
    p.add_argument("--allow-periodic-images", action="store_true",
                   help="accept a --cluster-radius beyond the snapshots' inscribed radius"
                        " (exafs.allow_periodic_images): the cluster then holds periodic"
                        " images of the absorber's own neighbours")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="FEFF runs (feff engine) or snapshots (fast engine) at once")
    add_overwrite(p)
    _add_common(p)
    p.set_defaults(func=exafs_average)


def _register_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="score simulated chi(k) against the experiment (E0 shift, S0^2, MSE, R-factor)",
    )
    p.add_argument("--experiment", required=True, help="folder with the experiment's chi_k.csv")
    p.add_argument("--simulation", required=True, action="append",
                   help="folder with a simulated chi_k.csv; repeat for several sharing E0")
    p.add_argument("--out", required=True, help="metrics JSON to write")
    p.add_argument("--s02",
                   help="experiment (the --fit's), fitted (per simulation), or a number"
                        " (default: experiment with --fit, else fitted)")
    p.add_argument("--e0-shift",
                   help="experiment (the --fit's), shared, per_model, or a number in eV"
                        " (default: experiment with --fit, else shared)")
    p.add_argument("--fit", help="the experiment's fit.json (the workflow's"
                        " results/<material>/experiment/fit.json, rule fit_experiment)")
    _add_common(p)
    p.set_defaults(func=compare)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="study config whose exafs/experiment/ft sections to use")
    p.add_argument("--material", help="with --config: the sections as this material uses them"
                   " (its own materials.<name>.exafs/ft keys over the study's)")
    g = p.add_argument_group("Fourier transform (larch xftf)")
    g.add_argument("--kmin", type=schema_value("ft.kmin"), help="k window start, 1/Å (default 3)")
    g.add_argument("--kmax", type=schema_value("ft.kmax"), help="k window end, 1/Å (default 14)")
    g.add_argument("--dk", type=schema_value("ft.dk"), help="window sill, 1/Å (default 1)")
    g.add_argument("--window", choices=WINDOWS, help="window shape (default hanning)")
    g.add_argument("--kweight", type=schema_value("ft.kweight"), help="k-weight w (default 2)")
    g.add_argument("--rmin", type=schema_value("ft.rmin"),
                   help="R range start of the scores, Å (default 1)")
    g.add_argument("--rmax-r", dest="rmax_r", type=schema_value("ft.rmax"),
                   help="R range end of the scores, Å (default 5)")


def _sections(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The exafs, experiment and ft sections: --config or the schema defaults."""
    from dualbench.schema import material_section, section_defaults

    names = ("exafs", "experiment", "ft")
    if args.config:
        from dualbench.config import load_config

        config = load_config(args.config)
        material = _material(config, getattr(args, "material", None))
        if material is None:
            return {name: dict(config[name]) for name in names}
        return {"experiment": dict(config["experiment"]),
                "exafs": material_section(config, material, "exafs"),
                "ft": material_section(config, material, "ft")}
    if getattr(args, "material", None):
        raise ValueError("--material needs --config")
    return {name: section_defaults(name) for name in names}


def _material(config: dict[str, Any], material: str | None) -> str | None:
    """The material whose sections --config gives: --material, else the only material that
    gives its own (refused when several do and none is named)."""
    if material is not None:
        if material not in config["materials"]:
            raise ValueError(f"--material {material!r} is not among the config's materials"
                             f" ({', '.join(config['materials'])})")
        return material
    own = [name for name, m in config["materials"].items()
           if any(m.get(section) for section in ("exafs", "ft"))]
    if not own:
        return None
    if len(config["materials"]) == 1:
        return own[0]
    raise ValueError(f"materials {', '.join(own)} give their own exafs/ft keys: name the"
                     " material with --material")


def _ft(args: argparse.Namespace, sections: dict[str, dict[str, Any]]):
    """The ft section with the options' overrides (FTSettings checks its ranges)."""
    from dualbench.exafs import FTSettings

    ft = dict(sections["ft"])
    overrides = {"kmin": args.kmin, "kmax": args.kmax, "dk": args.dk, "window": args.window,
                 "kweight": args.kweight, "rmin": args.rmin, "rmax": args.rmax_r}
    ft.update({k: v for k, v in overrides.items() if v is not None})
    return FTSettings.from_config(ft)


def experiment(args: argparse.Namespace) -> int:
    from dualbench.scoring.measured import ColumnSpec, ReductionSettings, process_experiment

    sections = _sections(args)
    columns = {name: getattr(args, f"col_{name}")
               for name in ("energy", "i0", "itrans", "ifluor", "mu")}
    columns["mode"] = args.mode
    reduction = dict(sections["experiment"])
    if args.e0 is not None:
        reduction["e0_eV"] = args.e0
    if args.rbkg is not None:
        reduction["rbkg_A"] = args.rbkg
    column_spec = ColumnSpec.from_config(columns)
    settings = ReductionSettings.from_config(reduction)
    ft = _ft(args, sections)
    with output_folder(args.out, command_line(args), overwrite=args.overwrite,
                       finished=EXPERIMENT_OUTPUTS, outputs=EXPERIMENT_OUTPUTS):
        result = process_experiment(args.data, args.element, args.edge, args.out,
                                    fmt=args.format, columns=column_spec, settings=settings,
                                    ft=ft, group=args.group)
    print(json.dumps({"e0_eV": result.e0_eV, "edge_step": result.edge_step,
                      "kmax_data": result.info["kmax_data"],
                      "chir_mag_max": float(result.chir_mag.max()), "out": args.out}, indent=2))
    return 0


def exafs_average(args: argparse.Namespace) -> int:
    from dualbench.exafs import ExafsSettings, average_snapshots

    sections = _sections(args)
    exafs = dict(sections["exafs"])
    overrides = {"rmax_A": args.rmax, "nleg": args.nleg, "cluster_radius_A": args.cluster_radius,
                 "scf_radius_A": args.scf_radius, "snapshots": args.n_snapshots,
                 "absorbers_per_snapshot": args.absorbers_per_snapshot,
                 "engine": args.engine, "criteria_pct": args.criteria,
                 "allow_periodic_images": args.allow_periodic_images or None,
                 "shell_margin_A": args.shell_margin}
    exafs.update({k: v for k, v in overrides.items() if v is not None})
    settings, ft = ExafsSettings.from_config(exafs, args.edge), _ft(args, sections)
    # A failed FEFF run's work folder (.feff-*) stays: the error names it.
    with output_folder(args.out, command_line(args), overwrite=args.overwrite,
                       finished=("chi_k.csv",), outputs=AVERAGE_OUTPUTS, keep=(".feff-*",)):
        avg = average_snapshots(
            args.snapshots,
            args.absorber,
            settings,
            ft,
            args.out,
            seed=args.seed,
            potentials_dir=args.potentials,
            reference_file=args.reference,
            workers=args.workers,
        )
    print(json.dumps({"engine": settings.engine, "n_snapshots": avg.n_snapshots,
                      "n_spectra": avg.n_spectra, "out": args.out}, indent=2))
    return 0


def _number_or(value: str | None, words: tuple[str, ...], option: str) -> str | float | None:
    if value is None or value in words:
        return value
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{option} {value!r} is not {', '.join(words)} or a number") from None


def compare(args: argparse.Namespace) -> int:
    from dualbench.scoring.against_experiment import compare_dirs

    sections = _sections(args)
    # Defaults: the config's (schema: experiment), which need --fit; without it, S0^2
    # fitted per simulation and one shared E0 shift.
    s02 = _number_or(args.s02, ("experiment", "fitted"), "--s02")
    e0_shift = _number_or(args.e0_shift, ("experiment", "shared", "per_model"), "--e0-shift")
    if s02 is None:
        s02 = sections["exafs"].get("s02") or "fitted"
        s02 = "fitted" if s02 == "experiment" and not args.fit else s02
    if e0_shift is None:
        e0_shift = sections["exafs"].get("e0_shift", "shared")
        e0_shift = "shared" if e0_shift == "experiment" and not args.fit else e0_shift
    ft = _ft(args, sections)
    with output_files(args.out):  # its folder made and probed first, removed on failure
        results = compare_dirs(args.experiment, args.simulation, args.out, ft, s02=s02,
                               e0_shift=e0_shift, experiment_fit=args.fit)
    print(json.dumps([{"simulation": r.label, **r.metrics()} for r in results], indent=2))
    return 0
