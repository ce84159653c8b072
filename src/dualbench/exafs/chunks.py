"""Chunk results: the spectra of one job, written and read as .npz."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dualbench.exafs.settings import K_GRID
from dualbench.io import atomic_path
from dualbench.runstatus import RunFailure, npz_failure


@dataclass
class ChunkResult:
    """chi(k) on :data:`K_GRID` of one chunk, a row per spectrum.

    The ``feff`` engine writes one row per (frame, absorber) pair (``weight`` 1); the
    ``fast`` engine one row per frame, the mean over its absorbers (``absorber_index``
    -1, ``weight`` the number of absorbers).
    """

    chi: np.ndarray  # (n_rows, len(K_GRID))
    frame_index: np.ndarray  # (n_rows,)
    absorber_index: np.ndarray  # (n_rows,)
    weight: np.ndarray | None = None  # (n_rows,) spectra per row; None: 1 each
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    failure: RunFailure | None = None  # the run is unstable: no spectra (runstatus)

    def weights(self) -> np.ndarray:
        """Spectra averaged in each row."""
        if self.weight is None:
            return np.ones(len(self.frame_index))
        return np.asarray(self.weight, dtype=float)


def write_chunk(target: str | Path, result: ChunkResult) -> None:
    """Write a chunk as .npz (k, chi, frame_index, absorber_index, weight, meta JSON and,
    for an unstable run, its failure as JSON) atomically."""
    meta = {**result.meta, "seconds": round(result.seconds, 3)}
    with atomic_path(target) as tmp, tmp.open("wb") as fh:
        np.savez(
            fh,
            k=K_GRID,
            chi=result.chi.reshape(-1, len(K_GRID)),
            frame_index=result.frame_index,
            absorber_index=result.absorber_index,
            weight=result.weights(),
            meta=np.array(json.dumps(meta, default=str)),
            failure=np.array("" if result.failure is None else result.failure.to_json()),
        )


def read_chunk(path: str | Path) -> ChunkResult:
    """A chunk written by :func:`write_chunk`."""
    with np.load(path, allow_pickle=False) as data:
        if not np.allclose(data["k"], K_GRID):
            raise ValueError(f"{path}: k grid differs from dualbench's FEFF grid")
        meta = json.loads(str(data["meta"]))
        return ChunkResult(
            chi=np.array(data["chi"]),
            frame_index=np.array(data["frame_index"]),
            absorber_index=np.array(data["absorber_index"]),
            weight=np.array(data["weight"]) if "weight" in data.files else None,
            seconds=float(meta.get("seconds", 0.0)),
            meta=meta,
            failure=npz_failure(data),
        )


def failed_chunk(failure: RunFailure, meta: dict[str, Any] | None = None) -> ChunkResult:
    """The chunk of an unstable run: no spectra, the failure."""
    return ChunkResult(
        chi=np.zeros((0, len(K_GRID))),
        frame_index=np.zeros(0, dtype=int),
        absorber_index=np.zeros(0, dtype=int),
        weight=np.zeros(0),
        meta=dict(meta or {}),
        failure=failure,
    )
