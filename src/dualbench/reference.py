"""Without an experiment: how far each model's simulated EXAFS is from a reference model's.

This is convergence of the *simulation*, not agreement with a measurement.  The reference
is one (model, N) of the sweep (``exafs.reference_model``, by default the first model at
the largest N).  Every run is scored against the reference's seed-averaged chi(k):

    exafs_mse_ref_k = mean over k in [kmin, kmax] of (k^w (chi_run - chi_ref))^2

with no E0 shift and no S0^2 (both spectra come from the same FEFF potentials and paths).
A run of the reference (model, N) itself is scored against the reference's *other* seeds
(NaN with one seed), so that its score is the seed-to-seed noise rather than zero.

Uncertainty, as in :mod:`dualbench.compare`: a 95 % moving-block bootstrap over the
snapshots of the run and of each reference seed (``_lo``, ``_hi``, centred on the score),
and the noise floor ``exafs_ref_noise_floor_k``, the mean of k^2w (se_run^2 + se_ref^2):
the score two spectra equal in expectation would get from their sampling alone.  The N
from which on the simulated EXAFS stops changing comes from :mod:`dualbench.convergence`
applied to ``exafs_mse_ref_k``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dualbench.compare import N_BOOTSTRAP, block_bootstrap_means, read_snapshot_means
from dualbench.exafs import FTSettings, read_chi_k
from dualbench.io import write_csv

COLUMNS = [
    "exafs_mse_ref_k", "exafs_mse_ref_k_lo", "exafs_mse_ref_k_hi", "exafs_ref_noise_floor_k",
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


def _stderr2(means: np.ndarray) -> np.ndarray:
    if len(means) < 2:
        return np.full(means.shape[1], np.nan)
    return means.var(axis=0, ddof=1) / len(means)


@dataclass
class ReferenceSeed:
    """One seed of the reference run, with what every score needs from it computed once:
    averaged chi, the variance of that mean per k, and its bootstrap replicate means."""

    chi: np.ndarray
    stderr2: np.ndarray
    replicates: np.ndarray | None  # (N_BOOTSTRAP, n_k), None with fewer than 2 snapshots

    @classmethod
    def from_run(cls, chi: np.ndarray, snapshots: np.ndarray,
                 rng: np.random.Generator) -> ReferenceSeed:
        reps = block_bootstrap_means(snapshots, N_BOOTSTRAP, rng) if len(snapshots) >= 2 else None
        return cls(chi, _stderr2(snapshots), reps)


def score_run(
    k: np.ndarray,
    chi: np.ndarray,
    snapshots: np.ndarray,
    reference: Sequence[ReferenceSeed],
    ft: FTSettings,
    rng: np.random.Generator,
) -> dict[str, float]:
    """The scores of one run (its averaged chi and per-snapshot means) against the seeds
    of the reference, on the same k grid."""
    if not reference:
        return dict.fromkeys(COLUMNS[:-1], np.nan)
    inside, weight = _window(k, ft)
    chi_ref = np.mean([r.chi for r in reference], axis=0)
    out = {"exafs_mse_ref_k": _mse(chi - chi_ref, inside, weight)}
    se2_ref = np.sum([r.stderr2 for r in reference], axis=0) / len(reference) ** 2
    out["exafs_ref_noise_floor_k"] = float(
        np.mean((weight[inside] ** 2) * (_stderr2(snapshots) + se2_ref)[inside])
    )
    out.update(exafs_mse_ref_k_lo=np.nan, exafs_mse_ref_k_hi=np.nan)
    if len(snapshots) >= 2 and all(r.replicates is not None for r in reference):
        run_reps = block_bootstrap_means(snapshots, N_BOOTSTRAP, rng)
        ref_reps = np.mean([r.replicates for r in reference], axis=0)
        reps = np.mean((weight[inside] * (run_reps - ref_reps)[:, inside]) ** 2, axis=1)
        low, mid, high = np.percentile(reps, [2.5, 50.0, 97.5])
        score = out["exafs_mse_ref_k"]
        out["exafs_mse_ref_k_lo"] = float(max(score - (mid - low), 0.0))
        out["exafs_mse_ref_k_hi"] = float(score + (high - mid))
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
    data = []
    for run, chi_file, snap_file in zip(runs, chi_files, snapshot_files, strict=True):
        k, chi = read_chi_k(chi_file)
        k_snap, means = read_snapshot_means(snap_file)
        if not np.allclose(k, k_snap):
            raise ValueError(f"{snap_file}: k grid differs from {chi_file}")
        data.append((run, k, chi, means))
    k0 = data[0][1]
    for run, k, _, _ in data:
        if len(k) != len(k0) or not np.allclose(k, k0):
            raise ValueError(f"run {run}: k grid differs from the other runs'")
    ref_model, ref_n = reference
    rng = np.random.default_rng(seed)
    ref_seeds = {int(run["seed"]): ReferenceSeed.from_run(chi, means, rng)
                 for run, _, chi, means in data
                 if run["model"] == ref_model and int(run["n"]) == ref_n}
    if not ref_seeds:
        raise ValueError(f"no run of the reference {ref_model} N={ref_n}")
    rows = []
    for run, k, chi, means in data:
        own = run["model"] == ref_model and int(run["n"]) == ref_n
        refs = [v for s, v in sorted(ref_seeds.items()) if not (own and s == int(run["seed"]))]
        rows.append({
            "material": run["material"], "model": run["model"], "n_frames": int(run["n"]),
            "seed": int(run["seed"]), **score_run(k, chi, means, refs, settings, rng),
            "reference": f"{ref_model} N={ref_n}",
        })
    table = pd.DataFrame(rows, columns=["material", "model", "n_frames", "seed", *COLUMNS])
    write_csv(out_csv, table)
    return table
