"""Runs whose MD is unstable (:mod:`dualbench.runstatus`) in the scoring jobs: they are
not scored, and their rows say why (``status``, ``failure``) beside NaN scores."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dualbench.runstatus import STATUS_OK, STATUS_UNSTABLE, RunFailure, file_failure

#: The columns a scoring table adds per run.
STATUS_COLUMNS = ("status", "failure")


def run_failures(snapshot_files: Sequence[str | Path] | None, n_runs: int
                 ) -> list[RunFailure | None]:
    """Each run's failure, from its chi_snapshots.npz (None: stable, or no file given)."""
    if not snapshot_files:
        return [None] * n_runs
    if len(snapshot_files) != n_runs:
        raise ValueError(f"{n_runs} runs but {len(snapshot_files)} chi_snapshots.npz files")
    return [file_failure(path) for path in snapshot_files]


def status_of(failure: RunFailure | None) -> dict[str, str]:
    """The status columns of a run."""
    if failure is None:
        return {"status": STATUS_OK, "failure": ""}
    return {"status": STATUS_UNSTABLE, "failure": failure.text()}
