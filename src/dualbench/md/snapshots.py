"""The MD snapshots as extended XYZ: frames from a run's accumulated state, written
atomically, and read back.

Each snapshot frame carries the cell (Å), pbc, momenta, and through a
SinglePointCalculator the energy (eV), forces (eV/Å) and stress (eV/Å^3, Voigt), with
``step``, ``time_fs`` and ``temperature_K`` (kinetic, ``3N - 3`` degrees of freedom) in
its ``info``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms, units

from dualbench.io import atomic_path

if TYPE_CHECKING:
    from dualbench.md.checkpoint import RunState
    from dualbench.md.settings import MDSettings

#: A run's production snapshots, and its starting structure, in its output folder.
SNAPSHOTS_FILE = "snapshots.extxyz"
SUPERCELL_FILE = "supercell.extxyz"


def snapshot_frames(atoms: Atoms, state: RunState, settings: MDSettings) -> list[Atoms]:
    """The snapshots ``state`` kept, as frames of ``atoms``' species and pbc."""
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    n_dof = 3 * len(atoms) - 3
    for k, step in enumerate(state.snap_steps):
        frame = Atoms(
            numbers=atoms.numbers,
            positions=state.snap_positions[k],
            cell=state.snap_cells[k],
            pbc=atoms.pbc,
            momenta=state.snap_momenta[k],
        )
        ekin = 0.5 * float(np.sum(state.snap_momenta[k] ** 2 / atoms.get_masses()[:, None]))
        frame.info.update(
            step=int(step),
            time_fs=float(step * settings.timestep_fs),
            temperature_K=2.0 * ekin / (n_dof * units.kB),
        )
        frame.calc = SinglePointCalculator(
            frame,
            energy=float(state.snap_energies[k]),
            forces=state.snap_forces[k],
            stress=state.snap_stresses[k],
        )
        frames.append(frame)
    return frames


def write_snapshots(path: str | Path, frames: list[Atoms]) -> None:
    """Write frames (with cell, momenta, energy, forces, stress) as extxyz atomically."""
    from ase.io import write

    with atomic_path(path) as tmp:
        write(tmp, frames, format="extxyz")


def read_snapshots(path: str | Path) -> list[Atoms]:
    """Frames of a snapshot (or any extended-XYZ) trajectory, with cell and pbc."""
    from ase.io import read

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: snapshots file not found")
    frames = read(path, index=":", format="extxyz")
    if not frames:
        raise ValueError(f"{path}: no frames")
    return list(frames)
