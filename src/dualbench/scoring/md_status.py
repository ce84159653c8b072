"""Whether a run's MD ran fine: the failed-run contract, read from a run's files.

A run folder is ``results/<material>/<model>/n<N>/seed<S>/``.  A run whose MD failed (a
temperature runaway, atoms too close, an atom hopping off its lattice site in a crystal) is
scored as a result, "MD unstable", not a crash:

* MD stage: ``md/md_run.json`` has ``"status": "unstable"`` and ``"failure": {"stage":
  "md", "step": 9, "reason": "..."}`` (``"ok"`` for a run that ran fine; a file without
  ``status`` is ok); ``md/sigma2.csv`` and ``md/rdf.csv`` are header-only.
* EXAFS stage (an atom left its lattice site): ``md_run.json`` says ok and ``sigma2.csv``
  has rows, which must not be used; ``exafs/chi_snapshots.npz`` has a ``failure`` key.
* Either stage: ``exafs/chi_k.csv``, ``chi_r.csv`` and ``convergence.csv`` are header-only;
  ``summary.csv`` has ``md_status`` (``ok`` / ``unstable``) and ``md_failure`` (a short
  text), NaN EXAFS columns and valid DFT-arm columns; a summary without the columns is all
  ok.

Used by the leaderboard (:mod:`dualbench.scoring.leaderboard`) and the figures, whose
legend texts (:func:`failure_label`, :func:`grouped_failures`) are made here too.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from dualbench.runstatus import RunFailure, file_failure, md_failure

#: ``md_status`` of a run (and leaderboard row) whose MD failed, and of one that ran fine.
UNSTABLE, STABLE = "unstable", "ok"
UNSTABLE_TEXT = "MD unstable"


def is_unstable(status: object) -> bool:
    """Whether an ``md_status`` / ``status`` value says the MD failed (NaN or missing: no)."""
    return isinstance(status, str) and status.strip().lower() == UNSTABLE


def run_folder(material_folder: str | Path, model: str, n_frames: int, seed: int) -> Path:
    """``results/<material>/<model>/n<N>/seed<S>``."""
    return Path(material_folder) / str(model) / f"n{int(n_frames)}" / f"seed{int(seed)}"


def failure_text(failure: object) -> str:
    """A failure record as one line: a text as it is; a mapping (:class:`RunFailure`'s
    fields) as "MD unstable at step 9: <reason>" or "MD left the crystal at snapshot 12:
    <reason>" (:meth:`RunFailure.text`)."""
    if isinstance(failure, str):
        return failure.strip()
    if not isinstance(failure, dict):
        return ""
    try:
        return RunFailure.from_dict(failure).text()
    except (KeyError, TypeError, ValueError):
        return UNSTABLE_TEXT


def md_run_failure(run: str | Path) -> str | None:
    """The failure text of a run folder whose ``md/md_run.json`` says ``status: unstable``
    (None when it is ok, has no status or is missing)."""
    try:
        found = md_failure(Path(run) / "md")
    except ValueError:  # unstable without a readable failure record
        return UNSTABLE_TEXT
    return None if found is None else found.text()


def run_failure(run: str | Path) -> str | None:
    """Why a run folder's MD failed, None when nothing there says it did: ``md/md_run.json``
    with ``status: unstable``, else a non-empty ``failure`` key in
    ``exafs/chi_snapshots.npz`` (the EXAFS-stage failure)."""
    found = md_run_failure(run)
    if found is not None:
        return found
    path = Path(run) / "exafs" / "chi_snapshots.npz"
    if not path.is_file():
        return None
    try:
        failure = file_failure(path)
    except (ValueError, KeyError):  # a plain-text or pickled entry: a failure all the same
        return UNSTABLE_TEXT
    return None if failure is None else failure.text()


def summary_failures(summary: pd.DataFrame, folder: str | Path | None = None
                     ) -> dict[tuple[str, int, int], str]:
    """{(model, N, seed): failure text} of a summary's unstable runs: ``md_status``
    unstable (its ``md_failure`` as the text) or, with the material's ``folder``, a run
    folder that says so (:func:`run_failure`).  An old summary without the columns and
    without such run files: none."""
    nothing = pd.Series([None] * len(summary), index=summary.index, dtype=object)
    status, texts = summary.get("md_status", nothing), summary.get("md_failure", nothing)
    failures = {}
    for row, state, why in zip(summary.itertuples(), status, texts, strict=True):
        key = (str(row.model), int(row.n_frames), int(row.seed))
        on_disk = run_failure(run_folder(folder, *key)) if folder is not None else None
        if is_unstable(state) or on_disk is not None:
            written = why.strip() if isinstance(why, str) else ""
            failures[key] = written or on_disk or UNSTABLE_TEXT
    return failures


def said(why: str | None) -> bool:
    """Whether a failure text says more than "MD unstable"."""
    return bool(why and why.strip() and why.strip() != UNSTABLE_TEXT)


def failure_label(label: str, why: str | None = None, reason: bool = False) -> str:
    """The legend text of a run left out because its MD failed: "<label>: MD unstable",
    with ``reason`` the reason (shortened, wrapped) below it when it says more."""
    head = f"{label}: {UNSTABLE_TEXT}"
    if not reason or not said(why):
        return head
    return head + "\n" + textwrap.fill(textwrap.shorten(why.strip(), 110, placeholder=" ..."),
                                       60, initial_indent="  ", subsequent_indent="  ")


def grouped_failures(failures: Mapping[tuple[str, int, int], str]) -> dict[str, str]:
    """{"<model> N=<n>, seed(s) ...": reason} of (model, N, seed) failures, one entry per
    (model, N); the seeds' reasons joined when they differ."""
    groups: dict[tuple[str, int], dict[int, str]] = {}
    for (model, n, seed), why in failures.items():
        groups.setdefault((str(model), int(n)), {})[int(seed)] = why
    out = {}
    for (model, n), seeds in groups.items():
        word = "seed" if len(seeds) == 1 else "seeds"
        label = f"{model} N={n}, {word} {', '.join(map(str, sorted(seeds)))}".lstrip()
        reasons = set(seeds.values())
        out[label] = reasons.pop() if len(reasons) == 1 else "; ".join(
            f"seed {s}: {why}" for s, why in sorted(seeds.items()))
    return out
