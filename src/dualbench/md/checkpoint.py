"""The MD driver's restart checkpoint (``md_checkpoint.npz``) and what a run accumulates.

The checkpoint holds positions, momenta, the cell, the step counter, the random
generator's state, the integrator's own state
(:func:`dualbench.md.ensembles.dynamics_state`), the log rows and the snapshots (with
their cells) kept so far, and a fingerprint of the inputs (:func:`inputs_fingerprint`);
one written for other inputs is ignored.  Units: Å, eV, eV/Å, eV/Å^3.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from dualbench.io import atomic_path
from dualbench.md.ensembles import dynamics_state, trajectory_settings
from dualbench.md.settings import NON_TRAJECTORY_SETTINGS, MDSettings

log = logging.getLogger("dualbench.md")

#: The checkpoint's name in a run's output folder (not an output of the workflow).
CHECKPOINT_FILE = "md_checkpoint.npz"
CHECKPOINT_VERSION = 1


def inputs_fingerprint(atoms: Atoms, settings: MDSettings, model_id: str) -> str:
    """A short hash of a run's inputs: the settings that change the trajectory, the
    starting structure (rounded to 1e-6 Å) and the model's id."""
    payload = {
        "settings": trajectory_settings(asdict(settings), NON_TRAJECTORY_SETTINGS),
        "numbers": atoms.numbers.tolist(),
        "positions": np.round(atoms.positions, 6).tolist(),
        "cell": np.round(np.asarray(atoms.cell), 6).tolist(),
        "model": model_id,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class RunState:
    """What a run has accumulated: log rows and snapshot arrays (cells in Å)."""

    rows: list[tuple[float, ...]]
    snap_steps: list[int]
    snap_positions: list[np.ndarray]
    snap_momenta: list[np.ndarray]
    snap_forces: list[np.ndarray]
    snap_energies: list[float]
    snap_stresses: list[np.ndarray]
    snap_cells: list[np.ndarray]

    @classmethod
    def empty(cls) -> RunState:
        return cls([], [], [], [], [], [], [], [])


def save_checkpoint(
    path: Path,
    atoms: Atoms,
    step: int,
    rng: np.random.Generator,
    dyn: Any,
    state: RunState,
    fingerprint: str,
    n_columns: int,
) -> None:
    n = len(atoms)
    integrator = dynamics_state(dyn)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            **integrator,
            version=CHECKPOINT_VERSION,
            fingerprint=fingerprint,
            step=step,
            positions=atoms.positions,
            momenta=atoms.get_momenta(),
            cell=np.asarray(atoms.cell),
            numbers=atoms.numbers,
            rng_state=json.dumps(rng.bit_generator.state),
            rows=np.asarray(state.rows, dtype=float).reshape(-1, n_columns),
            snap_steps=np.asarray(state.snap_steps, dtype=int),
            snap_positions=np.asarray(state.snap_positions, dtype=float).reshape(-1, n, 3),
            snap_momenta=np.asarray(state.snap_momenta, dtype=float).reshape(-1, n, 3),
            snap_forces=np.asarray(state.snap_forces, dtype=float).reshape(-1, n, 3),
            snap_energies=np.asarray(state.snap_energies, dtype=float),
            snap_stresses=np.asarray(state.snap_stresses, dtype=float).reshape(-1, 6),
            snap_cells=np.asarray(state.snap_cells, dtype=float).reshape(-1, 3, 3),
        )


def load_checkpoint(
    path: Path, atoms: Atoms, fingerprint: str, refuse_other: bool = False
) -> dict[str, Any] | None:
    """The checkpoint's contents, or None (with a warning) when it belongs to another run;
    with ``refuse_other`` (``dualbench md`` without ``--overwrite``), a ValueError instead:
    the unfinished run of other inputs is not discarded."""
    try:
        with np.load(path) as data:
            ckpt = {key: data[key] for key in data.files}
    except Exception as err:  # a damaged file must not stop the run: start afresh
        log.warning("ignoring unreadable checkpoint %s (%s); starting from step 0", path, err)
        return None
    version = int(ckpt.get("version", -1))
    other = version != CHECKPOINT_VERSION or str(ckpt.get("fingerprint", "")) != fingerprint
    if refuse_other and (other or not np.array_equal(ckpt["numbers"], atoms.numbers)):
        raise ValueError(
            f"{path}: the checkpoint of an unfinished run with other inputs (model,"
            " structure or settings): continue it with the arguments it was started with,"
            " give another --out, or discard it with --overwrite"
        )
    if other:
        log.warning(
            "ignoring checkpoint %s: it was written for other inputs (model, structure or"
            " settings changed); starting from step 0",
            path,
        )
        return None
    if not np.array_equal(ckpt["numbers"], atoms.numbers):
        log.warning("ignoring checkpoint %s: different atoms; starting from step 0", path)
        return None
    return ckpt


def state_from_checkpoint(ckpt: Mapping[str, Any]) -> RunState:
    n_snaps = len(ckpt["snap_steps"])
    # A checkpoint written before NPT existed has no snap_cells: NVT, the starting cell.
    cells = ckpt["snap_cells"] if "snap_cells" in ckpt else [ckpt["cell"]] * n_snaps
    return RunState(
        rows=[tuple(r) for r in ckpt["rows"].tolist()],
        snap_steps=ckpt["snap_steps"].tolist(),
        snap_positions=list(ckpt["snap_positions"]),
        snap_momenta=list(ckpt["snap_momenta"]),
        snap_forces=list(ckpt["snap_forces"]),
        snap_energies=ckpt["snap_energies"].tolist(),
        snap_stresses=list(ckpt["snap_stresses"]),
        snap_cells=[np.asarray(c, dtype=float) for c in cells],
    )
