"""The ``fast`` engine: FEFF's paths of the ideal crystal carried to every snapshot.

Every instance of every path of the :class:`~dualbench.exafs.path_table.PathTable` is
put on its own atoms in the snapshot (each atom at its ideal site plus its displacement,
taken as the periodic image nearest the site).  Its chi(k) is FEFF's path carried to the
instance's geometry by the model of :mod:`.path_geometry_response`: path length in
larch's ``deltar`` terms, plus genfmt's response to each distance between the path's
atoms (curved-wave amplitudes, scattering angles).  Instances longer than RPATH in the
snapshot are left out, as FEFF leaves out a snapshot's paths beyond RPATH.

What the model does not follow: the potentials (the ideal crystal's, as in the ``feff``
engine) and changes of FEFF's path list itself, so the engine holds while displacements
are small beside interatomic distances (thermal vibration of a solid); a diffusing or
molten system, or one far from its ideal lattice, needs the ``feff`` engine: an atom
farther than half the nearest-neighbour distance from its site is refused, and a path
whose length changes by more than the table's margin beyond RPATH is warned about.

The sum over instances runs on :data:`~dualbench.exafs.path_geometry_response.K_COARSE`
and goes to :data:`~dualbench.exafs.settings.K_GRID` by a cubic spline (the sums are
smooth in k; the fast 2 k reff oscillation is in each path's ``base``, evaluated on the
fine grid).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from dualbench.exafs.chunks import ChunkResult
from dualbench.exafs.path_geometry_response import half_length, spline_matrix
from dualbench.exafs.path_table import PathTable
from dualbench.exafs.sampling import check_finite_frame, select_absorbers

if TYPE_CHECKING:
    from ase import Atoms

log = logging.getLogger(__name__)


def site_positions(table: PathTable, atoms: Atoms, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Fractional positions of ``atoms`` unwrapped to their ideal sites, and the cell (Å).

    Refuses a frame with other atoms than the table's, a non-finite position or cell, or
    an atom farther than half the nearest-neighbour distance from its site.
    """
    check_finite_frame(atoms, f"frame {frame}")
    if len(atoms) != len(table.numbers) or not np.array_equal(atoms.numbers, table.numbers):
        raise ValueError(
            f"frame {frame}: {len(atoms)} atoms {atoms.get_chemical_formula()} differ from the"
            f" path table's reference structure ({len(table.numbers)} atoms, same order needed)"
        )
    cell = np.asarray(atoms.cell.array, dtype=float)
    frac = np.linalg.solve(cell.T, atoms.positions.T).T
    delta = frac - table.frac0
    delta -= np.round(delta) * np.asarray(atoms.pbc, dtype=float)
    shift = np.linalg.norm(delta @ cell, axis=1)
    limit = 0.5 * float(table.meta.get("nearest_neighbour_A", np.inf))
    worst = int(np.argmax(shift))
    if shift[worst] > limit:
        raise SiteHopError(frame, worst, float(shift[worst]), limit)
    return table.frac0 + delta, cell


class SiteHopError(ValueError):
    """An atom of a snapshot is farther than half the nearest-neighbour distance from its
    ideal site: the crystal diffused or melted, which the fast engine cannot follow.  For
    a crystal well below its melting point that is the model's failure ("MD left the
    crystal", :mod:`dualbench.runstatus`); for a liquid, use the feff engine."""

    def __init__(self, frame: int, atom: int, shift_A: float, limit_A: float):
        self.frame, self.atom, self.shift_A, self.limit_A = frame, atom, shift_A, limit_A
        self.reason = (
            f"atom {atom} is {shift_A:.2f} Å from its ideal site, more than half the"
            f" nearest-neighbour distance ({limit_A:.2f} Å): diffusion or melting"
        )
        super().__init__(
            f"frame {frame}: {self.reason}; the fast engine maps paths onto the ideal lattice"
            " and cannot follow it (a liquid needs exafs.engine: feff)"
        )


