"""Clusters cut around absorbers, FEFF potential indices, the MD-average structure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms


@dataclass(frozen=True)
class Cluster:
    """Atoms around one absorber: the absorber first, at the origin, then by distance (Å).

    ``owners`` are the atoms' indices in the structure the cluster was cut from and
    ``cell_shifts`` the whole cell vectors (n_a, n_b, n_c) of their periodic images: atom i
    of the cluster sits at ``positions[owners[i]] + cell_shifts[i] @ cell`` minus the
    absorber's position.
    """

    symbols: tuple[str, ...]
    positions: np.ndarray
    owners: np.ndarray | None = None
    cell_shifts: np.ndarray | None = None

    @property
    def distances(self) -> np.ndarray:
        return np.linalg.norm(self.positions, axis=1)

    def __len__(self) -> int:
        return len(self.symbols)


def cut_cluster(atoms: Atoms, index: int, radius_A: float) -> Cluster:
    """Every atom (periodic images included) within ``radius_A`` of atom ``index``.

    The absorber is put at the origin and listed first; the others follow by distance
    (ties in a fixed order of their coordinates).  Directions without periodicity take
    no images.
    """
    cell = np.asarray(atoms.cell.array, dtype=float)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    rel = atoms.positions - atoms.positions[index]
    reps = []
    volume = abs(np.linalg.det(cell)) if pbc.any() else 0.0
    for i in range(3):
        if not pbc[i]:
            reps.append(np.zeros(1, dtype=int))
            continue
        height = volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3]))
        n = int(math.ceil(radius_A / height)) + 1
        reps.append(np.arange(-n, n + 1))
    whole = np.stack(np.meshgrid(*reps, indexing="ij"), axis=-1).reshape(-1, 3)
    shifts = whole @ cell
    candidates = (rel[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    owner = np.tile(np.arange(len(atoms)), len(shifts))
    image = np.repeat(whole, len(atoms), axis=0)
    dist = np.linalg.norm(candidates, axis=1)
    keep = dist <= radius_A
    candidates, owner, dist, image = candidates[keep], owner[keep], dist[keep], image[keep]
    is_absorber = dist < 1e-8
    if is_absorber.sum() != 1:
        raise ValueError(f"atom {index} overlaps one of its periodic images")
    others = ~is_absorber
    pos, own, d, img = candidates[others], owner[others], dist[others], image[others]
    order = np.lexsort((pos[:, 2], pos[:, 1], pos[:, 0], np.round(d, 6)))
    symbols = atoms.get_chemical_symbols()
    return Cluster(
        symbols=(symbols[index],) + tuple(symbols[i] for i in own[order]),
        positions=np.vstack([np.zeros((1, 3)), pos[order]]),
        owners=np.concatenate([[index], own[order]]).astype(int),
        cell_shifts=np.vstack([np.zeros((1, 3), dtype=int), img[order]]).astype(int),
    )


def potential_indices(scatterers: Sequence[str]) -> dict[str, int]:
    """FEFF ipot of every scattering element: 1, 2, ... by atomic number (absorber is 0).

    ``scatterers`` are the symbols of a cluster's atoms other than the absorber; atoms of
    the absorber's element other than the absorber share its element's ipot.  FEFF wants
    at least one atom of every listed potential in each cluster.
    """
    from ase.data import atomic_numbers

    elements = sorted(set(scatterers), key=lambda s: atomic_numbers[s])
    return {el: i + 1 for i, el in enumerate(elements)}


def average_structure(frames: Sequence[Atoms], source: str = "snapshots") -> Atoms:
    """Mean positions of ``frames`` (unwrapped against the first frame), mean cell;
    ``source`` (the file) names where a frame with other atoms came from."""
    first = frames[0]
    cell0 = np.asarray(first.cell.array)
    frac0 = first.get_scaled_positions(wrap=False)
    fracs = []
    for index, atoms in enumerate(frames):
        if len(atoms) != len(first) or atoms.get_chemical_symbols() != first.get_chemical_symbols():
            raise ValueError(
                f"{source}: frame {index}: {len(atoms)} atoms ({atoms.get_chemical_formula()})"
                f" where frame 0 has {len(first)} ({first.get_chemical_formula()}) in another"
                " order or number: cannot average positions"
            )
        frac = np.linalg.solve(np.asarray(atoms.cell.array).T, atoms.positions.T).T
        delta = frac - frac0
        delta -= np.round(delta) * np.asarray(atoms.pbc, dtype=float)
        fracs.append(frac0 + delta)
    cell = np.mean([np.asarray(a.cell.array) for a in frames], axis=0) if len(frames) else cell0
    mean = first.copy()
    mean.set_cell(cell)
    mean.set_scaled_positions(np.mean(fracs, axis=0))
    mean.wrap()
    return mean


def inscribed_radius_of(atoms: Atoms) -> float | None:
    if not np.all(atoms.pbc):
        return None
    from dualbench.structure import inscribed_radius

    return inscribed_radius(atoms.cell.array)
