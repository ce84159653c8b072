"""What a finished MD run reports (:class:`MDResult`), the names of a run's files in its
output folder (the snapshot files are named in :mod:`dualbench.md.snapshots`), and the
phase of a step; shared by the classical driver (:mod:`dualbench.md.driver`) and the
path-integral one (:mod:`dualbench.md.pimd`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: A run's files in its output folder besides the snapshots.
LOG_FILE = "md_log.csv"
RUN_INFO_FILE = "md_run.json"
FAILURE_FILE = "md_guard_failure.extxyz"


@dataclass
class MDResult:
    """What a finished run did; wall_s and steps_per_s count this invocation only.
    ``nbeads`` is 1 for classical nuclei, P for a path-integral run; ``status`` and
    ``failure`` say whether a guard stopped it (:mod:`dualbench.runstatus`)."""

    out_dir: str
    n_atoms: int
    n_dof: int
    total_steps: int
    resumed_from_step: int
    n_snapshots: int
    n_log_rows: int
    wall_s: float
    steps_per_s: float | None  # None when a resumed run had no step left to do
    device: str | None = None
    nbeads: int = 1
    status: str = "ok"  # or "unstable": a guard stopped the run (dualbench.runstatus)
    failure: dict[str, Any] | None = None  # the RunFailure record of an unstable run


def phase_of(step: int, settings: Any) -> str:
    """initial (step 0), equilibration (up to ``settings.equilibration_steps``) or
    production."""
    if step == 0:
        return "initial"
    return "equilibration" if step <= settings.equilibration_steps else "production"
