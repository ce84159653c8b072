"""The `feff` engine: FEFF8L pathfinder, genfmt and ff2x on every (snapshot, absorber)
cluster with fixed potentials (the reference the `fast` engine is validated against)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dualbench.exafs.chunks import ChunkResult
from dualbench.exafs.clusters import cut_cluster, inscribed_radius_of
from dualbench.exafs.feff import (
    FIXED_POTENTIAL_MODULES,
    Potentials,
    chi_fixed_potentials,
    feff_executable,
)
from dualbench.exafs.sampling import select_absorbers
from dualbench.exafs.settings import K_GRID, FeffSettings

if TYPE_CHECKING:
    from ase import Atoms

log = logging.getLogger(__name__)


def chunk_feff(
    frames: Mapping[int, Atoms],
    potentials: Potentials,
    settings: FeffSettings,
    *,
    absorbers_per_snapshot: int,
    seed: int,
    work_root: str | Path | None = None,
    workers: int = 1,
) -> ChunkResult:
    """Fixed-potential chi(k) of every chosen absorber of every frame (index -> Atoms).

    ``workers`` FEFF runs go at once (they are subprocesses).  Logs a progress line per
    snapshot (done / total, seconds per run, ETA).
    """
    absorber = potentials.absorber
    pairs: list[tuple[int, int]] = []
    for fi, atoms in frames.items():
        for ai in select_absorbers(atoms, absorber, absorbers_per_snapshot, seed, fi):
            pairs.append((fi, ai))
    for fi, atoms in frames.items():
        inscribed = inscribed_radius_of(atoms)
        if inscribed is not None and settings.cluster_radius_A > inscribed:
            log.warning(
                "cluster radius %.2f Å exceeds the cell's inscribed radius %.2f Å (frame %d):"
                " the cluster holds periodic images of the absorber's own displacement",
                settings.cluster_radius_A, inscribed, fi,
            )
            break
    for module in FIXED_POTENTIAL_MODULES:
        feff_executable(module)  # fail early, and import larch outside the threads
    chi = np.zeros((len(pairs), len(K_GRID)))
    start = time.perf_counter()
    total_frames = len(frames)
    remaining = {fi: sum(1 for p in pairs if p[0] == fi) for fi in frames}
    frames_done = 0
    runs_done = 0

    def one(i: int) -> int:
        fi, ai = pairs[i]
        cluster = cut_cluster(frames[fi], ai, settings.cluster_radius_A)
        chi[i] = chi_fixed_potentials(cluster, potentials, settings, work_root=work_root)
        return i

    log.info(
        "FEFF on %d snapshots x %s absorbers = %d runs (RPATH %.2f Å, NLEG %d, cluster %.2f Å)",
        total_frames, absorbers_per_snapshot or "all", len(pairs),
        settings.rmax_A, settings.nleg, settings.cluster_radius_A,
    )
    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        for i in pool.map(one, range(len(pairs))):
            runs_done += 1
            fi = pairs[i][0]
            remaining[fi] -= 1
            if remaining[fi] == 0:
                frames_done += 1
                elapsed = time.perf_counter() - start
                rate = elapsed / runs_done
                log.info(
                    "snapshot %d/%d done (frame %d): %d FEFF runs, %.2f s/run, ETA %.0f s",
                    frames_done, total_frames, fi, runs_done, rate,
                    rate * (len(pairs) - runs_done),
                )
    seconds = time.perf_counter() - start
    return ChunkResult(
        chi=chi,
        frame_index=np.array([p[0] for p in pairs], dtype=int),
        absorber_index=np.array([p[1] for p in pairs], dtype=int),
        seconds=seconds,
    )
