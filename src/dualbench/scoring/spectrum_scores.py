"""A simulated chi(k) placed on the measured one and its scores against it.

The E0 shift dE follows larch's convention for a path's ``e0``: the model at k is FEFF's
chi at q = sqrt(k^2 - ETOK dE) (:func:`shifted_chi`), scaled by S0^2, either fixed or its
closed-form least-squares value (:func:`profile`).  The scores (:func:`score_model`) are
on the experiment's k grid, with the one FT of :mod:`dualbench.exafs`: ``exafs_mse_k``,
``exafs_mse_r`` and ``exafs_rfactor`` as defined in
:mod:`dualbench.scoring.against_experiment`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dualbench.exafs import FTSettings, fourier_transform, import_larch


def shifted_chi(
    k: np.ndarray, k_sim: np.ndarray, chi_sim: np.ndarray, e0_shift_eV: float
) -> np.ndarray:
    """chi_sim at q = sign * sqrt(|k^2 - ETOK dE|), on ``k`` (linear interpolation)."""
    import_larch()
    from larch.xafs.xafsutils import ETOK

    en = np.asarray(k, dtype=float) ** 2 - ETOK * float(e0_shift_eV)
    q = np.sign(en) * np.sqrt(np.abs(en))
    return np.interp(q, k_sim, chi_sim)


def check_grid(path: str, k: np.ndarray, ft: FTSettings) -> None:
    """Refuse a chi(k) (named ``path``) not on a uniform k grid or ending inside the FT
    window."""
    steps = np.diff(k)
    if len(k) < 2 or not np.allclose(steps, steps[0], rtol=1e-4, atol=1e-6):
        raise ValueError(f"{path}: column 'k': chi(k) must be on a uniform k grid")
    if k[-1] < ft.window_end - 1e-6:
        raise ValueError(
            f"{path}: ft.kmax: the FT window reaches k = {ft.window_end:g} 1/Å but the data"
            f" end at k = {k[-1]:.2f} 1/Å"
        )


@dataclass
class PreparedExperiment:
    """The measured chi(k) with what every score needs from it: the k window, the k^w
    weights and the FT settings."""

    k: np.ndarray
    chi_exp: np.ndarray
    inside_k: np.ndarray
    kw: np.ndarray
    ft: FTSettings
    _chir_exp: tuple[np.ndarray, np.ndarray] | None = None

    def chir_exp(self) -> tuple[np.ndarray, np.ndarray]:
        """(R, chi(R)) of the experiment, transformed once (every score and bootstrap
        replicate compares against it)."""
        if self._chir_exp is None:
            self._chir_exp = fourier_transform(self.k, self.chi_exp, self.ft)
        return self._chir_exp


def mse_k(prep: PreparedExperiment, model: np.ndarray) -> float:
    """Mean of (k^w chi_exp - k^w model)^2 over the k window."""
    diff = (prep.chi_exp - model)[prep.inside_k] * prep.kw[prep.inside_k]
    return float(np.mean(diff**2))


def profile(
    prep: PreparedExperiment, k_sim: np.ndarray, chi_sim: np.ndarray, de: float,
    s02: float | None,
) -> tuple[float, float]:
    """(k-space MSE, S0^2) at E0 shift ``de``: S0^2 fixed or its least-squares value."""
    base = shifted_chi(prep.k, k_sim, chi_sim, de)
    if s02 is None:
        y = (prep.chi_exp * prep.kw)[prep.inside_k]
        m = (base * prep.kw)[prep.inside_k]
        denom = float(np.dot(m, m))
        amp = max(0.0, float(np.dot(y, m)) / denom) if denom > 0 else 0.0
    else:
        amp = float(s02)
    return mse_k(prep, amp * base), amp


def score_model(
    prep: PreparedExperiment, k_sim: np.ndarray, chi_sim: np.ndarray, de: float, amp: float
) -> tuple[float, float, float]:
    """(mse_k, mse_r, rfactor) of the model with shift ``de`` and S0^2 ``amp``."""
    ft = prep.ft
    model = amp * shifted_chi(prep.k, k_sim, chi_sim, de)
    score_k = mse_k(prep, model)
    r, chir_exp = prep.chir_exp()
    _, chir_mod = fourier_transform(prep.k, model, ft)
    inside_r = (r >= ft.rmin) & (r <= ft.rmax)
    mag_diff = np.abs(chir_exp[inside_r]) - np.abs(chir_mod[inside_r])
    mse_r = float(np.mean(mag_diff**2))
    num = float(np.sum(np.abs(chir_exp[inside_r] - chir_mod[inside_r]) ** 2))
    den = float(np.sum(np.abs(chir_exp[inside_r]) ** 2))
    return score_k, mse_r, num / den if den > 0 else float("nan")


#: The score columns of a comparison, in the order the tables give them.
METRIC_COLUMNS = (
    "exafs_mse_k", "exafs_mse_k_lo", "exafs_mse_k_hi",
    "exafs_mse_r", "exafs_mse_r_lo", "exafs_mse_r_hi",
    "exafs_rfactor", "exafs_noise_floor_k", "exafs_mse_k_debiased",
    "exafs_n_snapshots", "exafs_g", "exafs_n_eff", "exafs_block", "exafs_interval_dof",
    "exafs_mse_k_yardstick_sd", "exafs_mse_k_d_s02", "exafs_mse_k_d_e0",
    "e0_shift_eV", "s02", "exafs_mse_k_fitted_s02", "s02_fitted",
)


@dataclass
class ComparisonResult:
    """Scores of one simulation against the experiment (NaN intervals without snapshots)."""

    label: str
    exafs_mse_k: float
    exafs_mse_r: float
    exafs_rfactor: float
    e0_shift_eV: float
    s02: float
    s02_mode: str  # experiment, fitted or fixed
    e0_mode: str  # experiment, shared, per_model or fixed
    exafs_mse_k_fitted_s02: float = float("nan")
    s02_fitted: float = float("nan")
    exafs_mse_k_lo: float = float("nan")
    exafs_mse_k_hi: float = float("nan")
    exafs_mse_r_lo: float = float("nan")
    exafs_mse_r_hi: float = float("nan")
    exafs_noise_floor_k: float = float("nan")
    exafs_mse_k_debiased: float = float("nan")
    exafs_n_snapshots: float = float("nan")
    exafs_g: float = float("nan")  # statistical inefficiency of the snapshot series
    exafs_n_eff: float = float("nan")
    exafs_block: float = float("nan")  # circular-bootstrap block, in snapshots
    exafs_interval_dof: float = float("nan")  # t dof of a linearised interval; NaN: bootstrap
    exafs_mse_k_yardstick_sd: float = float("nan")
    exafs_mse_k_d_s02: float = float("nan")
    exafs_mse_k_d_e0: float = float("nan")

    def metrics(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in METRIC_COLUMNS}
