"""A score's MD sampling noise, from the run's per-snapshot means (:mod:`dualbench.stats`).

With the run's per-snapshot means (``chi_snapshots.npz``, in time order) the score's
sampling noise counts the snapshots' autocorrelation: one statistical inefficiency g of
the series (weighted as the score weighs k), ``exafs_n_eff = n / g`` effective snapshots,
the noise floor ``exafs_noise_floor_k`` = mean over the window of (S0^2 k^w se(k))^2 with
se the autocorrelation-aware standard error of the average (the amount by which sampling
noise alone raises a squared error), and a circular block bootstrap over snapshots
(blocks of ``ceil(3 g)``, each snapshot carrying all its absorbers) whose *basic* 95 %
intervals (``_lo``, ``_hi``) are centred on the noise-free score: ``exafs_mse_k_debiased``
= score minus floor.  A run too short for the bootstrap (fewer than
:data:`dualbench.stats.MIN_BLOCKS` blocks, or g unresolved) gets the linearised Student-t
interval of :func:`dualbench.stats.linearised_interval` instead, its degrees of freedom in
``exafs_interval_dof`` (NaN for the bootstrap).

:data:`N_BOOTSTRAP`, :data:`MIN_SNAPSHOTS` and :func:`read_snapshot_means` are shared
with :mod:`dualbench.scoring.against_reference_model`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dualbench.exafs.averaging import ft_weight
from dualbench.scoring.spectrum_scores import (
    ComparisonResult,
    PreparedExperiment,
    score_model,
    shifted_chi,
)
from dualbench.stats import (
    SeriesStats,
    basic_interval,
    bootstrap_usable,
    circular_block_bootstrap_means,
    linearised_interval,
)

log = logging.getLogger(__name__)

#: Bootstrap replicates of the score intervals.
N_BOOTSTRAP = 400
#: Fewest snapshots a sampling interval is given for (two cannot show a correlation).
MIN_SNAPSHOTS = 3


def read_snapshot_means(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(k, per-snapshot mean chi (n_snapshots, n_k)) of a run's chi_snapshots.npz."""
    with np.load(path, allow_pickle=False) as data:
        return np.array(data["k"]), np.array(data["snapshot_means"])


def add_sampling_uncertainty(
    result: ComparisonResult,
    prep: PreparedExperiment,
    ks: np.ndarray,
    means: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Autocorrelation, noise floor and basic 95 % bootstrap intervals of mse_k and mse_r
    (module text), in place.  Fewer than :data:`MIN_SNAPSHOTS` snapshots give none."""
    de, amp = result.e0_shift_eV, result.s02
    result.exafs_n_snapshots = len(means)
    if len(means) < MIN_SNAPSHOTS:
        log.warning("%s: %d snapshots, fewer than %d: no sampling interval", result.label,
                    len(means), MIN_SNAPSHOTS)
        return
    series = SeriesStats.of(means, amp * ft_weight(ks, prep.ft))
    if not series.resolved:
        log.warning("%s: %d snapshots are too few to resolve their autocorrelation (g about"
                    " %.1f): the intervals are rough", result.label, len(means), series.g)
    result.exafs_g, result.exafs_n_eff, result.exafs_block = (
        series.g, series.n_eff, series.block)
    stderr = np.sqrt(series.g * means.var(axis=0, ddof=1) / len(means))
    noise = amp * shifted_chi(prep.k, ks, stderr, de) * prep.kw
    result.exafs_noise_floor_k = float(np.mean(noise[prep.inside_k] ** 2))
    result.exafs_mse_k_debiased = result.exafs_mse_k - result.exafs_noise_floor_k
    if bootstrap_usable(series):
        replicates = circular_block_bootstrap_means(means, N_BOOTSTRAP, rng, series.block)
        scores = np.array([score_model(prep, ks, chi_b, de, amp)[:2] for chi_b in replicates])
        lo, hi = basic_interval([result.exafs_mse_k, result.exafs_mse_r], scores)
        lo, hi = np.clip(lo, 0.0, None), np.clip(hi, 0.0, None)
    else:
        log.warning("%s: %d snapshots hold %.1f bootstrap blocks of %d: linearised"
                    " Student-t intervals", result.label, len(means),
                    len(means) / series.block, series.block)
        interval = linearised_interval(
            lambda chi: np.array(score_model(prep, ks, chi, de, amp)[:2]), means, series.g)
        lo, hi = interval.lo, interval.hi
        result.exafs_interval_dof = interval.dof
    result.exafs_mse_k_lo, result.exafs_mse_r_lo = (float(v) for v in lo)
    result.exafs_mse_k_hi, result.exafs_mse_r_hi = (float(v) for v in hi)
