"""The EXAFS arm's entry points: the Snakemake jobs (potentials, path table, chunk,
average), which take the config's ``exafs`` / ``ft`` sections as dicts, and the
one-process ``exafs-average`` (:func:`average_snapshots`), which takes the settings.

Each builds its :class:`ExafsSettings` once and runs the steps of :mod:`.pipeline`; the
jobs hand their results on through files, the command in memory.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dualbench.exafs.averaging import (
    AveragedChi,
    average_results,
    write_average,
    write_failed_average,
)
from dualbench.exafs.chunks import ChunkResult, failed_chunk, read_chunk, write_chunk
from dualbench.exafs.clusters import average_structure
from dualbench.exafs.engine_fast import SiteHopError
from dualbench.exafs.feff import Potentials, compute_potentials
from dualbench.exafs.path_table import PathTable
from dualbench.exafs.pipeline import (
    check_cluster_radius,
    check_cuts,
    checked_path_table,
    chunk_frames,
    compute_chunk,
    fixed_potentials,
    ideal_supercell,
    make_path_table,
    potentials_reference,
)
from dualbench.exafs.sampling import read_finite_snapshots
from dualbench.exafs.settings import ExafsSettings, FTSettings
from dualbench.io import provenance
from dualbench.runstatus import RunFailure, md_failure, on_unstable

if TYPE_CHECKING:
    from ase import Atoms

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- the jobs


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
    settings = ExafsSettings.from_config(exafs, material["edge"])
    reference, label = potentials_reference(material, settings, structure_file, snapshots_file)
    return compute_potentials(reference, material["absorber"], settings.feff, out_dir,
                              label=label)


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
    settings = ExafsSettings.from_config(exafs, material["edge"])
    potentials = fixed_potentials(potentials_dir, material["edge"], material["absorber"])
    return make_path_table(ideal_supercell(material, structure_file), potentials, settings, out)


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

    An unstable run (:mod:`dualbench.runstatus`) gets a chunk with no spectra and the
    failure: one whose md_run.json (beside the snapshots) says so, or, when that run was
    made with ``md.on_unstable: record``, one with an atom off its lattice site
    (:class:`~dualbench.exafs.engine_fast.SiteHopError`).
    """
    settings = ExafsSettings.from_config(exafs, edge)
    md_dir = Path(snapshots_file).parent
    failure = md_failure(md_dir)
    if failure is None:
        potentials = fixed_potentials(potentials_dir, edge)
        table = None
        if settings.engine == "fast":
            if paths_file is None:
                raise ValueError("exafs.engine: fast needs the path table (feff_paths)")
            table = checked_path_table(paths_file, potentials, settings)
    out = Path(out)
    meta = {
        "engine": settings.engine,
        "paths": None if paths_file is None else str(paths_file),
        "snapshots_file": str(snapshots_file),
        "chunk": chunk,
        "n_chunks": n_chunks,
        "settings": asdict(settings.feff),
        "potentials": str(potentials_dir),
        "seed": seed,
        "provenance": provenance(),
    }
    if failure is None:
        frames = read_finite_snapshots(snapshots_file)
        meta["n_frames_in_file"] = len(frames)
        try:
            result = compute_chunk(
                settings,
                chunk_frames(frames, settings, chunk, n_chunks, snapshots_file),
                potentials=potentials,
                table=table,
                seed=seed,
                work_root=Path(os.environ.get("DUALBENCH_FEFF_WORK", out.parent)),
                workers=workers,
            )
        except SiteHopError as err:
            if on_unstable(md_dir) != "record":
                raise
            failure = RunFailure(stage="exafs", reason=err.reason, snapshot=err.frame)
    if failure is not None:
        log.warning("no spectra, the run is unstable: %s", failure.text())
        result = failed_chunk(failure)
    result.meta = meta
    write_chunk(out, result)
    return result


def average_stage(
    chunk_files: Sequence[str | Path],
    ft: Mapping[str, Any],
    out_chi_k: str | Path,
    out_chi_r: str | Path,
    out_convergence: str | Path,
    out_snapshots: str | Path | None = None,
) -> AveragedChi | None:
    """The `average_chi` job: gather the chunks of a run, write the averaged outputs.  A
    run with a failed chunk (:mod:`dualbench.runstatus`) gets header-only CSVs and its
    failure in the snapshots file, and None is returned."""
    ft_settings = FTSettings.from_config(ft)
    chunks = [read_chunk(path) for path in chunk_files]
    failures = [c.failure for c in chunks if c.failure is not None]
    if failures:
        write_failed_average(failures[0], out_chi_k, out_chi_r, out_convergence, out_snapshots)
        return None
    avg = average_results(chunks, ft_settings, source=str([str(p) for p in chunk_files]))
    write_average(avg, ft_settings, out_chi_k, out_chi_r, out_convergence, out_snapshots)
    return avg


