"""Cost and accuracy of the two EXAFS engines on the same (snapshot, absorber) pairs.

In one run, with the same fixed potentials:

* ``feff``: FEFF8L rdinp, pathfinder, genfmt and ff2x on every pair's cluster;
* ``fast``: FEFF's paths of the ideal crystal carried to every pair (its one-off cost,
  the path table, is printed separately), on the same pairs and, for its throughput when
  averaging everything, on every absorber of the same snapshots;

and prints seconds per snapshot-absorber of both, their ratio, the R-factor between the
two averages (k^2 chi, k 3-14 1/Å) and, for the first pair, the largest error of a single
path instance of the fast engine against genfmt on that instance's own geometry.

Snapshots: an MD trajectory (``--snapshots-file``, with the MD's ``supercell.extxyz``
beside it or ``--reference``), or bcc W (a = 3.1652 Å, 4x4x4) with independent Gaussian
displacements of ``--sigma`` Å per component.  Both engines keep every path up to RPATH
and NLEG (``--criteria 0 0``) unless told otherwise, so that they compute the same sum.

    python benchmarks/exafs_cost.py                                  # W L3, NLEG 4, RPATH 6
    python benchmarks/exafs_cost.py --snapshots-file results/W/chgnet/n0/seed0/md/snapshots.extxyz
    python benchmarks/exafs_cost.py --snapshots-file WS2/snapshots.extxyz --absorber W \\
        --rmax 5.3 --cluster-radius 6.1
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshots", type=int, default=4, help="number of snapshots")
    parser.add_argument("--absorbers", type=int, default=3, help="absorbers per snapshot")
    parser.add_argument("--cluster-radius", type=float, default=6.2,
                        help="Å (bcc W: between the 5.48 and 6.33 Å shells)")
    parser.add_argument("--rmax", type=float, default=6.0, help="FEFF RPATH, Å")
    parser.add_argument("--nleg", type=int, default=4, help="FEFF NLEG")
    parser.add_argument("--criteria", type=float, nargs=2, default=(0.0, 0.0),
                        metavar=("CW", "PW"), help="FEFF CRITERIA in %% (default 0 0)")
    parser.add_argument("--sigma", type=float, default=0.05, help="W displacement, Å")
    parser.add_argument("--snapshots-file", help="extended XYZ MD snapshots instead of W")
    parser.add_argument("--reference", help="ideal supercell (default: supercell.extxyz"
                        " beside the snapshots)")
    parser.add_argument("--absorber", default="W")
    parser.add_argument("--edge", default="L3")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from dualbench.exafs import FeffSettings, compute_potentials, feff_executable

    feff_executable("pot")  # imports larch before any timing
    reference, frames = _inputs(args)
    settings = FeffSettings(
        edge=args.edge, rmax_A=args.rmax, nleg=args.nleg,
        cluster_radius_A=args.cluster_radius, criteria_pct=tuple(args.criteria),
    )
    print(
        f"{len(frames)} snapshots x {args.absorbers} absorbers, {args.absorber} {args.edge},"
        f" cluster {args.cluster_radius} Å, RPATH {args.rmax} Å, NLEG {args.nleg},"
        f" CRITERIA {args.criteria[0]:g} {args.criteria[1]:g}"
    )
    with tempfile.TemporaryDirectory(prefix="exafs_cost_") as tmp:
        start = time.perf_counter()
        potentials = compute_potentials(
            reference, args.absorber, settings, f"{tmp}/potentials", work_root=tmp
        )
        t_pot = time.perf_counter() - start
        _report(args, settings, potentials, reference, frames, tmp, t_pot)
    return 0


def _inputs(args):
    from ase.build import bulk
    from ase.io import read

    from dualbench.md.snapshots import read_snapshots

    if args.snapshots_file:
        frames = read_snapshots(args.snapshots_file)
        step = max(1, len(frames) // args.snapshots)
        frames = frames[::step][: args.snapshots]
        ref_file = args.reference or Path(args.snapshots_file).parent / "supercell.extxyz"
        return read(ref_file), frames
    reference = bulk("W", "bcc", a=3.1652, cubic=True).repeat((4, 4, 4))
    rng = np.random.default_rng(args.seed)
    frames = []
    for _ in range(args.snapshots):
        atoms = reference.copy()
        atoms.positions += rng.normal(0.0, args.sigma, size=(len(atoms), 3))
        frames.append(atoms)
    return reference, frames


def _report(args, settings, potentials, reference, frames, tmp, t_pot) -> None:
    from dualbench.exafs import (
        K_GRID,
        average_spectra,
        build_path_table,
        chunk_fast,
        chunk_feff,
    )

    start = time.perf_counter()
    table = build_path_table(reference, potentials, settings, work_root=tmp)
    t_table = time.perf_counter() - start
    snapshot_map = dict(enumerate(frames))
    start = time.perf_counter()
    feff = chunk_feff(snapshot_map, potentials, settings, absorbers_per_snapshot=args.absorbers,
                      seed=args.seed, work_root=tmp)
    per_feff = (time.perf_counter() - start) / len(feff.frame_index)
    start = time.perf_counter()
    fast = chunk_fast(snapshot_map, table, absorbers_per_snapshot=args.absorbers,
                      seed=args.seed)
    per_fast = (time.perf_counter() - start) / fast.weights().sum()
    start = time.perf_counter()
    every = chunk_fast(snapshot_map, table, absorbers_per_snapshot=0, seed=args.seed)
    per_every = (time.perf_counter() - start) / every.weights().sum()

    avg_feff = average_spectra(feff.chi, feff.frame_index)
    avg_fast = average_spectra(fast.chi, fast.frame_index, weights=fast.weights())
    inside = (K_GRID >= 3.0) & (K_GRID <= 14.0)
    w = K_GRID**2
    rfactor = np.sum(((avg_fast.chi - avg_feff.chi) * w)[inside] ** 2) / np.sum(
        (avg_feff.chi * w)[inside] ** 2
    )
    worst, where = _largest_path_error(
        table, frames[0], int(feff.absorber_index[0]), potentials, tmp,
        np.abs(feff.chi[0][inside]).max(),
    )
    print(f"paths {len(table.reff)}, instances {table.n_instances}"
          f" ({table.n_instances / len(table.absorbers):.0f} per absorber)")
    rows = [
        ("fixed potentials (once)", f"{t_pot:9.2f} s"),
        ("fast engine's path table (once)", f"{t_table:9.2f} s"),
        ("feff engine", f"{per_feff * 1e3:9.2f} ms per snapshot-absorber"),
        ("fast engine, same pairs", f"{per_fast * 1e3:9.2f} ms per snapshot-absorber"),
        ("fast engine, every absorber", f"{per_every * 1e3:9.2f} ms per snapshot-absorber"),
        ("ratio feff / fast (same pairs)", f"{per_feff / per_fast:9.1f}"),
        ("ratio feff / fast (every absorber)", f"{per_feff / per_every:9.1f}"),
    ]
    for label, value in rows:
        print(f"{label + ':':40s} {value}")
    print(f"R-factor of the averages, fast vs feff ({len(feff.frame_index)} pairs,"
          f" k^2, k 3-14): {rfactor:.2e}")
    print(f"largest single-path error (first pair, k 3-14): {worst[0]:.2e} of the pair's"
          f" max |chi| ({where[0]}); {worst[1]:.2e} of the path's own ({where[1]})"
          )


def _largest_path_error(table, atoms, absorber, potentials, tmp, scale):
    """Each path instance around ``absorber``: the fast engine's chi against genfmt on the
    instance's own geometry.  The largest error relative to ``scale`` (the pair's max
    |chi|) and relative to the path's own max |chi|, each with the path it is on."""
    from dualbench.exafs import K_GRID
    from dualbench.exafs.engine_fast import _path_sum, site_positions
    from dualbench.exafs.path_geometry_response import K_COARSE, half_length, path_arrays_on_grid
    from dualbench.exafs.single_path import run_single_paths

    folder = Path(tmp) / "single_path"
    folder.mkdir()
    shutil.copyfile(potentials.folder / "phase.pad", folder / "phase.pad")
    frac, cell = site_positions(table, atoms, 0)
    ipot = np.array([0] * 200)
    for symbol, ip in potentials.ipots.items():
        from ase.data import atomic_numbers

        ipot[atomic_numbers[symbol]] = ip
    inside = (K_COARSE >= 3.0) & (K_COARSE <= 14.0)
    worst, where = [0.0, 0.0], ["", ""]
    for atoms_i, shifts, path in table.instances.values():
        mine = atoms_i[:, 0] == absorber
        pos = (frac[atoms_i[mine]] + shifts[mine]) @ cell
        pos -= pos[:, :1]
        r = half_length(pos)
        keep = r <= float(table.meta["rmax_A"])
        pos, r, which, owners = pos[keep], r[keep], path[mine][keep], atoms_i[mine][keep]
        scatterers = [
            [[*v, 0 if o == absorber else ipot[table.numbers[o]]] for v, o in zip(p[1:], own[1:],
                                                                                   strict=True)]
            for p, own in zip(pos, owners, strict=True)
        ]
        exact, _ = path_arrays_on_grid(run_single_paths(folder, scatterers), K_COARSE)
        base = np.array([np.interp(K_COARSE, K_GRID, table.base[q].real)
                         + 1j * np.interp(K_COARSE, K_GRID, table.base[q].imag) for q in which])
        for i, q in enumerate(which):
            model = (base[i] * _path_sum(table, int(q), pos[i : i + 1], r[i : i + 1])).imag
            diff = np.abs(model - exact[i].imag)[inside].max()
            for n, err in enumerate((diff / scale, diff / np.abs(exact[i].imag[inside]).max())):
                if err > worst[n]:
                    worst[n] = float(err)
                    where[n] = f"{table.nleg[q]} legs, reff {table.reff[q]:.3f} Å"
    return worst, where


if __name__ == "__main__":
    raise SystemExit(main())
