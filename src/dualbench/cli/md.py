"""Subcommands of the MD arm: NVT or NPT molecular dynamics and its diagnostics."""

from __future__ import annotations

import argparse

from dualbench.cli import TRUST_ASE_HELP, model_argument, positive_int, schema_value
from dualbench.cli.outputs import add_overwrite, command_line, output_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "md",
        help="NVT or NPT MD of a supercell with a model; writes snapshots.extxyz and md_log.csv",
        description=(
            "NVT molecular dynamics (Langevin or Bussi) from a Maxwell-Boltzmann start at the"
            " target temperature, at the structure's cell; or, with --ensemble npt, NPT"
            " (Langevin atoms, Langevin-Hoover barostat, the cell's shape kept) at --pressure,"
            " where the volume finds the model's own lattice. An interrupted run started"
            " again with the same arguments continues from OUT/md_checkpoint.npz. A folder"
            " in use by another run is refused, and so are a finished run's folder and an"
            " unfinished run's checkpoint of other arguments, unless --overwrite. With"
            " --nuclei pimd, path-integral MD with i-PI (--beads P, or the bead rule from"
            " --max-phonon): every bead of a kept step is a snapshot; OUT/ipi holds i-PI's"
            " checkpoint until the run ends. Options"
            " left out take the defaults of the config schema's md section."
        ),
    )
    p.add_argument(
        "--model", required=True,
        help="chgnet[:0.2.0|:r2scan], sevennet[:NAME], matgl[:NAME], a model.json or a checkpoint",
    )
    p.add_argument("--trust-ase-model", action="store_true", help=TRUST_ASE_HELP)
    p.add_argument("--structure", required=True, help="unit cell file (cif, POSCAR, extxyz, ...)")
    p.add_argument(
        "--supercell", type=schema_value("$defs.material.supercell[]"), nargs=3,
        default=[1, 1, 1], metavar=("A", "B", "C"),
        help="repetitions of the structure's cell (default 1 1 1)",
    )
    p.add_argument("--temperature", type=schema_value("$defs.material.temperature_K"),
                   required=True, help="target temperature in K")
    p.add_argument("--steps", type=schema_value("md.production_steps"), help="production steps")
    p.add_argument("--equilibration-steps", type=schema_value("md.equilibration_steps"),
                   help="steps before production")
    p.add_argument("--timestep", type=schema_value("md.timestep_fs"), help="time step in fs")
    p.add_argument("--snapshot-every", type=schema_value("md.snapshot_every"),
                   help="production steps between snapshots")
    p.add_argument("--thermostat", choices=["langevin", "bussi"])
    p.add_argument("--ensemble", choices=["nvt", "npt"],
                   help="nvt (default): the structure's cell; npt: the volume varies")
    p.add_argument("--pressure", type=schema_value("md.pressure_GPa"),
                   help="npt: external pressure in GPa (default 0; ambient is 1e-4)")
    p.add_argument("--barostat-time", type=schema_value("md.barostat_time_fs"),
                   help="npt: barostat time constant in fs")
    p.add_argument("--nuclei", choices=["classical", "pimd"],
                   help="classical (default), or pimd: path-integral MD with i-PI (NVT, PILE-L)")
    p.add_argument("--beads", type=schema_value("md.beads"),
                   help="pimd: beads P (default: the bead rule, from --max-phonon)")
    p.add_argument("--max-phonon", type=schema_value("md.max_phonon_THz"),
                   help="pimd: highest phonon frequency in THz, for the bead rule")
    p.add_argument("--pimd-tau", type=schema_value("md.pimd_tau_fs"),
                   help="pimd: PILE-L centroid time constant in fs")
    p.add_argument("--friction", type=schema_value("md.friction_per_fs"),
                   help="Langevin friction in 1/fs")
    p.add_argument("--taut", type=schema_value("md.taut_fs"), help="Bussi time constant in fs")
    p.add_argument("--checkpoint-every", type=schema_value("md.checkpoint_every"),
                   help="steps between restart checkpoints")
    p.add_argument("--min-distance", type=schema_value("md.min_distance_A"),
                   help="closest allowed distance in Å")
    p.add_argument("--max-temperature-factor", type=schema_value("md.max_temperature_factor"),
                   help="stop when T exceeds this x the target")
    p.add_argument("--on-unstable", choices=["stop", "record"], default="stop",
                   help="a guard's stop: fail (stop, the default here) or write the run's"
                        " outputs with status unstable in md_run.json (record, the"
                        " workflow's default)")
    p.add_argument("--seed", type=schema_value("sweep.seeds[]"), default=0,
                   help="seed of velocities and thermostat")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: auto")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    p.add_argument("--out", required=True, help="output folder")
    add_overwrite(p)
    p.set_defaults(func=md)

    p = sub.add_parser(
        "md-diagnostics",
        help="temperature statistics, g(r) and shell sigma^2 of MD snapshots",
        description=(
            "Writes OUT/rdf.csv, OUT/sigma2.csv (per absorber-neighbour shell: sigma^2 in Å^2,"
            " the EXAFS Debye-Waller quantity) and OUT/diagnostics.json."
        ),
    )
    p.add_argument("--snapshots", required=True, help="snapshots.extxyz of dualbench md")
    p.add_argument(
        "--reference", required=True,
        help="the ideal supercell in the snapshots' atom order (supercell.extxyz of dualbench md)",
    )
    p.add_argument("--absorber", required=True, help="element of the X-ray absorber")
    p.add_argument("--temperature", type=schema_value("$defs.material.temperature_K"),
                   required=True, help="target temperature in K")
    p.add_argument("--log", help="md_log.csv for the temperature (and NPT pressure) statistics")
    p.add_argument(
        "--supercell", type=int, nargs=3, metavar=("A", "B", "C"),
        help="repetitions of the unit cell, for the lattice parameter (default: md_run.json"
        " beside --log)",
    )
    p.add_argument("--cutoff", type=float, default=6.0, help="shell cutoff in Å (default 6)")
    p.add_argument(
        "--shell-tol", type=float, default=0.1, help="shell grouping tolerance in Å (0.1)"
    )
    p.add_argument("--rdf-bin", type=float, default=0.02, help="g(r) bin width in Å (0.02)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=md_diagnostics)


def md(args: argparse.Namespace) -> int:
    from dualbench.md.checkpoint import CHECKPOINT_FILE
    from dualbench.md.driver import FAILURE_FILE, LOG_FILE, RUN_INFO_FILE, run_md_job
    from dualbench.md.settings import md_settings
    from dualbench.md.snapshots import SNAPSHOTS_FILE, SUPERCELL_FILE

    settings = md_settings(
        {},
        temperature_K=args.temperature,
        seed=args.seed,
        production_steps=args.steps,
        equilibration_steps=args.equilibration_steps,
        timestep_fs=args.timestep,
        snapshot_every=args.snapshot_every,
        thermostat=args.thermostat,
        ensemble=args.ensemble,
        pressure_GPa=args.pressure,
        barostat_time_fs=args.barostat_time,
        friction_per_fs=args.friction,
        taut_fs=args.taut,
        checkpoint_every=args.checkpoint_every,
        min_distance_A=args.min_distance,
        max_temperature_factor=args.max_temperature_factor,
        device=args.device,
        nuclei=args.nuclei,
        beads=args.beads,
        max_phonon_THz=args.max_phonon,
        pimd_tau_fs=args.pimd_tau,
        on_unstable=args.on_unstable,
    )
    from dualbench.md.pimd import CENTROIDS_FILE, IPI_DIR
    from dualbench.structure import read_structure_file

    # Made, probed and locked before the MD; its checkpoint (continued by a rerun with
    # the same arguments) and a guard failure stay when the run fails.
    with output_folder(
        args.out, command_line(args), overwrite=args.overwrite,
        finished=(SNAPSHOTS_FILE, RUN_INFO_FILE),
        outputs=(SNAPSHOTS_FILE, LOG_FILE, SUPERCELL_FILE, RUN_INFO_FILE, CENTROIDS_FILE),
        keep=(CHECKPOINT_FILE, FAILURE_FILE, IPI_DIR),
    ):
        unit = read_structure_file(args.structure)
        unit.pbc = True
        result = run_md_job(
            model=model_argument(args),
            unit_cell=unit,
            supercell=args.supercell,
            settings=settings,
            out_dir=args.out,
            threads=args.threads,
            refuse_other_checkpoint=not args.overwrite,
        )
    if result.failure is not None:
        from dualbench.runstatus import RunFailure

        print(f"{RunFailure.from_dict(result.failure).text()}; recorded in {result.out_dir}")
        return 0
    rate = f", {result.steps_per_s:.2f} steps/s" if result.steps_per_s else ""
    print(f"{result.n_snapshots} snapshots, {result.n_log_rows} log rows in {result.out_dir}{rate}")
    return 0


def md_diagnostics(args: argparse.Namespace) -> int:
    from dualbench.diagnostics import md_diagnostics as run

    result = run(
        args.snapshots,
        args.reference,
        args.absorber,
        args.temperature,
        args.out,
        md_log=args.log,
        supercell=args.supercell,
        cutoff_A=args.cutoff,
        shell_tol_A=args.shell_tol,
        rdf_bin_A=args.rdf_bin,
    )
    if result.get("status") == "unstable":
        from dualbench.runstatus import RunFailure

        print(f"no diagnostics: {RunFailure.from_dict(result['failure']).text()}")
        return 0
    first = result["first_shell"]
    print(
        f"T = {result['mean_T_K']:.1f} +- {result['std_T_K']:.1f} K"
        f" (canonical spread {result['expected_std_T_K']:.1f} K)"
        + (f"; first shell sigma^2 = {first['sigma2_A2']:.5f} Å^2" if first else "")
    )
    if result["mean_pressure_GPa"] is not None:
        print(f"P = {result['mean_pressure_GPa']:.3f} GPa ({result['pressure_source']})")
    lattice, sem = result["mean_lattice_parameter_A"], result["sem_lattice_parameter_A"]
    if lattice is not None:
        print(f"a = {lattice:.5f} Å" + (f" +- {sem:.5f} Å" if sem is not None else ""))
    return 0
