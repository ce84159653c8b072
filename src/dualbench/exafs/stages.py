"""The EXAFS arm's jobs (potentials, path tables, chunks, average) and the one-process
``exafs-average`` command, each a thin sequence of the package's steps."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dualbench.exafs.averaging import AveragedChi, average_chunks, average_spectra, write_average
from dualbench.exafs.chunks import ChunkResult, write_chunk
from dualbench.exafs.clusters import average_structure
from dualbench.exafs.engine_feff import compute_chunk
from dualbench.exafs.feff import Potentials, compute_potentials, load_potentials
from dualbench.exafs.sampling import chunk_of, select_snapshots
from dualbench.exafs.settings import FeffSettings, FTSettings
from dualbench.io import provenance
from dualbench.md import read_snapshots

log = logging.getLogger(__name__)

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
    from dualbench.structure import build_structure, build_supercell

    settings = FeffSettings.from_config(exafs, material["edge"])
    if exafs["potentials_from"] == "average":
        if snapshots_file is None:
            raise ValueError("exafs.potentials_from: average needs an MD snapshots file")
        frames = read_snapshots(snapshots_file)
        reference, label = average_structure(frames), "average"
        log.info("reference: mean positions of %d frames of %s", len(frames), snapshots_file)
    else:
        unit = build_structure(material["structure"], structure_file)
        reference = build_supercell(unit, material.get("supercell", (1, 1, 1)))
        label = "ideal"
    return compute_potentials(reference, material["absorber"], settings, out_dir, label=label)


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
) -> ChunkResult:
    """The `snapshot_chi` job: FEFF on the snapshots of chunk ``chunk`` of one run.

    The snapshots used are ``exafs.snapshots`` frames evenly spaced over the file (all when
    0); chunk ``chunk`` of ``n_chunks`` takes ``exafs.chunk_size`` of them, the last chunk
    the rest.  FEFF works in folders beside ``out``, or under $DUALBENCH_FEFF_WORK (e.g. a
    node-local disk) when set.
    """
    settings = FeffSettings.from_config(exafs, edge)
    potentials = load_potentials(potentials_dir)
    potentials.check(potentials.absorber, edge)
    frames = read_snapshots(snapshots_file)
    selected = select_snapshots(len(frames), int(exafs["snapshots"]))
    if int(exafs["snapshots"]) > len(frames):
        log.warning(
            "%s has %d frames, fewer than exafs.snapshots = %d: using all",
            snapshots_file, len(frames), exafs["snapshots"],
        )
    mine = chunk_of(selected, chunk, n_chunks, int(exafs["chunk_size"]))
    log.info("chunk %d/%d: frames %s of %d", chunk + 1, n_chunks, mine, len(frames))
    out = Path(out)
    work_root = Path(os.environ.get("DUALBENCH_FEFF_WORK", out.parent))
    result = compute_chunk(
        {fi: frames[fi] for fi in mine},
        potentials,
        settings,
        absorbers_per_snapshot=int(exafs["absorbers_per_snapshot"]),
        seed=seed,
        work_root=work_root,
        workers=workers,
    )
    result.meta = {
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
) -> AveragedChi:
    """The `average_chi` job: gather the chunks of a run, write the averaged outputs."""
    avg = average_chunks(chunk_files)
    write_average(avg, FTSettings.from_config(ft), out_chi_k, out_chi_r, out_convergence)
    return avg


def average_snapshots(
    snapshots_file: str | Path,
    absorber: str,
    settings: FeffSettings,
    ft: FTSettings,
    out_dir: str | Path,
    *,
    snapshots: int = 0,
    absorbers_per_snapshot: int = 0,
    seed: int = 0,
    potentials_dir: str | Path | None = None,
    reference_file: str | Path | None = None,
    workers: int = 1,
) -> AveragedChi:
    """All of it in one process (the ``exafs-average`` command).

    Potentials: ``potentials_dir`` when given (computed earlier), else computed into
    ``out_dir/potentials`` from ``reference_file`` (a structure file) or, without one,
    from the mean positions of the snapshots.  Writes chi_k.csv, chi_r.csv and
    convergence.csv into ``out_dir``.
    """
    out_dir = Path(out_dir)
    frames = read_snapshots(snapshots_file)
    if potentials_dir is not None:
        potentials = load_potentials(potentials_dir)
        potentials.check(absorber, settings.edge)
    else:
        if reference_file is not None:
            from ase.io import read

            reference, label = read(reference_file), "reference"
        else:
            reference, label = average_structure(frames), "average"
        potentials = compute_potentials(
            reference, absorber, settings, out_dir / "potentials", label=label,
            work_root=out_dir,
        )
    selected = select_snapshots(len(frames), snapshots)
    result = compute_chunk(
        {int(fi): frames[fi] for fi in selected},
        potentials,
        settings,
        absorbers_per_snapshot=absorbers_per_snapshot,
        seed=seed,
        work_root=out_dir,
        workers=workers,
    )
    avg = average_spectra(result.chi, result.frame_index)
    write_average(
        avg, ft, out_dir / "chi_k.csv", out_dir / "chi_r.csv", out_dir / "convergence.csv"
    )
    return avg
