"""Statistics of correlated MD averages and of small paired seed sweeps.

MD snapshots are a time series: consecutive snapshots are correlated, so the variance of
their mean is ``g`` times the naive ``var / n``, with the *statistical inefficiency*

    g = 1 + 2 sum_{t >= 1} rho(t)

(``rho`` the normalised autocovariance at lag t, in snapshots; g = 1 for independent
snapshots) and ``n_eff = n / g`` the effective number of independent samples.  g is
estimated with Sokal's automatic window (the sum runs to the smallest lag M with
M >= 2.5 g(M)), never below 1, with the bias of the short series corrected: subtracting
the sample mean lowers each autocovariance by about var(mean), which for the 50
snapshots of a laptop run would halve g (measured on AR(1) series: 2.2 instead of 4);
``g = g_raw / (1 - (2M + 1 - g_raw) / n)`` removes it (AR(1), n = 50: 4.0 +- 0.3 for
g = 4 on a 200-component series).  When no window fits in the series (M would need more
than about n/4 lags), the largest corrected value is taken and the series is flagged
``resolved = False``: too short to know its correlation well.  For a series of vectors
(a per-snapshot chi(k)) one g is taken from the weighted sum of the per-component
autocovariances, ``C(t) = sum_j w_j^2 C_j(t)``: with the weights of a squared-error score
that is exactly the factor by which the score's noise floor grows.

Resampling: a circular block bootstrap (Politis & Romano 1992: blocks of ``b`` consecutive
rows starting anywhere, wrapping around the end, so every row has the same weight and the
replicates of a linear statistic centre on the estimate), with ``b = ceil(3 g)``; its
variance of a mean then falls short of the true one by about ``sum |t| C(t) / (b sum C(t))``,
under 15 % for an AR(1) series of any g.  Intervals are *basic* (reverse percentile):
``[2 s - q_hi, 2 s - q_lo]`` with ``q`` the replicates' quantiles.  For a squared-error
score, whose replicates sit above the score by the noise floor, this centres the interval
on the noise-free score rather than on the biased one.

A block bootstrap needs several blocks: with fewer than :data:`MIN_BLOCKS` in the series
(or a series too short to resolve g) its replicates are rotations of almost the same
series and its interval collapses to nothing (a 20-snapshot run with g = 6 has a block of
18-20: every replicate mean equals the estimate).  There :func:`linearised_interval` is
used instead: the score's linear response to each snapshot's deviation (exact for a
squared-error score), its autocorrelation-aware standard error, the noise floor from the
quadratic response, and Student t at n_eff - 1 degrees of freedom.

Seeds: fine-tuning subsets are nested (the subset for N is the first N frames of the
seed's order) and the MD seed is the sweep seed, so the scores of one seed at two N are
paired; with two or three seeds the 95 % half-width of a mean is Student's t (12.7 and
4.3 standard errors), not 1.96.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

#: Sokal's window constant: the autocorrelation sum runs to M >= SOKAL_C * g(M).
SOKAL_C = 2.5
#: Circular-bootstrap block length in units of the statistical inefficiency g.
BLOCK_PER_G = 3.0
#: Fewest circular-bootstrap blocks a series must hold for the bootstrap interval.
MIN_BLOCKS = 5


def autocovariance(series: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Autocovariance C(t), t = 0 .. n-1, of a series (n,) or of a vector series (n, m)
    summed over components with weights w_j^2 (default 1); the biased (1/n) estimator."""
    x = np.asarray(series, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    n = x.shape[0]
    x = x - x.mean(axis=0)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spec = np.fft.rfft(x, n=size, axis=0)
    acov = np.fft.irfft(spec * np.conj(spec), n=size, axis=0)[:n] / n
    w2 = np.ones(x.shape[1]) if weights is None else np.asarray(weights, dtype=float) ** 2
    return acov @ w2


def _inefficiency(series: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, bool]:
    """(g, whether Sokal's window was reached within the usable lags): see the module."""
    acov = autocovariance(series, weights)
    n = len(acov)
    if n < 4 or acov[0] <= 0:
        return 1.0, n >= 4
    lags = np.arange(1, n)
    raw = 1.0 + 2.0 * np.cumsum(acov[1:] / acov[0])
    # Subtracting the sample mean lowers every C(t) by about var(mean) = C(0) g / n:
    # summed over 2M + 1 lags this biases g by -(2M + 1 - g) g / n, undone here while
    # the window leaves at least half of that (beyond, nothing is left to estimate).
    denom = 1.0 - (2 * lags + 1 - raw) / n
    usable = denom >= 0.5
    g = np.where(usable, raw / np.where(usable, denom, 1.0), np.nan)
    window = np.flatnonzero(usable & (lags >= SOKAL_C * g))
    if window.size:
        return float(max(1.0, g[window[0]])), True
    return float(max(1.0, np.nanmax(g))) if usable.any() else float(max(1.0, raw[0])), False


def statistical_inefficiency(series: np.ndarray, weights: np.ndarray | None = None) -> float:
    """g = 1 + 2 sum rho(t) of a (vector) series in time order (see the module text):
    the variance of its mean over the naive var / n.  1 for fewer than 4 samples or a
    constant series (nothing to estimate from)."""
    return _inefficiency(series, weights)[0]


@dataclass(frozen=True)
class SeriesStats:
    """Correlation of one time series of snapshots: ``g`` (statistical inefficiency, in
    snapshots), ``n`` snapshots, ``n_eff = n / g``, and the circular-bootstrap block."""

    n: int
    g: float
    resolved: bool = True  # Sokal's window reached: the series is long enough for its g

    @property
    def n_eff(self) -> float:
        return self.n / self.g

    @property
    def block(self) -> int:
        return block_length(self.g, self.n)

    @classmethod
    def of(cls, series: np.ndarray, weights: np.ndarray | None = None) -> SeriesStats:
        return cls(len(series), *_inefficiency(series, weights))


def bootstrap_usable(series: SeriesStats) -> bool:
    """Whether a block bootstrap of ``series`` can show its noise: g resolved and at least
    :data:`MIN_BLOCKS` blocks."""
    return series.resolved and series.n >= MIN_BLOCKS * series.block


@dataclass(frozen=True)
class LinearisedInterval:
    """A squared-error score's interval from :func:`linearised_interval` (arrays, one per
    score): ``lo``, ``hi``, the noise ``floor`` it is centred below the score by, and the
    t degrees of freedom ``dof``."""

    lo: np.ndarray
    hi: np.ndarray
    floor: np.ndarray
    dof: float


def linearised_interval(
    score: Callable[[np.ndarray], np.ndarray], means: np.ndarray, g: float,
    confidence: float = 0.95, step: float = 1e-2,
) -> LinearisedInterval:
    """Interval of ``score(mean of means)`` (an array of squared-error scores of the
    average of correlated snapshot rows ``means``, in time order), for a series too short
    for a block bootstrap.

    Each row's deviation d_s from the average enters the score as L d_s + Q(d_s) (central
    differences of ``score`` at ``step``: exact for a quadratic score).  The linear part's
    standard error is sqrt(g' var(L d) / n), g' the larger of ``g`` (the snapshots') and
    that of the L d series; the noise floor is g' mean(Q(d)) / (n - 1) (the score's excess
    from the average's own noise), with a standard error of floor * sqrt(2 / dof).  The
    interval is [score - floor -+ t se], t at dof = max(1, n / g' - 1), clipped at 0.
    """
    x = np.asarray(means, dtype=float)
    n = len(x)
    centre = x.mean(axis=0)
    base = np.atleast_1d(np.asarray(score(centre), dtype=float))
    dev = x - centre
    plus = np.array([np.atleast_1d(score(centre + step * d)) for d in dev])
    minus = np.array([np.atleast_1d(score(centre - step * d)) for d in dev])
    linear = (plus - minus) / (2 * step)
    quadratic = (plus + minus - 2 * base) / (2 * step**2)
    g_lin = max(statistical_inefficiency(linear[:, j]) for j in range(linear.shape[1]))
    g_all = max(float(g), g_lin, 1.0)
    dof = max(1.0, n / g_all - 1.0)
    floor = g_all * quadratic.mean(axis=0) / (n - 1)
    se = np.sqrt(g_all * linear.var(axis=0, ddof=1) / n + floor**2 * 2.0 / dof)
    half = _st.t.ppf(0.5 + confidence / 2.0, dof) * se
    centre_score = base - floor
    return LinearisedInterval(np.clip(centre_score - half, 0.0, None),
                              np.clip(centre_score + half, 0.0, None), floor, dof)


def block_length(g: float, n: int) -> int:
    """Circular-bootstrap block length for a series of ``n`` with inefficiency ``g``."""
    return int(min(max(1, n), max(1, np.ceil(BLOCK_PER_G * g))))


def standard_error(series: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Standard error of the mean of each component of a series (n,) or (n, m), counting
    the autocorrelation: sqrt(g var / n), one g for the (weighted) series.  NaN for n < 2."""
    x = np.asarray(series, dtype=float)
    if len(x) < 2:
        return np.full(x.shape[1:], np.nan)
    g = statistical_inefficiency(x, weights)
    return np.sqrt(g * x.var(axis=0, ddof=1) / len(x))


def circular_block_bootstrap_means(
    rows: np.ndarray, n_boot: int, rng: np.random.Generator, block: int
) -> np.ndarray:
    """Circular block bootstrap of the mean over rows (in time order): (n_boot, ...)
    replicate means from blocks of ``block`` rows starting anywhere and wrapping round."""
    rows = np.asarray(rows, dtype=float)
    n = len(rows)
    block = int(min(max(1, block), n))
    n_blocks = int(np.ceil(n / block))
    starts = rng.integers(0, n, size=(n_boot, n_blocks))
    index = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n_boot, -1)[:, :n]
    return rows[index % n].mean(axis=1)


def basic_interval(
    estimate: float | np.ndarray, replicates: np.ndarray, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Basic (reverse-percentile) bootstrap interval ``[2 s - q_hi, 2 s - q_lo]``."""
    alpha = 1.0 - confidence
    q_lo, q_hi = np.percentile(replicates, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
    estimate = np.asarray(estimate, dtype=float)
    return 2 * estimate - q_hi, 2 * estimate - q_lo


def t_quantile(confidence_two_sided: float, dof: int) -> float:
    """Student t quantile of a two-sided interval (0.95 -> 12.71 at 1 dof)."""
    return float(_st.t.ppf(0.5 + confidence_two_sided / 2.0, dof))


def t_half_width(values: np.ndarray, confidence: float = 0.95) -> float:
    """Half-width of the Student-t interval of the mean of ``values``; NaN below 2."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan")
    return t_quantile(confidence, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))


def block_standard_error(values: Sequence[float] | np.ndarray) -> float | None:
    """Standard error of the mean of a time series from non-overlapping block averages.

    Blocks of ``ceil(sqrt(n))`` consecutive samples (the first ``n mod block`` samples are
    left out); the error is the spread of the block means over the square root of their
    number, which holds for correlation times shorter than a block.  None for fewer than
    two blocks.
    """
    x = np.asarray(values, dtype=float)
    block = max(1, int(np.ceil(np.sqrt(x.size))))
    n_blocks = x.size // block
    if n_blocks < 2:
        return None
    means = x[x.size - n_blocks * block :].reshape(n_blocks, block).mean(axis=1)
    return float(means.std(ddof=1) / np.sqrt(n_blocks))
