"""The bead-convergence record of a path-integral run: the same run at several bead
counts P, and the position observables against P.

:func:`bead_convergence` runs :func:`dualbench.md.pimd.run_pimd` once per P (in
``OUT/beads_<P>``, each resumable on its own) and writes ``OUT/bead_convergence.csv``:
per P, the mean-square displacement per Cartesian direction of every atom from its
starting site (``quantity`` u2_atom, ``index`` the atom; the oracle's observable) and of
all atoms together (``index`` -1, with the standard error of the mean over five blocks of
the kept steps), and, with an ``absorber``, sigma^2 of every absorber-neighbour shell
(``quantity`` sigma2_shell, ``index`` the shell, from
:func:`dualbench.diagnostics.shell_sigma2` over every bead of every kept step).
Units: Å^2.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from dualbench.io import write_csv
from dualbench.md.pimd import run_pimd
from dualbench.md.settings import MDSettings
from dualbench.md.snapshots import SNAPSHOTS_FILE, read_snapshots

log = logging.getLogger("dualbench.md")

CONVERGENCE_FILE = "bead_convergence.csv"
CONVERGENCE_COLUMNS = ("beads", "quantity", "index", "value_A2", "stderr_A2")


def _displacements(frames: list[Atoms], start: Atoms) -> np.ndarray:
    """Minimum-image displacements (Å) of every frame's atoms from ``start``'s sites."""
    cell = np.asarray(start.cell, dtype=float)
    inv = np.linalg.inv(cell)
    frac = np.stack([f.positions - start.positions for f in frames]) @ inv
    frac -= np.round(frac) * start.pbc
    return frac @ cell


def _u2_rows(beads: int, frames: list[Atoms], start: Atoms) -> list[dict[str, Any]]:
    d2 = _displacements(frames, start) ** 2  # (frames, atoms, 3)
    steps = np.array([f.info["step"] for f in frames])
    per_step = np.array([d2[steps == s].mean() for s in np.unique(steps)])
    n_blocks = min(5, len(per_step))
    blocks = per_step[: len(per_step) // n_blocks * n_blocks].reshape(n_blocks, -1).mean(1)
    stderr = float(blocks.std(ddof=1) / math.sqrt(n_blocks)) if n_blocks > 1 else math.nan
    rows = [{"beads": beads, "quantity": "u2_atom", "index": -1,
             "value_A2": float(per_step.mean()), "stderr_A2": stderr}]
    for atom, value in enumerate(d2.mean(axis=(0, 2))):
        rows.append({"beads": beads, "quantity": "u2_atom", "index": atom,
                     "value_A2": float(value), "stderr_A2": math.nan})
    return rows


def _shell_rows(beads: int, frames: list[Atoms], start: Atoms, absorber: str) -> list[dict]:
    from dualbench.diagnostics import shell_sigma2

    table = shell_sigma2(frames, start, absorber)
    return [{"beads": beads, "quantity": "sigma2_shell", "index": int(row.shell),
             "value_A2": float(row.sigma2_A2), "stderr_A2": float(row.sigma2_stderr_A2)}
            for row in table.itertuples()]


def bead_convergence(
    atoms: Atoms,
    calculator: Any,
    settings: MDSettings,
    beads: Sequence[int],
    out_dir: str | Path,
    *,
    absorber: str | None = None,
    model_id: str = "",
) -> Any:
    """Run ``settings`` (nuclei pimd) at each bead count of ``beads`` and write the
    record ``OUT/bead_convergence.csv`` (see the module's docstring); returns it as a
    DataFrame."""
    import pandas as pd

    out_dir = Path(out_dir)
    start = atoms.copy()
    start.set_constraint()
    rows: list[dict[str, Any]] = []
    for p in sorted(set(int(b) for b in beads)):
        run_dir = out_dir / f"beads_{p}"
        run_pimd(start, calculator, dataclasses.replace(settings, beads=p), run_dir,
                 model_id=model_id)
        frames = read_snapshots(run_dir / SNAPSHOTS_FILE)
        u2 = _u2_rows(p, frames, start)
        rows += u2
        if absorber is not None:
            rows += _shell_rows(p, frames, start, absorber)
        log.info("bead convergence: P = %d, u^2 = %.6g +- %.1g Å^2 (all atoms)", p,
                 u2[0]["value_A2"], u2[0]["stderr_A2"])
    table = pd.DataFrame(rows, columns=list(CONVERGENCE_COLUMNS))
    write_csv(out_dir / CONVERGENCE_FILE, table)
    return table
