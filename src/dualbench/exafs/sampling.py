"""Which snapshots and absorbers a run uses, how the snapshots are chunked into jobs, and
the snapshots as the EXAFS arm reads them (every position and cell finite)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dualbench.exafs.settings import SnapshotSampling
from dualbench.schema import material_section

if TYPE_CHECKING:
    from ase import Atoms


def read_finite_snapshots(path: str | Path) -> list[Atoms]:
    """The frames of an MD snapshots file as the EXAFS arm takes them: every position and
    cell finite, else refused naming the file, the frame and the atom (a NaN atom would
    drop every path through it and shrink the mean structure's cluster, silently)."""
    from dualbench.md.snapshots import read_snapshots

    frames = read_snapshots(path)
    for index, atoms in enumerate(frames):
        check_finite_frame(atoms, f"{path}: frame {index}")
    return frames


def check_finite_frame(atoms: Atoms, where: str) -> None:
    """Refuse a frame with a non-finite cell or position; ``where`` names it."""
    cell = np.asarray(atoms.cell.array, dtype=float)
    if not np.isfinite(cell).all():
        raise ValueError(f"{where}: the cell is not finite ({cell.tolist()}); check the MD run")
    bad = np.flatnonzero(~np.isfinite(np.asarray(atoms.positions, dtype=float)).all(axis=1))
    if len(bad):
        atom = int(bad[0])
        raise ValueError(
            f"{where}: atom {atom} ({atoms.get_chemical_symbols()[atom]}) has a non-finite"
            f" position {atoms.positions[atom].tolist()} ({len(bad)} such atom(s)): the"
            " EXAFS average would silently drop every path through it; check the MD run"
        )


def planned_snapshots(config: Mapping[str, Any], material: str | None = None) -> int:
    """Snapshots the EXAFS arm plans to use per run of ``material`` (known before the MD
    runs).

    ``exafs.snapshots``, or when 0 (all) the production snapshots the MD saves:
    ``md.production_steps // md.snapshot_every`` of the material's ``md`` (the study's
    when ``material`` is None), times the beads of a path-integral run (every bead of a
    kept step is a snapshot; the beads the run will pick, :func:`dualbench.md.pimd.beads_of`).
    """
    n = SnapshotSampling.from_config(config["exafs"]).snapshots
    if n > 0:
        return n
    md = config["md"] if material is None else material_section(config, material, "md")
    steps = max(1, int(md["production_steps"]) // int(md["snapshot_every"]))
    if md.get("nuclei") != "pimd" or material is None:
        return steps
    from dualbench.md.pimd import bead_count

    beads = md.get("beads") or bead_count(config["materials"][material]["temperature_K"],
                                          md["max_phonon_THz"], max_beads=md["max_beads"])
    return steps * int(beads)


def chunk_count(config: Mapping[str, Any], material: str | None = None) -> int:
    """Number of snapshot chunks (FEFF jobs) per run of ``material``: ceil(planned
    snapshots / chunk_size)."""
    chunk_size = SnapshotSampling.from_config(config["exafs"]).chunk_size
    return max(1, math.ceil(planned_snapshots(config, material) / chunk_size))


def select_snapshots(n_frames: int, n_used: int) -> np.ndarray:
    """Indices of ``n_used`` frames evenly spaced over ``n_frames`` (all when 0 or more)."""
    if n_frames <= 0:
        return np.zeros(0, dtype=int)
    if n_used <= 0 or n_used >= n_frames:
        return np.arange(n_frames)
    return np.unique(np.round(np.linspace(0, n_frames - 1, n_used)).astype(int))


def chunk_of(selected: Sequence[int], chunk: int, n_chunks: int, chunk_size: int) -> list[int]:
    """The selected frame indices of chunk ``chunk``; the last chunk takes the remainder."""
    if not 0 <= chunk < n_chunks:
        raise ValueError(f"chunk {chunk} is outside 0..{n_chunks - 1}")
    stop = None if chunk == n_chunks - 1 else (chunk + 1) * chunk_size
    return [int(i) for i in list(selected)[chunk * chunk_size : stop]]


def select_absorbers(
    atoms: Atoms, absorber: str, n: int, seed: int, frame_index: int
) -> list[int]:
    """``n`` atoms of element ``absorber`` (all when 0), drawn by (seed, frame index).

    The draw depends only on the seed and the frame, not on the chunking.
    """
    candidates = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s == absorber]
    if not candidates:
        raise ValueError(f"frame {frame_index} has no {absorber} atom")
    if n <= 0 or n >= len(candidates):
        return candidates
    rng = np.random.default_rng([int(seed), int(frame_index)])
    return sorted(int(i) for i in rng.choice(candidates, size=n, replace=False))
