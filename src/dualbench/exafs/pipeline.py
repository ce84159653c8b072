"""The steps of the EXAFS pipeline, each driven by one :class:`ExafsSettings`.

reference structure -> fixed potentials -> path table (``fast`` engine) -> the chunk's
snapshots -> chi(k) by the engine -> the configuration average
(:func:`~dualbench.exafs.averaging.average_results`).

The Snakemake jobs and the one-process ``exafs-average`` (both in :mod:`.stages`) are
sequences of these steps: the jobs hand their results on through files, the command in
memory.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dualbench.exafs.chunks import ChunkResult
from dualbench.exafs.clusters import average_structure, inscribed_radius_of
from dualbench.exafs.engine_fast import chunk_fast
from dualbench.exafs.engine_feff import chunk_feff
from dualbench.exafs.feff import Potentials, load_potentials
from dualbench.exafs.path_table import (
    PathTable,
    build_path_table,
    check_path_table,
    read_path_table,
    write_path_table,
)
from dualbench.exafs.sampling import chunk_of, read_finite_snapshots, select_snapshots
from dualbench.exafs.settings import ExafsSettings
from dualbench.exafs.shells import check_cut_between_shells
from dualbench.runstatus import md_failure
from dualbench.schema import SettingError

if TYPE_CHECKING:
    from ase import Atoms

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- reference


def ideal_supercell(material: Mapping[str, Any], structure_file: str | Path | None) -> Atoms:
    """The material's ideal supercell, atom for atom the MD's starting structure."""
    from dualbench.structure import build_structure, build_supercell

    atoms = build_supercell(
        build_structure(material["structure"], structure_file), material.get("supercell", (1, 1, 1))
    )
    atoms.pbc = True
    return atoms


def potentials_reference(
    material: Mapping[str, Any],
    settings: ExafsSettings,
    structure_file: str | Path | None,
    snapshots_file: str | Path | None,
) -> tuple[Atoms, str]:
    """The structure the jobs' potentials come from, and its label: the ideal crystal (the
    config structure and supercell) or, with ``potentials_from: average``, the mean
    positions of ``snapshots_file``."""
    if settings.potentials_from == "average":
        if snapshots_file is None:
            raise ValueError("exafs.potentials_from: average needs an MD snapshots file")
        failure = md_failure(Path(snapshots_file).parent)
        if failure is not None:
            raise ValueError(
                f"{snapshots_file}: exafs.potentials_from: average takes the mean positions of"
                f" this run, whose MD is unstable ({failure.text()}); use potentials_from:"
                " ideal, or list a model that holds the crystal first in `models`")
        frames = read_finite_snapshots(snapshots_file)
        log.info("reference: mean positions of %d frames of %s", len(frames), snapshots_file)
        return average_structure(frames, str(snapshots_file)), "average"
    return ideal_supercell(material, structure_file), "ideal"


def check_cluster_radius(frame: Atoms, settings: ExafsSettings, source: str | Path) -> None:
    """Refuse a cluster radius beyond the inscribed radius of ``frame``'s cell (periodic
    images of the absorber's own neighbours in its cluster) unless
    ``settings.allow_periodic_images``."""
    radius = inscribed_radius_of(frame)
    if radius is None or settings.allow_periodic_images:
        return
    if settings.cluster_radius_A > radius:
        raise ValueError(
            f"{source}: exafs.cluster_radius_A (--cluster-radius) {settings.cluster_radius_A:g}"
            f" Å exceeds the inscribed radius {radius:.2f} Å of the snapshots' cell: the"
            " cluster would hold periodic images of the absorber's own neighbours; use a"
            " smaller radius, a larger supercell, or exafs.allow_periodic_images: true"
        )


#: The command-line options of the cuts :func:`check_cuts` checks, named in its errors.
CUT_OPTIONS = {"exafs.rmax_A": "--rmax", "exafs.cluster_radius_A": "--cluster-radius"}


def check_cuts(reference: Atoms, absorber: str, settings: ExafsSettings, source: str) -> None:
    """Refuse RPATH or the cluster radius within ``settings.shell_margin_A`` of a shell
    around ``absorber`` in ``reference`` (the ideal structure the path table or the
    potentials come from; ``source`` names it), naming the config key and its option."""
    try:
        check_cut_between_shells(reference, absorber, settings.feff.rmax_A,
                                 settings.cluster_radius_A, settings.shell_margin_A,
                                 crystal=source)
    except SettingError as err:
        raise ValueError(
            f"{err.key} ({CUT_OPTIONS[err.key]}) {err.message} (--shell-margin sets"
            " exafs.shell_margin_A)"
        ) from None


# ----------------------------------------------------------------------------- potentials, paths


def fixed_potentials(folder: str | Path, edge: str, absorber: str | None = None) -> Potentials:
    """The potentials computed earlier in ``folder``, checked for ``edge`` and
    ``absorber`` (default: their own)."""
    potentials = load_potentials(folder)
    potentials.check(potentials.absorber if absorber is None else absorber, edge)
    return potentials


def make_path_table(
    lattice: Atoms, potentials: Potentials, settings: ExafsSettings, out: str | Path
) -> PathTable:
    """The path table of ``lattice`` (the ideal supercell in the snapshots' atom order)
    with the fixed potentials, written to ``out`` (FEFF works beside it)."""
    out = Path(out)
    table = build_path_table(lattice, potentials, settings.feff, work_root=out.parent)
    write_path_table(out, table)
    return table


def checked_path_table(
    paths_file: str | Path, potentials: Potentials, settings: ExafsSettings
) -> PathTable:
    """The path table in ``paths_file``, refused when made for another absorber, edge,
    potentials or path settings."""
    table = read_path_table(paths_file)
    check_path_table(table, paths_file, potentials, settings.feff)
    return table


# ----------------------------------------------------------------------------- chunks


def chunk_frames(
    frames: Sequence[Atoms],
    settings: ExafsSettings,
    chunk: int,
    n_chunks: int,
    source: str | Path,
) -> dict[int, Atoms]:
    """The frames (index -> Atoms) of chunk ``chunk`` of ``n_chunks``: ``snapshots``
    frames evenly spaced over ``frames`` (all when 0), ``chunk_size`` of them per chunk,
    the last chunk the rest."""
    sampling = settings.sampling
    selected = select_snapshots(len(frames), sampling.snapshots)
    if sampling.snapshots > len(frames):
        log.warning(
            "%s has %d frames, fewer than exafs.snapshots = %d: using all",
            source, len(frames), sampling.snapshots,
        )
    mine = chunk_of(selected, chunk, n_chunks, sampling.chunk_size)
    log.info(
        "chunk %d/%d (%s engine): frames %s of %d", chunk + 1, n_chunks, settings.engine, mine,
        len(frames),
    )
    return {fi: frames[fi] for fi in mine}


def compute_chunk(
    settings: ExafsSettings,
    frames: Mapping[int, Atoms],
    *,
    potentials: Potentials | None,
    table: PathTable | None,
    seed: int,
    work_root: str | Path | None,
    workers: int,
) -> ChunkResult:
    """chi(k) of ``frames`` with ``settings.engine``: ``fast`` (needs ``table``) or
    ``feff`` (needs ``potentials``; FEFF works under ``work_root``)."""
    absorbers = settings.sampling.absorbers_per_snapshot
    if settings.engine == "fast":
        if table is None:
            raise ValueError("exafs.engine: fast needs a path table")
        return chunk_fast(frames, table, absorbers_per_snapshot=absorbers, seed=seed,
                          workers=workers)
    if potentials is None:
        raise ValueError("exafs.engine: feff needs the fixed potentials")
    return chunk_feff(frames, potentials, settings.feff, absorbers_per_snapshot=absorbers,
                      seed=seed, work_root=work_root, workers=workers)
