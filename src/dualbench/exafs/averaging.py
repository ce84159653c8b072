"""The configuration average, its standard error and its convergence record."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dualbench.exafs.chunks import ChunkResult, read_chunk
from dualbench.exafs.ft import fourier_transform, write_chi_k, write_chi_r
from dualbench.exafs.settings import K_GRID, FTSettings
from dualbench.io import atomic_path, write_csv
from dualbench.runstatus import RunFailure
from dualbench.stats import statistical_inefficiency

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class AveragedChi:
    """Configuration average of chi(k) on ``k`` (1/Å).

    ``chi_stderr`` is the standard error of the mean on each k from the per-snapshot
    means (absorbers of one snapshot are not independent), counting the snapshots' time
    correlation: sqrt(g var / n_snapshots) with ``g`` the statistical inefficiency of the
    snapshot series (:mod:`dualbench.stats`; one g for the series weighted as the scores
    weigh k) and ``n_eff = n_snapshots / g`` the effective number of independent
    snapshots.  With one snapshot, the spread over its absorbers (g = 1); NaN for one
    spectrum (or one snapshot averaged into a single row).
    """

    k: np.ndarray
    chi: np.ndarray
    chi_stderr: np.ndarray
    n_snapshots: int
    n_spectra: int
    snapshot_means: np.ndarray  # (n_snapshots, nk), in frame order
    frames: np.ndarray | None = None  # (n_snapshots,) frame indices
    g: float = 1.0  # statistical inefficiency of the snapshot series, in snapshots

    @property
    def n_eff(self) -> float:
        """Effective number of independent snapshots, n_snapshots / g."""
        return self.n_snapshots / self.g


def average_spectra(
    chi: np.ndarray,
    frame_index: Sequence[int],
    k: np.ndarray | None = None,
    weights: Sequence[float] | None = None,
    score_weight: np.ndarray | None = None,
) -> AveragedChi:
    """Average spectra (rows of ``chi``, on ``k``: default :data:`K_GRID`) over absorbers
    and snapshots; a row of weight w stands for the mean of w spectra.  ``score_weight``
    (per k; default k^2) weighs the components of the snapshot series for its one
    autocorrelation (:func:`ft_weight` gives the scores' weights)."""
    k = K_GRID if k is None else k
    chi = np.asarray(chi, dtype=float)
    frame_index = np.asarray(frame_index)
    if chi.shape[0] == 0:
        raise ValueError("no spectra to average")
    w = np.ones(len(chi)) if weights is None else np.asarray(weights, dtype=float)
    frames = np.unique(frame_index)
    means = np.array(
        [np.average(chi[frame_index == f], axis=0, weights=w[frame_index == f]) for f in frames]
    )
    mean = np.average(chi, axis=0, weights=w)
    g = 1.0
    if len(frames) >= 2:
        weight = np.asarray(k, dtype=float) ** 2 if score_weight is None else score_weight
        g = statistical_inefficiency(means, weight)
        stderr = np.sqrt(g * means.var(axis=0, ddof=1) / len(frames))
    elif chi.shape[0] >= 2:
        stderr = chi.std(axis=0, ddof=1) / np.sqrt(chi.shape[0])
    else:
        stderr = np.full_like(mean, np.nan)
    return AveragedChi(
        k=np.asarray(k, dtype=float),
        chi=mean,
        chi_stderr=stderr,
        n_snapshots=len(frames),
        n_spectra=int(round(w.sum())),
        snapshot_means=means,
        frames=frames,
        g=g,
    )


def ft_weight(k: np.ndarray, ft: FTSettings) -> np.ndarray:
    """k^w inside the FT's k window, 0 outside: how the scores weigh k."""
    k = np.asarray(k, dtype=float)
    return np.where((k >= ft.kmin) & (k <= ft.kmax), k**ft.kweight, 0.0)


def average_chunks(paths: Sequence[str | Path], ft: FTSettings | None = None) -> AveragedChi:
    """Gather the chunk files of one run and average them (see :func:`average_results`)."""
    return average_results([read_chunk(path) for path in paths], ft,
                           source=str([str(p) for p in paths]))


def average_results(
    chunks: Sequence[ChunkResult], ft: FTSettings | None = None, source: str = "chunks"
) -> AveragedChi:
    """Average the chunks of one run (``ft``: the scores' k weights for the
    autocorrelation, see :func:`average_spectra`); ``source`` names them in errors.
    Refused: no spectra, a (frame, absorber) in two chunks."""
    chunks = [c for c in chunks if c.chi.shape[0]]
    if not chunks:
        raise ValueError(f"no spectra in the chunks {source}")
    frame_index = np.concatenate([c.frame_index for c in chunks])
    absorber_index = np.concatenate([c.absorber_index for c in chunks])
    pairs = set(zip(frame_index.tolist(), absorber_index.tolist(), strict=True))
    if len(pairs) != len(frame_index):
        raise ValueError(f"chunks {source} overlap: a (frame, absorber) repeats")
    weights = np.concatenate([c.weights() for c in chunks])
    score_weight = None if ft is None else ft_weight(K_GRID, ft)
    return average_spectra(np.vstack([c.chi for c in chunks]), frame_index, weights=weights,
                           score_weight=score_weight)


def convergence_record(avg: AveragedChi, ft: FTSettings) -> pd.DataFrame:
    """The running average against the number of snapshots (in frame order).

    Columns: n_snapshots; rms_dev_kw, the RMS of k^w (chi_n - chi_final) inside
    [kmin, kmax]; chir_max, max |chi(R)| of the running average; chir_max_dev, its
    difference from the final average's.
    """
    import pandas as pd

    k = avg.k
    inside = (k >= ft.kmin) & (k <= ft.kmax)
    kw = k**ft.kweight
    final_kw = avg.chi * kw
    _, final_r = fourier_transform(k, avg.chi, ft)
    final_max = float(np.abs(final_r).max())
    rows = []
    running = np.cumsum(avg.snapshot_means, axis=0)
    for n in range(1, avg.n_snapshots + 1):
        chi_n = running[n - 1] / n
        _, chir = fourier_transform(k, chi_n, ft)
        chir_max = float(np.abs(chir).max())
        rows.append(
            {
                "n_snapshots": n,
                "rms_dev_kw": float(np.sqrt(np.mean((chi_n * kw - final_kw)[inside] ** 2))),
                "chir_max": chir_max,
                "chir_max_dev": chir_max - final_max,
            }
        )
    return pd.DataFrame(rows)


def write_failed_average(
    failure: RunFailure,
    out_chi_k: str | Path,
    out_chi_r: str | Path,
    out_convergence: str | Path | None = None,
    out_snapshots: str | Path | None = None,
) -> None:
    """The average of an unstable run (:mod:`dualbench.runstatus`): chi_k.csv, chi_r.csv
    and convergence.csv header-only, chi_snapshots.npz with no snapshot and the failure."""
    import pandas as pd

    write_csv(out_chi_k, pd.DataFrame(columns=["k", "chi", "chi_stderr"]))
    write_csv(out_chi_r, pd.DataFrame(columns=["r", "chir_mag"]))
    if out_convergence is not None:
        columns = ["n_snapshots", "rms_dev_kw", "chir_max", "chir_max_dev"]
        write_csv(out_convergence, pd.DataFrame(columns=columns))
    if out_snapshots is not None:
        with atomic_path(out_snapshots) as tmp, tmp.open("wb") as fh:
            np.savez(fh, k=K_GRID, snapshot_means=np.zeros((0, len(K_GRID))),
                     frames=np.zeros(0, dtype=int), g=np.nan, n_eff=0.0,
                     failure=np.array(failure.to_json()))
    log.warning("no average: %s", failure.text())


def write_average(
    avg: AveragedChi,
    ft: FTSettings,
    out_chi_k: str | Path,
    out_chi_r: str | Path,
    out_convergence: str | Path | None = None,
    out_snapshots: str | Path | None = None,
) -> None:
    """Write chi_k.csv (k, chi, chi_stderr), chi_r.csv (r, chir_mag), convergence.csv
    and chi_snapshots.npz (k, snapshot_means, frames: for the comparison's bootstrap)."""
    write_chi_k(out_chi_k, avg.k, avg.chi, avg.chi_stderr)
    if out_snapshots is not None:
        frames = avg.frames if avg.frames is not None else np.arange(avg.n_snapshots)
        with atomic_path(out_snapshots) as tmp, tmp.open("wb") as fh:
            np.savez(fh, k=avg.k, snapshot_means=avg.snapshot_means, frames=frames,
                     g=avg.g, n_eff=avg.n_eff)
    r, chir = fourier_transform(avg.k, avg.chi, ft)
    write_chi_r(out_chi_r, r, chir)
    if out_convergence is not None:
        write_csv(out_convergence, convergence_record(avg, ft))
    log.info(
        "average of %d spectra from %d snapshots (statistical inefficiency g %.2f: %.1f"
        " effective snapshots): max |chi(R)| %.3f at %.2f Å",
        avg.n_spectra, avg.n_snapshots, avg.g, avg.n_eff, float(np.abs(chir).max()),
        float(r[np.argmax(abs(chir))]),
    )
