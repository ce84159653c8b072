"""The yardstick's own uncertainty: the experiment fit's E0 shift and S0^2 in a score.

Every model of a material is scored with the E0 shift dE and S0^2 of the experiment's own
fit (:mod:`dualbench.scoring.experiment_fit`), which are known only to within their
fitted errors (and are correlated).  To first order a k-space score

    MSE_k(A, dE) = mean over the window of k^2w (chi_exp(k) - A chi_sim(q(k, dE)))^2,
    q = sqrt(k^2 - ETOK dE),

moves by ``dMSE/dA dA + dMSE/ddE ddE`` with

    dMSE/dA  = -2 mean k^2w (chi_exp - A chi_sim(q)) chi_sim(q)
    dMSE/ddE = -2 A mean k^2w (chi_exp - A chi_sim(q)) chi_sim'(q) dq/ddE,  dq/ddE = -ETOK / 2q

so its standard deviation is sqrt(g^T C g) with C the fit's covariance of (S0^2, dE).  The
same fit scores every model, so this is a band common to all of them (fully correlated
between models and N), to be reported apart from each model's sampling interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dualbench.exafs import import_larch


def score_gradient(
    k: np.ndarray,
    chi_exp: np.ndarray,
    weight: np.ndarray,
    model: np.ndarray,
    slope: np.ndarray,
    e0_shift_eV: float,
    s02: float,
) -> tuple[float, float]:
    """(dMSE/dS0^2, dMSE/dE0 per eV) of a k-space MSE (module text) on the grid ``k``:
    ``weight`` = k^2w inside the window and 0 outside, ``model`` = chi_sim(q) and
    ``slope`` = chi_sim'(q), both at q(k, e0_shift_eV)."""
    import_larch()
    from larch.xafs.xafsutils import ETOK

    inside = weight > 0
    q = np.sqrt(np.clip(k**2 - ETOK * float(e0_shift_eV), 1e-12, None))
    resid = weight * (chi_exp - s02 * model)
    d_s02 = -2.0 * float(np.sum(resid * model) / inside.sum())
    d_e0 = -2.0 * s02 * float(np.sum(resid * slope * (-ETOK / (2.0 * q))) / inside.sum())
    return d_s02, d_e0


def propagated_sd(
    d_s02: float, d_e0: float, fit: Mapping[str, Any] | None, *, s02: bool, e0: bool
) -> float:
    """One standard deviation of a score from the fit's errors (``s02_err``,
    ``e0_shift_eV_err``) and their correlation (``correl_s02_e0``, 0 when absent), for
    the parameters taken from the fit (``s02``, ``e0``); NaN without a fit or errors."""
    if fit is None or not (s02 or e0):
        return float("nan")
    sd_a = float(fit.get("s02_err", np.nan)) if s02 else 0.0
    sd_e = float(fit.get("e0_shift_eV_err", np.nan)) if e0 else 0.0
    rho = float(fit.get("correl_s02_e0") or 0.0)
    var = (d_s02 * sd_a) ** 2 + (d_e0 * sd_e) ** 2 + 2.0 * rho * d_s02 * d_e0 * sd_a * sd_e
    return float(np.sqrt(max(var, 0.0)))