def _path_sum(table: PathTable, q: int, pos: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Sum over instances (vertices ``pos`` (n, legs, 3), half lengths ``r``) of path q of
    (reff / R)^2 exp(2 i p dR) (1 + sum_j g_j dd_j) on the coarse grid."""
    reff = table.reff[q]
    dr = r - reff
    phase = np.exp(2j * dr[:, None] * table.momentum[q][None, :])
    weight = (reff / r) ** 2
    total = np.einsum("n,nk->k", weight, phase)
    for j, (u, v) in enumerate(table.coord_pairs[q]):
        if u == -2:
            break
        if u == -1:
            dd = dr
        else:
            dd = np.linalg.norm(pos[:, u] - pos[:, v], axis=1) - table.coord_ref[q, j]
        total += table.gradient[q, j] * np.einsum("n,nk->k", weight * dd, phase)
    return total


def instance_sums(
    table: PathTable, frac: np.ndarray, cell: np.ndarray, absorbers: np.ndarray
) -> tuple[np.ndarray, float]:
    """(n_paths, n_coarse) sums over the instances around ``absorbers`` no longer than
    RPATH in this snapshot, and the largest shortening -dR (Å) among them."""
    sums = np.zeros(table.momentum.shape, dtype=complex)
    rmax = float(table.meta["rmax_A"])
    largest = 0.0
    for atoms, shifts, path in table.instances.values():
        mine = np.isin(atoms[:, 0], absorbers)
        pos = (frac[atoms[mine]] + shifts[mine]) @ cell
        r = half_length(pos)
        inside = r <= rmax
        pos, r, p = pos[inside], r[inside], path[mine][inside]
        if len(p):
            largest = max(largest, float(-(r - table.reff[p]).min()))
        edges = np.flatnonzero(np.diff(p)) + 1
        for lo, hi in zip(np.r_[0, edges], np.r_[edges, len(p)], strict=True):
            if hi > lo:
                sums[p[lo]] += _path_sum(table, int(p[lo]), pos[lo:hi], r[lo:hi])
    return sums, largest


@cache
def _spline() -> np.ndarray:
    return spline_matrix()


def chi_of_frame(
    table: PathTable, atoms: Atoms, frame: int, absorbers: Sequence[int]
) -> tuple[np.ndarray, float]:
    """Mean chi(k) on K_GRID over ``absorbers`` of one frame, and the largest shortening
    of a path (Å)."""
    frac, cell = site_positions(table, atoms, frame)
    sums, largest = instance_sums(table, frac, cell, np.asarray(absorbers))
    fine = _spline() @ sums.T  # (n_k, n_paths)
    chi = np.einsum("pk,kp->k", table.base, fine).imag / max(1, len(absorbers))
    return chi, largest


def chunk_fast(
    frames: Mapping[int, Atoms],
    table: PathTable,
    *,
    absorbers_per_snapshot: int,
    seed: int,
    workers: int = 1,
) -> ChunkResult:
    """The fast engine's chunk: one row per frame, the mean chi(k) over its chosen
    absorbers (all when ``absorbers_per_snapshot`` is 0; the same draw as the ``feff``
    engine), ``weight`` = the number of absorbers.  Logs progress about every tenth of the
    frames; ``workers`` frames are evaluated at once (threads)."""
    absorber = table.meta["absorber"]
    chosen = {
        fi: select_absorbers(atoms, absorber, absorbers_per_snapshot, seed, fi)
        for fi, atoms in frames.items()
    }
    order = list(frames)
    start = time.perf_counter()
    log.info(
        "fast engine on %d snapshots x %s absorbers = %d pairs (%d paths, %d instances)",
        len(order), absorbers_per_snapshot or "all", sum(len(v) for v in chosen.values()),
        len(table.reff), table.n_instances,
    )
    results: dict[int, tuple[np.ndarray, float]] = {}
    margin = float(table.meta.get("rpath_margin_A", 0.0))

    def one(fi: int) -> int:
        results[fi] = chi_of_frame(table, frames[fi], fi, chosen[fi])
        return fi

    every = max(1, len(order) // 10)
    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        for done, _ in enumerate(pool.map(one, order), start=1):
            if done % every == 0 or done == len(order):
                elapsed = time.perf_counter() - start
                log.info(
                    "snapshots %d/%d done: %.3f s per snapshot, ETA %.0f s",
                    done, len(order), elapsed / done, elapsed / done * (len(order) - done),
                )
    largest = max((worst for _, worst in results.values()), default=0.0)
    if largest > margin:
        log.warning(
            "a path was %.2f Å shorter than in the ideal crystal, more than the path table's"
            " margin of %.2f Å beyond RPATH: paths from beyond the margin that come inside"
            " RPATH may be missed (large disorder: check against exafs.engine: feff)",
            largest, margin,
        )
    return ChunkResult(
        chi=np.array([results[fi][0] for fi in order]).reshape(len(order), -1),
        frame_index=np.array(order, dtype=int),
        absorber_index=np.full(len(order), -1, dtype=int),
        weight=np.array([len(chosen[fi]) for fi in order], dtype=float),
        seconds=time.perf_counter() - start,
    )
