"""Throughput of the MD driver against bare model calls on the same bcc W cells, for
every model kind.

    python benchmarks/md_throughput.py                      # every kind; 54, 128, 250 atoms
    python benchmarks/md_throughput.py --models chgnet sevennet --sizes 128 --steps 20
    python benchmarks/md_throughput.py --models chgnet --sizes 128 --beads 4 8   # + PIMD

For each model and size it runs ``dualbench.md.driver.run_md`` (Langevin, every guard on, one
checkpoint) and times the same number of bare calculator calls (energy, forces, stress) on
the same cell, then prints atom-steps per second of both, the driver's overhead (time per
driver step / time per bare call; 1.0 means the driver costs nothing beyond the model)
and the driver's speed relative to the first model of the run at the same size.  The
default models cover every kind: CHGNet 0.3.0 and r2scan, SevenNet-0, and ASE's
Lennard-Jones as ``kind: ase`` (``ase-lj``; a cheap stand-in for a user's calculator).

With ``--beads P ...`` each model and size also runs path-integral MD with i-PI
(:func:`dualbench.md.pimd.run_pimd`, PILE-L, P beads) on the same cell, and prints its
atom-bead-steps per second, its cost per step against the classical driver's of the same
run (ideally P), and the i-PI overhead (time per PIMD step / P bare calls).
Not run in CI.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings

import numpy as np
from ase.build import bulk

from dualbench.md.calculator import make_quiet_calculator
from dualbench.md.driver import run_md
from dualbench.md.settings import md_settings
from dualbench.models.device import resolve_device, set_threads
from dualbench.models.spec import ModelSpec

A_W = 3.1652  # Å


def w_supercell(n_atoms: int):
    """bcc W with ``n_atoms`` = 2 n^3 atoms (the 2-atom cubic cell repeated n times)."""
    n = round((n_atoms / 2) ** (1 / 3))
    if 2 * n**3 != n_atoms:
        raise SystemExit(f"{n_atoms} atoms is not 2 n^3 (bcc cubic cells): try 16, 54, 128, 250")
    return bulk("W", "bcc", a=A_W, cubic=True).repeat(n)


#: ``kind: ase`` as a model argument: ASE's Lennard-Jones with W-like parameters.
ASE_LJ = ModelSpec(kind="ase", weights="", calculator="ase.calculators.lj:LennardJones",
                   options={"sigma": 2.5, "epsilon": 0.3, "rc": 5.0})
DEFAULT_MODELS = ["chgnet", "chgnet:r2scan", "sevennet", "ase-lj"]


def bare_seconds_per_call(calc, atoms, calls: int, seed: int = 0) -> float:
    """Mean wall time of one calculator call on slightly perturbed copies of ``atoms``."""
    rng = np.random.default_rng(seed)
    atoms = atoms.copy()
    atoms.calc = calc
    atoms.get_forces()  # warm-up
    start = time.perf_counter()
    for _ in range(calls):
        atoms.positions += rng.normal(0.0, 0.01, atoms.positions.shape)
        atoms.get_forces()
    return (time.perf_counter() - start) / calls


def pimd_row(model: str, atoms, calc, classical, beads: int, classical_steps_per_s: float,
             bare_s: float) -> None:
    """Run PIMD with ``beads`` beads on ``atoms`` (the classical run's settings otherwise)
    and print its throughput against the classical run's."""
    from dataclasses import replace

    from dualbench.md.pimd import run_pimd

    settings = replace(classical, nuclei="pimd", beads=beads)
    with tempfile.TemporaryDirectory(prefix="md_throughput.pimd.") as out:
        result = run_pimd(atoms, calc, settings, out)
    n_atoms = len(atoms)
    print(
        f"{model + f' P={beads}':>14} {n_atoms:>6} {n_atoms * beads * result.steps_per_s:>20.1f}"
        f" atom-bead-steps/s; a step costs {classical_steps_per_s / result.steps_per_s:.2f}"
        f" classical steps (ideal {beads}); i-PI overhead"
        f" {1.0 / result.steps_per_s / (beads * bare_s):.2f}x"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[54, 128, 250], help="atoms")
    parser.add_argument("--steps", type=int, default=5, help="MD steps and bare calls per size")
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS,
                        help="MODELs as for dualbench md, or ase-lj (kind ase)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--beads", type=int, nargs="*", default=[],
                        help="also run PIMD (i-PI) with these bead counts")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
    warnings.filterwarnings("ignore", message="No tensor product accelerator")

    set_threads(args.threads)
    device = resolve_device(args.device)
    print(f"{args.steps} steps per size on {device}, {args.threads or 'default'} threads")
    print(f"{'model':>14} {'atoms':>6} {'driver atom-steps/s':>20} {'bare atom-steps/s':>18}"
          f" {'overhead':>9} {'vs first':>9}")
    first: dict[int, float] = {}
    for model in args.models:
        calc = make_quiet_calculator(ASE_LJ if model == "ase-lj" else model, device)
        for n_atoms in args.sizes:
            atoms = w_supercell(n_atoms)
            settings = md_settings(
                {},
                temperature_K=300.0,
                seed=0,
                equilibration_steps=0,
                production_steps=args.steps,
                snapshot_every=args.steps,
                checkpoint_every=args.steps,
                device=device,
            )
            bare = bare_seconds_per_call(calc, atoms, args.steps)
            with tempfile.TemporaryDirectory(prefix="md_throughput.") as out:
                result = run_md(atoms, calc, settings, out)
            speed = n_atoms * result.steps_per_s
            first.setdefault(n_atoms, speed)
            print(
                f"{model:>14} {n_atoms:>6} {speed:>20.1f} {n_atoms / bare:>18.1f}"
                f" {1.0 / result.steps_per_s / bare:>8.2f}x {speed / first[n_atoms]:>8.2f}x"
            )
            for beads in args.beads:
                pimd_row(model, atoms, calc, settings, beads, result.steps_per_s, bare)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
