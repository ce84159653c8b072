"""Labelled frames by content: configuration keys, matching within a tolerance, the
reuse files, and collecting finished chunks into one file."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from dualbench.data import load_frames


def config_key(atoms: Atoms) -> str:
    """A short SHA-256 of a configuration's content: atomic numbers, and positions and
    cell rounded to 1e-4 Å.  It names a configuration in logs and records; reuse matches
    configurations within a tolerance instead (:func:`find_labelled`), because the same MD
    on another machine can differ in the last digits."""
    data = np.concatenate([
        atoms.numbers.astype(float),
        np.round(atoms.positions, 4).ravel() + 0.0,
        np.round(atoms.cell[:], 4).ravel() + 0.0,
    ])
    return hashlib.sha256(data.tobytes()).hexdigest()[:16]


def find_labelled(
    atoms: Atoms, labelled: Sequence[Atoms], theory: str, tolerance_A: float
) -> Atoms | None:
    """The first frame of ``labelled`` with the level of theory ``theory`` and the same
    configuration as ``atoms``: the same atomic numbers in the same order, cell vectors
    and positions each within ``tolerance_A`` (Å).  None when there is none."""
    for frame in labelled:
        if (
            len(frame) == len(atoms)
            and str(frame.info.get("dft")) == theory
            and np.array_equal(frame.numbers, atoms.numbers)
            and np.abs(frame.cell[:] - atoms.cell[:]).max() <= tolerance_A
            and np.abs(frame.positions - atoms.positions).max() <= tolerance_A
        ):
            return frame
    return None


def load_reuse(paths: Sequence[str | Path]) -> list[Atoms]:
    """The labelled frames of the ``reuse`` files (extended XYZ with energy, forces and
    stress, as this module writes them)."""
    frames: list[Atoms] = []
    for path in paths:
        if not Path(path).exists():
            raise FileNotFoundError(f"dft.label.reuse: {path} does not exist")
        frames.extend(load_frames(path))
    return frames


def collect_labelled(files: Sequence[str | Path], out: str | Path) -> int:
    """Every labelled frame of ``files`` (chunk outputs, earlier collections) written once to
    ``out``, atomically, in pool order (round, then place in the round): how a partly
    labelled round is committed so that a later run reuses it.  Frames are told apart by
    ``frame_id``; the first copy is kept.  Returns the number written."""
    from dualbench.data import write_frames

    seen: dict[str, Atoms] = {}
    for path in files:
        for frame in load_frames(path):
            seen.setdefault(str(frame.info.get("frame_id")), frame)
    frames = sorted(seen.values(), key=lambda a: (int(a.info.get("round", 0)),
                                                  int(a.info.get("config_index", 0))))
    if not frames:
        raise ValueError(f"no labelled frames in {len(files)} file(s)")
    write_frames(out, frames)
    return len(frames)
