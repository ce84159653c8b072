"""Configurations to label: vanilla-model MD snapshots and rattled, strained cells."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from dualbench.data import write_frames
from dualbench.label.settings import LabelSettings
from dualbench.label.store import config_key

log = logging.getLogger(__name__)


def rattled_cells(
    ideal: Atoms, n: int, rattle_A: float, strain: float, seed: int
) -> list[Atoms]:
    """``n`` copies of ``ideal`` under a random symmetric strain (each component uniform
    in ±``strain``) with Gaussian displacements of standard deviation ``rattle_A`` (Å)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = ideal.copy()
        eps = rng.uniform(-strain, strain, (3, 3))
        eps = 0.5 * (eps + eps.T)
        atoms.set_cell(atoms.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
        atoms.positions += rng.normal(0.0, rattle_A, atoms.positions.shape)
        atoms.info["origin"] = "rattle"
        frames.append(atoms)
    return frames


def _bare(atoms: Atoms) -> Atoms:
    """Positions, numbers, cell and pbc only (no momenta, no model results)."""
    return Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)


def sample_configs(
    unit_cell: Atoms,
    settings: LabelSettings,
    *,
    temperature_K: float,
    model: Any,
    material: str,
    md_config: Mapping[str, Any],
    work_dir: str | Path,
    out: str | Path,
    threads: int | None = None,
    round_index: int = 0,
) -> dict[str, Any]:
    """Sample the configurations to label and write them (extended XYZ, no results) to ``out``.

    The MD (vanilla ``model``, NVT at ``temperature_K``, ``settings.timestep_fs``) runs in
    ``work_dir`` with the MD arm's driver, so it shows progress, has the same guards and
    resumes from its checkpoint.  Round ``round_index`` (``settings`` holding that round's
    counts, see :meth:`LabelSettings.for_round`) runs its own MD and rattling with seed
    ``settings.seed + round_index``, so that adding a round leaves the earlier rounds'
    configurations as they were.  Returns counts for the log.
    """
    from dualbench.md.driver import run_md_job
    from dualbench.md.settings import md_settings
    from dualbench.md.snapshots import read_snapshots
    from dualbench.structure import build_supercell

    if settings.sampling_rounds()[0].n_configs < 1:
        raise ValueError(f"sampling round {round_index} of {material} has no configurations")
    seed = settings.seed + round_index
    prefix = f"{material}:" if round_index == 0 else f"{material}:r{round_index}:"
    md = md_settings(
        md_config,
        temperature_K=temperature_K,
        seed=seed,
        timestep_fs=settings.timestep_fs,
        equilibration_steps=settings.equilibration_steps,
        production_steps=(settings.md_frames + settings.test_frames) * settings.interval_steps,
        snapshot_every=settings.interval_steps,
        ensemble="nvt",  # configurations of the labelling cell, whatever the MD arm uses
    )
    run_md_job(
        model=model,
        unit_cell=unit_cell,
        supercell=settings.supercell,
        settings=md,
        out_dir=work_dir,
        threads=threads,
    )
    snapshots = []
    for snap in read_snapshots(Path(work_dir) / "snapshots.extxyz"):
        frame = _bare(snap)
        step = int(snap.info["step"])
        frame.info.update(origin="md", step=step, frame_id=f"{prefix}md{step}")
        snapshots.append(frame)
    ideal = build_supercell(unit_cell, settings.supercell)
    rattled = rattled_cells(
        ideal, settings.rattled_frames, settings.rattle_A, settings.strain, seed
    )
    for i, frame in enumerate(rattled):
        frame.info["frame_id"] = f"{prefix}rattle{i}"
    train = snapshots[: settings.md_frames] + rattled
    test = snapshots[settings.md_frames :]
    ordered = train + test
    for i, frame in enumerate(ordered):
        frame.info.update(
            split="train" if i < len(train) else "test", config_index=i,
            round=round_index, config_key=config_key(frame),
        )
    write_frames(out, ordered)
    log.info(
        "%d configurations of %d atoms: %d MD + %d rattled for training, %d MD held out",
        len(ordered), len(ideal), settings.md_frames, len(rattled), len(test),
    )
    return {"n_configs": len(ordered), "n_atoms": len(ideal), "round": round_index, "seed": seed}
