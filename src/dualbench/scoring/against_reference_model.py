"""Without an experiment: how far each model's simulated EXAFS is from a reference model's.

This is convergence of the *simulation*, not agreement with a measurement.  The reference
is one (model, N) of the sweep (``exafs.reference_model``, by default the first model at
the largest N).  Every run is scored against the reference's seed-averaged chi(k):

    exafs_mse_ref_k = mean over k in [kmin, kmax] of (k^w (chi_run - chi_ref))^2

with no E0 shift and no S0^2 (both spectra come from the same FEFF potentials and paths).
Leave one seed out, at every N: a run of seed s is scored against the mean of the
reference's seeds other than s, so that every N is compared with the same number of
reference seeds (the reference's own runs included, whose score is then the seed-to-seed
noise rather than zero) and a run never shares a training subset or MD seed with the
reference it is scored against.  With a one-seed reference only runs of other seeds can
be scored (NaN otherwise).  A run whose MD is unstable (:mod:`dualbench.runstatus`) is
not scored and is no reference: NaN, with ``status`` and ``failure`` saying why.

Uncertainty, as against the experiment (:mod:`dualbench.scoring.sampling_uncertainty`,
:mod:`dualbench.stats`): each snapshot series' autocorrelation (``exafs_ref_g``,
effective snapshots ``exafs_ref_n_eff`` of the run), the noise floor
``exafs_ref_noise_floor_k``, the mean of k^2w (se_run^2 + se_ref^2) with
autocorrelation-aware standard errors (the score two spectra equal in expectation would
get from their sampling alone; ``exafs_mse_ref_k_debiased`` = score minus floor), and
basic 95 % circular-block bootstrap intervals over the snapshots of the run and of each
reference seed (``_lo``, ``_hi``; none when a series holds fewer than
:data:`dualbench.stats.MIN_BLOCKS` blocks or its g is unresolved).  The N from which on the
simulated EXAFS stops changing comes from :mod:`dualbench.scoring.convergence` applied to
``exafs_mse_ref_k``, paired by seed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dualbench.exafs import FTSettings, read_chi_k
from dualbench.io import write_csv
from dualbench.scoring.sampling_uncertainty import (
    MIN_SNAPSHOTS,
    N_BOOTSTRAP,
    read_snapshot_means,
)
from dualbench.scoring.unstable import STATUS_COLUMNS, run_failures, status_of
from dualbench.stats import (
    SeriesStats,
    basic_interval,
    bootstrap_usable,
    circular_block_bootstrap_means,
)

log = logging.getLogger(__name__)

COLUMNS = [
    "exafs_mse_ref_k", "exafs_mse_ref_k_lo", "exafs_mse_ref_k_hi", "exafs_ref_noise_floor_k",
    "exafs_mse_ref_k_debiased", "exafs_ref_g", "exafs_ref_n_eff", "n_reference_seeds",
    "reference",
]


def resolve_reference(setting: Mapping[str, Any] | None, models: Sequence[str],
                      n_frames: Sequence[int]) -> tuple[str, int]:
    """(model, N) of ``exafs.reference_model``: its ``model`` (null: the first) at its
    ``n_frames`` (null: the largest of ``n_frames``, the N the EXAFS arm runs)."""
    setting = setting or {}
    model = setting.get("model") or models[0]
    n = setting.get("n_frames")
    n = max(n_frames) if n is None else int(n)
    if model not in models:
        raise ValueError(f"exafs.reference_model.model {model!r} is not among {list(models)}")
    if n not in n_frames:
        raise ValueError(f"exafs.reference_model.n_frames {n} is not among the EXAFS arm's"
                         f" N {list(n_frames)}")
    return model, n


def _window(k: np.ndarray, ft: FTSettings) -> tuple[np.ndarray, np.ndarray]:
    inside = (k >= ft.kmin - 1e-9) & (k <= ft.kmax + 1e-9)
    return inside, k ** ft.kweight


def _mse(diff: np.ndarray, inside: np.ndarray, weight: np.ndarray) -> float:
    return float(np.mean((weight[inside] * diff[inside]) ** 2))


@dataclass
class SnapshotSeries:
    """One run's snapshot series with what every score needs from it computed once:
    averaged chi, the autocorrelation-aware variance of that mean per k, its correlation
    and its circular-bootstrap replicate means (None below :data:`MIN_SNAPSHOTS`)."""

    chi: np.ndarray
    stderr2: np.ndarray
    series: SeriesStats
    replicates: np.ndarray | None

    @classmethod
    def from_run(cls, chi: np.ndarray, snapshots: np.ndarray, weight: np.ndarray,
                 rng: np.random.Generator) -> SnapshotSeries:
        series = SeriesStats.of(snapshots, weight) if len(snapshots) >= 2 else SeriesStats(
            len(snapshots), 1.0)
        if len(snapshots) < 2:
            stderr2 = np.full(snapshots.shape[1], np.nan)
        else:
            stderr2 = series.g * snapshots.var(axis=0, ddof=1) / len(snapshots)
        # a series of too few bootstrap blocks gives no interval (its replicates would be
        # rotations of one series: a collapsed interval), not a wrong one
        reps = (circular_block_bootstrap_means(snapshots, N_BOOTSTRAP, rng, series.block)
                if len(snapshots) >= MIN_SNAPSHOTS and bootstrap_usable(series) else None)
        return cls(chi, stderr2, series, reps)


def score_run(run: SnapshotSeries, reference: Sequence[SnapshotSeries], k: np.ndarray,
              ft: FTSettings) -> dict[str, float]:
    """The scores of one run against the mean of ``reference`` seeds, on the same k grid."""
    out = dict.fromkeys(COLUMNS[:-1], np.nan)
    out.update(exafs_ref_g=run.series.g, exafs_ref_n_eff=run.series.n_eff,
               n_reference_seeds=len(reference))
    if not reference:
        return out
    inside, weight = _window(k, ft)
    chi_ref = np.mean([r.chi for r in reference], axis=0)
    score = _mse(run.chi - chi_ref, inside, weight)
    se2_ref = np.sum([r.stderr2 for r in reference], axis=0) / len(reference) ** 2
    floor = float(np.mean((weight[inside] ** 2) * (run.stderr2 + se2_ref)[inside]))
    out.update(exafs_mse_ref_k=score, exafs_ref_noise_floor_k=floor,
               exafs_mse_ref_k_debiased=score - floor)
    if run.replicates is not None and all(r.replicates is not None for r in reference):
        ref_reps = np.mean([r.replicates for r in reference], axis=0)
        reps = np.mean((weight[inside] * (run.replicates - ref_reps)[:, inside]) ** 2, axis=1)
        lo, hi = basic_interval(score, reps)
        out["exafs_mse_ref_k_lo"] = float(max(lo, 0.0))
        out["exafs_mse_ref_k_hi"] = float(max(hi, 0.0))
    return out


def reference_stage(
    runs: Sequence[Mapping[str, Any]],
    chi_files: Sequence[str | Path],
    snapshot_files: Sequence[str | Path],
    *,
    reference: tuple[str, int],
    ft: Mapping[str, Any],
    out_csv: str | Path,
    seed: int = 0,
) -> pd.DataFrame:
    """The ``compare_reference`` job: every run of a material against the reference
    (model, N); writes ``reference_comparison.csv`` (material, model, n_frames, seed and
    :data:`COLUMNS`)."""
    if not len(runs) == len(chi_files) == len(snapshot_files):
        raise ValueError("one chi_k.csv and one chi_snapshots.npz per run")
    settings = FTSettings.from_config(ft)
    failures = run_failures(snapshot_files, len(runs))
    ref_model, ref_n = reference
    if not any(run["model"] == ref_model and int(run["n"]) == ref_n for run in runs):
        raise ValueError(f"no run of the reference {ref_model} N={ref_n}")
    data = {}
    for i, (chi_file, snap_file) in enumerate(zip(chi_files, snapshot_files, strict=True)):
        if failures[i] is not None:
            continue
        k, chi = read_chi_k(chi_file)
        k_snap, means = read_snapshot_means(snap_file)
        if not np.allclose(k, k_snap):
            raise ValueError(f"{snap_file}: k grid differs from {chi_file}")
        data[i] = (k, chi, means)
    series = _series(runs, data, settings, seed)
    ref_seeds = {int(runs[i]["seed"]): ser for i, ser in series.items()
                 if runs[i]["model"] == ref_model and int(runs[i]["n"]) == ref_n}
    if not ref_seeds:
        log.warning("every run of the reference %s N=%d is unstable: no scores", ref_model,
                    ref_n)
    rows = []
    for i, run in enumerate(runs):
        refs = [v for s, v in sorted(ref_seeds.items()) if s != int(run["seed"])]
        scores = (score_run(series[i], refs, next(iter(data.values()))[0], settings)
                  if i in series else dict.fromkeys(COLUMNS[:-1], np.nan))
        rows.append({
            "material": run["material"], "model": run["model"], "n_frames": int(run["n"]),
            "seed": int(run["seed"]), **scores, "reference": f"{ref_model} N={ref_n}",
            **status_of(failures[i]),
        })
    table = pd.DataFrame(rows, columns=["material", "model", "n_frames", "seed", *COLUMNS,
                                        *STATUS_COLUMNS])
    write_csv(out_csv, table)
    return table


def _series(runs: Sequence[Mapping[str, Any]], data: Mapping[int, tuple], settings: FTSettings,
            seed: int) -> dict[int, SnapshotSeries]:
    """The snapshot series of the stable runs (``data``: index -> (k, chi, means)), on one
    k grid."""
    if not data:
        return {}
    k0 = next(iter(data.values()))[0]
    for i, (k, _, _) in data.items():
        if len(k) != len(k0) or not np.allclose(k, k0):
            raise ValueError(f"run {runs[i]}: k grid differs from the other runs'")
    rng = np.random.default_rng(seed)
    inside, kw = _window(k0, settings)
    weight = np.where(inside, kw, 0.0)
    return {i: SnapshotSeries.from_run(chi, means, weight, rng)
            for i, (_, chi, means) in data.items()}
