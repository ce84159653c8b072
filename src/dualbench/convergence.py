"""The study's answer: from how many DFT frames on does each arm stop improving?

For each model and metric (``force_mae`` of the DFT arm, ``exafs_mse_k`` of the EXAFS
arm) the summary's rows are reduced per N to the mean over seeds and a 95 % half-width
that combines

* the spread over seeds (training subsets and MD seeds): 1.96 std / sqrt(n_seeds), when
  there are at least two seeds, and
* the sampling uncertainty of each seed's score (the EXAFS bootstrap interval,
  ``exafs_mse_k_lo`` .. ``_hi``): the mean half-width / sqrt(n_seeds),

added in quadrature.  The rule: N is converged when its mean, and that of every larger N,
lies within the combined half-widths sqrt(u_N^2 + u_ref^2) of the largest N's mean (the
best-trained model).  The smallest such N is reported; with one seed and no sampling
interval the half-widths are 0 and only the largest N passes, which says the sweep
cannot tell.  ``results/{material}/convergence.json`` holds, per model, the per-N table
and ``n_converged_force_mae`` and ``n_converged_exafs_mse_k``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dualbench.io import provenance, write_json

RULE = (
    "smallest N from which on every N's mean over seeds lies within the combined 95 %"
    " half-widths (seed spread and sampling interval, in quadrature) of the largest N's mean"
)
#: force_mae (DFT arm), exafs_mse_k (against the experiment), exafs_mse_ref_k (against the
#: reference model's simulation, for a material without an experiment)
METRICS = ("force_mae", "exafs_mse_k", "exafs_mse_ref_k")


def by_n(summary: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per N: mean over seeds, 95 % half-width (seeds and sampling), seed count."""
    data = summary.dropna(subset=[column])
    rows = []
    for n, group in data.groupby("n_frames"):
        values = group[column].to_numpy(float)
        count = len(values)
        seeds = 1.96 * values.std(ddof=1) / np.sqrt(count) if count >= 2 else 0.0
        sampling = 0.0
        lo, hi = f"{column}_lo", f"{column}_hi"
        if lo in group and hi in group and group[[lo, hi]].notna().all().all():
            sampling = float(np.mean((group[hi] - group[lo]) / 2.0)) / np.sqrt(count)
        rows.append({"n_frames": int(n), "mean": float(values.mean()),
                     "half_width": float(np.hypot(seeds, sampling)), "n_seeds": count})
    return pd.DataFrame(rows, columns=["n_frames", "mean", "half_width", "n_seeds"])


def converged_n(table: pd.DataFrame, largest: int | None = None) -> int | None:
    """The smallest N of a :func:`by_n` table that passes the rule.  None when the table is
    empty, or when it has no row at ``largest`` (the sweep's largest N): without a score
    there (a one-seed reference run) there is nothing to converge to, and comparing with a
    smaller N would claim too much."""
    if table.empty or (largest is not None and largest not in set(table["n_frames"])):
        return None
    table = table.sort_values("n_frames")
    ref = table.iloc[-1]
    ok = np.abs(table["mean"] - ref["mean"]) <= np.hypot(table["half_width"], ref["half_width"])
    passing = ok.to_numpy()[::-1].cumprod()[::-1].astype(bool)  # this N and all above pass
    return int(table["n_frames"].to_numpy()[np.argmax(passing)])


def largest_n(rows: pd.DataFrame, column: str) -> int:
    """The largest N a metric's arm ran at: every N for the DFT arm, the N of rows with
    ``exafs_arm`` for an EXAFS score (the EXAFS arm may run at fewer N than the DFT arm)."""
    if column.startswith("exafs") and "exafs_arm" in rows and rows["exafs_arm"].any():
        rows = rows[rows["exafs_arm"].astype(bool)]
    return int(rows["n_frames"].max())


def converged(rows: pd.DataFrame, column: str) -> tuple[pd.DataFrame, int | None]:
    """One model's :func:`by_n` table of a metric and its converged N."""
    table = by_n(rows, column)
    return table, converged_n(table, largest_n(rows, column))


def convergence_record(summary: pd.DataFrame, metrics: Sequence[str] = METRICS) -> dict:
    """Per model: the per-N tables and the converged N of each metric present."""
    out: dict[str, Any] = {"rule": RULE, "models": {}}
    for model, rows in summary.groupby("model"):
        entry: dict[str, Any] = {}
        for metric in metrics:
            if metric not in rows or rows[metric].isna().all():
                continue
            table, entry[f"n_converged_{metric}"] = converged(rows, metric)
            entry[metric] = table.to_dict(orient="records")
        out["models"][str(model)] = entry
    return out


def convergence_stage(summary_csv: str | Path, out: str | Path) -> dict:
    """The `convergence` job: convergence.json from the material's summary.csv."""
    record = convergence_record(pd.read_csv(summary_csv))
    write_json(out, {**record, "summary": str(summary_csv), "provenance": provenance()})
    return record
