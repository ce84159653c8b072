"""A run that a guard stopped, written as its result (``md.on_unstable: record``): the
study scores the model as "MD unstable" (:mod:`dualbench.runstatus`) and goes on."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
from ase import Atoms

from dualbench.io import provenance, write_csv, write_json
from dualbench.md.checkpoint import CHECKPOINT_FILE
from dualbench.md.guards import MDGuardError
from dualbench.md.pimd import IPI_DIR, beads_of
from dualbench.md.runfiles import LOG_FILE, RUN_INFO_FILE, MDResult
from dualbench.md.settings import MDSettings
from dualbench.md.snapshots import SNAPSHOTS_FILE, SUPERCELL_FILE, write_snapshots
from dualbench.runstatus import STATUS_UNSTABLE, RunFailure

log = logging.getLogger("dualbench.md")


def record_unstable_run(
    atoms: Atoms, settings: MDSettings, out_dir: str | Path, err: MDGuardError,
    run_info: Mapping[str, Any] | None = None, device: str | None = None,
) -> MDResult:
    """The outputs of a run a guard stopped, as its result (``md.on_unstable: record``):
    ``md_run.json`` with ``status`` unstable and the failure (:mod:`dualbench.runstatus`),
    no snapshots, a header-only log and the starting supercell.  The failing state stays
    in ``md_guard_failure.extxyz``; the checkpoint (and i-PI's folder) go, so that the
    job ends here and a rerun starts afresh."""
    out_dir = Path(out_dir)
    failure = RunFailure(stage="md", reason=err.reason, step=err.step)
    start = atoms.copy()
    start.set_constraint()
    start.calc = None
    result = MDResult(
        out_dir=str(out_dir), n_atoms=len(atoms), n_dof=3 * len(atoms) - 3,
        total_steps=settings.total_steps, resumed_from_step=0, n_snapshots=0, n_log_rows=0,
        wall_s=0.0, steps_per_s=None, device=device,
        nbeads=beads_of(settings) if settings.nuclei == "pimd" else 1,
        status=STATUS_UNSTABLE, failure=failure.to_dict(),
    )
    write_snapshots(out_dir / SNAPSHOTS_FILE, [])
    write_csv(out_dir / LOG_FILE, pd.DataFrame(columns=[*settings.log_columns, "phase"]))
    write_snapshots(out_dir / SUPERCELL_FILE, [start])
    info = {"settings": asdict(settings), "result": asdict(result), "status": STATUS_UNSTABLE,
            "failure": failure.to_dict(), **(run_info or {})}
    info.setdefault("provenance", provenance())
    write_json(out_dir / RUN_INFO_FILE, info)
    (out_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
    shutil.rmtree(out_dir / IPI_DIR, ignore_errors=True)
    log.error("recorded as the run's result (md.on_unstable: record): %s", failure.text())
    return result