# ----------------------------------------------------------------------------- the command


def average_snapshots(
    snapshots_file: str | Path,
    absorber: str,
    settings: ExafsSettings,
    ft: FTSettings,
    out_dir: str | Path,
    *,
    seed: int = 0,
    potentials_dir: str | Path | None = None,
    reference_file: str | Path | None = None,
    workers: int = 1,
) -> AveragedChi:
    """All of it in one process (the ``exafs-average`` command): the jobs' steps, with
    every selected snapshot in one chunk.

    A cluster radius beyond the snapshots' inscribed radius (periodic images of the
    absorber's own neighbours in its cluster) is refused, as from a config, unless
    ``settings.allow_periodic_images``; so are RPATH and a cluster radius within
    ``settings.shell_margin_A`` of a shell of the ideal structure (``reference_file``,
    else the MD's ``supercell.extxyz`` beside the snapshots, else their mean positions).

    Potentials: ``potentials_dir`` when given (computed earlier), else computed into
    ``out_dir/potentials`` from ``reference_file`` (a structure file) or, without one,
    from the mean positions of the snapshots (``settings.potentials_from`` is the jobs'
    choice and is not used here).  The ``fast`` engine maps its paths onto an ideal
    lattice in the snapshots' atom order: ``reference_file``, or the MD's
    ``supercell.extxyz`` beside the snapshots; its path table goes to
    ``out_dir/paths.npz``.  Writes chi_k.csv, chi_r.csv, convergence.csv and
    chi_snapshots.npz into ``out_dir``.
    """
    out_dir = Path(out_dir)
    frames = read_finite_snapshots(snapshots_file)
    check_cluster_radius(frames[0], settings, snapshots_file)
    lattice = _lattice(settings, snapshots_file, reference_file)
    shell_reference, named = _shell_reference(lattice, frames, snapshots_file, reference_file)
    check_cuts(shell_reference, absorber, settings, named)
    if potentials_dir is not None:
        potentials = fixed_potentials(potentials_dir, settings.edge, absorber)
    else:
        if reference_file is not None:
            reference, label = lattice, "reference"
        else:
            reference, label = average_structure(frames, str(snapshots_file)), "average"
        potentials = compute_potentials(
            reference, absorber, settings.feff, out_dir / "potentials", label=label,
            work_root=out_dir,
        )
    table = None
    if settings.engine == "fast":
        table = make_path_table(lattice, potentials, settings, out_dir / "paths.npz")
    result = compute_chunk(
        settings,
        chunk_frames(frames, settings, 0, 1, snapshots_file),
        potentials=potentials,
        table=table,
        seed=seed,
        work_root=out_dir,
        workers=workers,
    )
    avg = average_results([result], ft, source=str(snapshots_file))
    write_average(
        avg, ft, out_dir / "chi_k.csv", out_dir / "chi_r.csv", out_dir / "convergence.csv",
        out_dir / "chi_snapshots.npz",
    )
    return avg


def _lattice(
    settings: ExafsSettings, snapshots_file: str | Path, reference_file: str | Path | None
) -> Atoms | None:
    """The reference structure: ``reference_file``, or for the fast engine the MD's
    supercell.extxyz beside the snapshots; None when the feff engine needs none."""
    from ase.io import read

    if reference_file is not None:
        return read(reference_file)
    beside = Path(snapshots_file).parent / "supercell.extxyz"
    if settings.engine == "fast":
        if not beside.is_file():
            raise FileNotFoundError(
                f"{beside}: the fast engine maps paths onto the ideal supercell in the"
                " snapshots' atom order; give it with --reference (or use --engine feff)"
            )
        return read(beside)
    return None


def _shell_reference(
    lattice: Atoms | None,
    frames: Sequence[Atoms],
    snapshots_file: str | Path,
    reference_file: str | Path | None,
) -> tuple[Atoms, str]:
    """The structure whose shells the cuts are checked against, and its name: the
    lattice (``reference_file`` or the MD's supercell.extxyz), else the supercell.extxyz
    beside the snapshots when the feff engine did not need it, else their mean positions."""
    from ase.io import read

    beside = Path(snapshots_file).parent / "supercell.extxyz"
    if lattice is not None:
        return lattice, str(reference_file if reference_file is not None else beside)
    if beside.is_file():
        return read(beside), str(beside)
    mean = average_structure(frames, str(snapshots_file))
    return mean, f"the mean positions of {snapshots_file}"
