"""Cost of the configuration-averaged EXAFS: fixed potentials against full FEFF runs.

On the same (snapshot, absorber) pairs, in the same run, times

* the averaging as the workflow does it (``dualbench.exafs.compute_chunk``: rdinp,
  pathfinder, genfmt, ff2x per pair with potentials computed once beforehand), and
* a full, independent FEFF8L run per pair (rdinp, pot, xsph, pathfinder, genfmt, ff2x:
  potentials recomputed every time),

and prints seconds per snapshot-absorber of both, and their ratio.  The one-off cost of
the fixed potentials is printed separately.  The snapshots are rattled bcc W (a = 3.1652 Å)
unless ``--snapshots-file`` is given.  One FEFF run at a time.

    python benchmarks/exafs_cost.py                      # 3 snapshots x 2 absorbers, W L3
    python benchmarks/exafs_cost.py --nleg 2 --rmax 4.5 --cluster-radius 5
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshots", type=int, default=3, help="number of snapshots")
    parser.add_argument("--absorbers", type=int, default=2, help="absorbers per snapshot")
    parser.add_argument("--cluster-radius", type=float, default=7.0, help="Å")
    parser.add_argument("--rmax", type=float, default=6.0, help="FEFF RPATH, Å")
    parser.add_argument("--nleg", type=int, default=4, help="FEFF NLEG")
    parser.add_argument("--scf-radius", type=float, default=None, help="FEFF SCF radius, Å")
    parser.add_argument("--supercell", type=int, default=3, help="bcc W cubic cells per edge")
    parser.add_argument("--rattle", type=float, default=0.06, help="displacement std, Å")
    parser.add_argument("--snapshots-file", help="extended XYZ snapshots instead of W")
    parser.add_argument("--absorber", default="W")
    parser.add_argument("--edge", default="L3")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from ase.build import bulk

    from dualbench.exafs import (
        FeffSettings,
        FTSettings,
        chi_full_feff,
        compute_chunk,
        compute_potentials,
        cut_cluster,
        feff_executable,
        fourier_transform,
        select_absorbers,
    )
    from dualbench.md import read_snapshots

    feff_executable("pot")  # imports larch before any timing

    if args.snapshots_file:
        frames = read_snapshots(args.snapshots_file)[: args.snapshots]
        reference = frames[0]
    else:
        reference = bulk("W", "bcc", a=3.1652, cubic=True).repeat((args.supercell,) * 3)
        frames = []
        for i in range(args.snapshots):
            atoms = reference.copy()
            atoms.rattle(args.rattle, seed=args.seed + i)
            frames.append(atoms)
    settings = FeffSettings(
        edge=args.edge,
        rmax_A=args.rmax,
        nleg=args.nleg,
        cluster_radius_A=args.cluster_radius,
        scf_radius_A=args.scf_radius,
    )
    print(
        f"{len(frames)} snapshots x {args.absorbers} absorbers, {args.absorber} {args.edge},"
        f" cluster {args.cluster_radius} Å, RPATH {args.rmax} Å, NLEG {args.nleg},"
        f" SCF {args.scf_radius or 'off'}"
    )
    with tempfile.TemporaryDirectory(prefix="exafs_cost_") as tmp:
        start = time.perf_counter()
        potentials = compute_potentials(
            reference, args.absorber, settings, f"{tmp}/potentials", work_root=tmp
        )
        t_pot = time.perf_counter() - start

        snapshot_map = dict(enumerate(frames))
        start = time.perf_counter()
        fixed = compute_chunk(
            snapshot_map, potentials, settings, absorbers_per_snapshot=args.absorbers,
            seed=args.seed, work_root=tmp, workers=1,
        )
        t_fixed = time.perf_counter() - start
        n_pairs = len(fixed.frame_index)

        start = time.perf_counter()
        full = []
        for fi, atoms in snapshot_map.items():
            for ai in select_absorbers(atoms, args.absorber, args.absorbers, args.seed, fi):
                cluster = cut_cluster(atoms, ai, settings.cluster_radius_A)
                full.append(chi_full_feff(cluster, settings, potentials.ipots, work_root=tmp))
        t_full = time.perf_counter() - start

    cluster_atoms = len(cut_cluster(frames[0], 0, settings.cluster_radius_A))
    ft = FTSettings()
    r, chir_fixed = fourier_transform(np.arange(0, 20.001, 0.05), fixed.chi.mean(axis=0), ft)
    _, chir_full = fourier_transform(np.arange(0, 20.001, 0.05), np.mean(full, axis=0), ft)
    inside = (r >= ft.rmin) & (r <= ft.rmax)
    rfactor = np.sum(np.abs(chir_full - chir_fixed)[inside] ** 2) / np.sum(
        np.abs(chir_full[inside]) ** 2
    )
    per_fixed, per_full = t_fixed / n_pairs, t_full / n_pairs
    print(f"cluster: {cluster_atoms} atoms; {n_pairs} snapshot-absorber pairs")
    print(f"fixed potentials (once):            {t_pot:8.2f} s")
    print(f"averaging, fixed potentials:        {per_fixed:8.3f} s per snapshot-absorber")
    print(f"full FEFF run per snapshot-absorber: {per_full:8.3f} s per snapshot-absorber")
    print(f"ratio full / fixed:                 {per_full / per_fixed:8.2f}")
    print(f"R-factor of the averages, fixed vs full potentials (k^2, k 3-14, R 1-5): {rfactor:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
