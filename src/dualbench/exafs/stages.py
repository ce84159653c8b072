"""The EXAFS arm's jobs (potentials, path tables, chunks, average) and the one-process
``exafs-average`` command, each a thin sequence of the package's steps."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dualbench.exafs.averaging import (
    AveragedChi,
    average_chunks,
    average_spectra,
    ft_weight,
    write_average,
)
from dualbench.exafs.chunks import ChunkResult, write_chunk
from dualbench.exafs.clusters import average_structure
from dualbench.exafs.engine_fast import compute_chunk_fast
from dualbench.exafs.engine_feff import compute_chunk
from dualbench.exafs.feff import Potentials, compute_potentials, load_potentials
from dualbench.exafs.path_table import (
    PathTable,
    build_path_table,
    check_path_table,
    read_path_table,
    write_path_table,
)
from dualbench.exafs.sampling import chunk_of, read_finite_snapshots, select_snapshots
from dualbench.exafs.settings import K_GRID, FeffSettings, FTSettings
from dualbench.io import provenance

if TYPE_CHECKING:
    from ase import Atoms

log = logging.getLogger(__name__)

ENGINES = ("fast", "feff")


def ideal_supercell(material: Mapping[str, Any], structure_file: str | Path | None) -> Atoms:
    """The material's ideal supercell, atom for atom the MD's starting structure."""
    from dualbench.structure import build_structure, build_supercell

    atoms = build_supercell(
        build_structure(material["structure"], structure_file), material.get("supercell", (1, 1, 1))
    )
    atoms.pbc = True
    return atoms


def engine_chunk(
    engine: str,
    frames: Mapping[int, Atoms],
    settings: FeffSettings,
    *,
    potentials: Potentials | None,
    table: PathTable | None,
    absorbers_per_snapshot: int,
    seed: int,
    work_root: str | Path | None,
    workers: int,
) -> ChunkResult:
    """chi(k) of ``frames`` with the ``fast`` engine (needs ``table``) or ``feff`` (needs
    ``potentials``)."""
    if engine == "fast":
        if table is None:
            raise ValueError("exafs.engine: fast needs a path table")
        return compute_chunk_fast(
            frames, table, absorbers_per_snapshot=absorbers_per_snapshot, seed=seed,
            workers=workers,
        )
    if engine == "feff":
        if potentials is None:
            raise ValueError("exafs.engine: feff needs the fixed potentials")
        return compute_chunk(
            frames, potentials, settings, absorbers_per_snapshot=absorbers_per_snapshot,
            seed=seed, work_root=work_root, workers=workers,
        )
    raise ValueError(f"exafs.engine {engine!r} is not one of {', '.join(ENGINES)}")

def potentials_stage(
    material: Mapping[str, Any],
    exafs: Mapping[str, Any],
    out_dir: str | Path,
    *,
    structure_file: str | Path | None = None,
    snapshots_file: str | Path | None = None,
) -> Potentials:
    """The `feff_potentials` job: potentials of a material from its ideal crystal (the
    config structure and supercell) or, with ``exafs.potentials_from: average``, from the
    mean positions of ``snapshots_file``."""
    settings = FeffSettings.from_config(exafs, material["edge"])
    if exafs["potentials_from"] == "average":
        if snapshots_file is None:
            raise ValueError("exafs.potentials_from: average needs an MD snapshots file")
        frames = read_finite_snapshots(snapshots_file)
        reference, label = average_structure(frames, str(snapshots_file)), "average"
        log.info("reference: mean positions of %d frames of %s", len(frames), snapshots_file)
    else:
        reference, label = ideal_supercell(material, structure_file), "ideal"
    return compute_potentials(reference, material["absorber"], settings, out_dir, label=label)


def paths_stage(
    material: Mapping[str, Any],
    exafs: Mapping[str, Any],
    potentials_dir: str | Path,
    out: str | Path,
    *,
    structure_file: str | Path | None = None,
) -> PathTable:
    """The `feff_paths` job: the path table of the material's ideal supercell (the MD's
    starting structure) with its fixed potentials, for the ``fast`` engine."""
    settings = FeffSettings.from_config(exafs, material["edge"])
    potentials = load_potentials(potentials_dir)
    potentials.check(material["absorber"], material["edge"])
    out = Path(out)
    table = build_path_table(
        ideal_supercell(material, structure_file), potentials, settings, work_root=out.parent
    )
    write_path_table(out, table)
    return table


def chunk_stage(
    snapshots_file: str | Path,
    potentials_dir: str | Path,
    out: str | Path,
    *,
    exafs: Mapping[str, Any],
    edge: str,
    chunk: int,
    n_chunks: int,
    seed: int,
    workers: int = 1,
    paths_file: str | Path | None = None,
) -> ChunkResult:
    """The `snapshot_chi` job: chi(k) of the snapshots of chunk ``chunk`` of one run, with
    ``exafs.engine`` (``fast``: the path table ``paths_file``; ``feff``: FEFF runs).

    The snapshots used are ``exafs.snapshots`` frames evenly spaced over the file (all when
    0); chunk ``chunk`` of ``n_chunks`` takes ``exafs.chunk_size`` of them, the last chunk
    the rest.  FEFF works in folders beside ``out``, or under $DUALBENCH_FEFF_WORK (e.g. a
    node-local disk) when set.  Refused: a snapshot with a non-finite position or cell, a
    path table of another absorber, edge, potentials or path settings than the job's.
    """
    settings = FeffSettings.from_config(exafs, edge)
    engine = str(exafs.get("engine", "fast"))
    potentials = load_potentials(potentials_dir)
    potentials.check(potentials.absorber, edge)
    table = None
    if engine == "fast":
        if paths_file is None:
            raise ValueError("exafs.engine: fast needs the path table (feff_paths)")
        table = read_path_table(paths_file)
        check_path_table(table, paths_file, potentials, settings)
    frames = read_finite_snapshots(snapshots_file)
    selected = select_snapshots(len(frames), int(exafs["snapshots"]))
    if int(exafs["snapshots"]) > len(frames):
        log.warning(
            "%s has %d frames, fewer than exafs.snapshots = %d: using all",
            snapshots_file, len(frames), exafs["snapshots"],
        )
    mine = chunk_of(selected, chunk, n_chunks, int(exafs["chunk_size"]))
    log.info(
        "chunk %d/%d (%s engine): frames %s of %d", chunk + 1, n_chunks, engine, mine,
        len(frames),
    )
    out = Path(out)
    result = engine_chunk(
        engine,
        {fi: frames[fi] for fi in mine},
        settings,
        potentials=potentials,
        table=table,
        absorbers_per_snapshot=int(exafs["absorbers_per_snapshot"]),
        seed=seed,
        work_root=Path(os.environ.get("DUALBENCH_FEFF_WORK", out.parent)),
        workers=workers,
    )
    result.meta = {
        "engine": engine,
        "paths": None if paths_file is None else str(paths_file),
        "snapshots_file": str(snapshots_file),
        "n_frames_in_file": len(frames),
        "chunk": chunk,
        "n_chunks": n_chunks,
        "settings": asdict(settings),
        "potentials": str(potentials_dir),
        "seed": seed,
        "provenance": provenance(),
    }
    write_chunk(out, result)
    return result


def average_stage(
    chunk_files: Sequence[str | Path],
    ft: Mapping[str, Any],
    out_chi_k: str | Path,
    out_chi_r: str | Path,
    out_convergence: str | Path,
    out_snapshots: str | Path | None = None,
) -> AveragedChi:
    """The `average_chi` job: gather the chunks of a run, write the averaged outputs."""
    ft_settings = FTSettings.from_config(ft)
    avg = average_chunks(chunk_files, ft_settings)
    write_average(avg, ft_settings, out_chi_k, out_chi_r, out_convergence, out_snapshots)
    return avg


def average_snapshots(
    snapshots_file: str | Path,
    absorber: str,
    settings: FeffSettings,
    ft: FTSettings,
    out_dir: str | Path,
    *,
    engine: str = "fast",
    snapshots: int = 0,
    absorbers_per_snapshot: int = 0,
    seed: int = 0,
    potentials_dir: str | Path | None = None,
    reference_file: str | Path | None = None,
    workers: int = 1,
    allow_periodic_images: bool = False,
) -> AveragedChi:
    """All of it in one process (the ``exafs-average`` command).

    A cluster radius beyond the snapshots' inscribed radius (periodic images of the
    absorber's own neighbours in its cluster) is refused, as from a config, unless
    ``allow_periodic_images``.

    Potentials: ``potentials_dir`` when given (computed earlier), else computed into
    ``out_dir/potentials`` from ``reference_file`` (a structure file) or, without one,
    from the mean positions of the snapshots.  The ``fast`` engine maps its paths onto
    an ideal lattice in the snapshots' atom order: ``reference_file``, or the MD's
    ``supercell.extxyz`` beside the snapshots; its path table goes to
    ``out_dir/paths.npz``.  Writes chi_k.csv, chi_r.csv and convergence.csv into
    ``out_dir``.
    """
    out_dir = Path(out_dir)
    frames = read_finite_snapshots(snapshots_file)
    _check_cluster_radius(frames[0], settings, snapshots_file, allow_periodic_images)
    lattice = _lattice(engine, snapshots_file, reference_file)
    if potentials_dir is not None:
        potentials = load_potentials(potentials_dir)
        potentials.check(absorber, settings.edge)
    else:
        if reference_file is not None:
            reference, label = lattice, "reference"
        else:
            reference, label = average_structure(frames, str(snapshots_file)), "average"
        potentials = compute_potentials(
            reference, absorber, settings, out_dir / "potentials", label=label,
            work_root=out_dir,
        )
    table = None
    if engine == "fast":
        table = build_path_table(lattice, potentials, settings, work_root=out_dir)
        write_path_table(out_dir / "paths.npz", table)
    selected = select_snapshots(len(frames), snapshots)
    result = engine_chunk(
        engine,
        {int(fi): frames[fi] for fi in selected},
        settings,
        potentials=potentials,
        table=table,
        absorbers_per_snapshot=absorbers_per_snapshot,
        seed=seed,
        work_root=out_dir,
        workers=workers,
    )
    avg = average_spectra(result.chi, result.frame_index, weights=result.weights(),
                          score_weight=ft_weight(K_GRID, ft))
    write_average(
        avg, ft, out_dir / "chi_k.csv", out_dir / "chi_r.csv", out_dir / "convergence.csv",
        out_dir / "chi_snapshots.npz",
    )
    return avg


def _check_cluster_radius(frame: Atoms, settings: FeffSettings, source: str | Path,
                          allow_periodic_images: bool) -> None:
    from dualbench.exafs.clusters import inscribed_radius_of

    radius = inscribed_radius_of(frame)
    if radius is not None and settings.cluster_radius_A > radius and not allow_periodic_images:
        raise ValueError(
            f"{source}: exafs.cluster_radius_A (--cluster-radius) {settings.cluster_radius_A:g}"
            f" Å exceeds the inscribed radius {radius:.2f} Å of the snapshots' cell: the"
            " cluster would hold periodic images of the absorber's own neighbours; use a"
            " smaller radius, a larger supercell, or exafs.allow_periodic_images: true"
        )


def _lattice(engine: str, snapshots_file: str | Path, reference_file: str | Path | None):
    """The reference structure: ``reference_file``, or for the fast engine the MD's
    supercell.extxyz beside the snapshots; None when the feff engine needs none."""
    from ase.io import read

    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    if reference_file is not None:
        return read(reference_file)
    beside = Path(snapshots_file).parent / "supercell.extxyz"
    if engine == "fast":
        if not beside.is_file():
            raise FileNotFoundError(
                f"{beside}: the fast engine maps paths onto the ideal supercell in the"
                " snapshots' atom order; give it with --reference (or use --engine feff)"
            )
        return read(beside)
    return None
