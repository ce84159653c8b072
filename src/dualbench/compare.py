"""Simulated against measured EXAFS: E0 shift, S0^2 and the scores.

FEFF's energy origin differs from the experiment's E0 by several eV, so the simulated
chi(k) is compared after an E0 shift dE (larch's convention for a path's ``e0``: the
model at k is FEFF's chi at q = sqrt(k^2 - ETOK dE), dE in eV, ETOK = 2 m_e / hbar^2 =
0.2625 1/(Å^2 eV); dE > 0 puts FEFF's energy origin dE above the experiment's E0) and
scaled by S0^2:

    chi_model(k) = S0^2 * chi_sim(q)

dE is fitted by default as one value per material, shared by every simulation of the
sweep, so that models are compared on equal terms (``per_model`` fits one per
simulation; a number fixes it).  S0^2 is fixed (config ``exafs.s02``) or, when None,
fitted per simulation (least squares, closed form).  Both are fitted by minimising the
k-space MSE; both are always reported.

Scores on the experiment's k grid (1/Å), with the one FT of :mod:`dualbench.exafs`:

* ``exafs_mse_k``: mean of (k^w chi_exp - k^w chi_model)^2 over kmin <= k <= kmax;
* ``exafs_mse_r``: mean of (|chi_exp(R)| - |chi_model(R)|)^2 over rmin <= R <= rmax;
* ``exafs_rfactor``: sum |chi_exp(R) - chi_model(R)|^2 / sum |chi_exp(R)|^2 over the
  same R range, real and imaginary parts (the R-factor of larch's feffit).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dualbench.exafs import FTSettings, fourier_transform, import_larch, read_chi_k
from dualbench.io import provenance, write_csv, write_json

log = logging.getLogger(__name__)

#: Range (eV) and step of the E0-shift grid search before the local refinement.
E0_BOUNDS_EV = (-25.0, 25.0)
E0_GRID_STEP_EV = 0.1
METRIC_COLUMNS = ("exafs_mse_k", "exafs_mse_r", "exafs_rfactor", "e0_shift_eV", "s02")


@dataclass
class ComparisonResult:
    """Scores of one simulation against the experiment."""

    label: str
    exafs_mse_k: float
    exafs_mse_r: float
    exafs_rfactor: float
    e0_shift_eV: float
    s02: float
    s02_fitted: bool
    e0_mode: str  # shared, per_model or fixed

    def metrics(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in METRIC_COLUMNS}


def shifted_chi(
    k: np.ndarray, k_sim: np.ndarray, chi_sim: np.ndarray, e0_shift_eV: float
) -> np.ndarray:
    """chi_sim at q = sign * sqrt(|k^2 - ETOK dE|), on ``k`` (linear interpolation)."""
    import_larch()
    from larch.xafs.xafsutils import ETOK

    en = np.asarray(k, dtype=float) ** 2 - ETOK * float(e0_shift_eV)
    q = np.sign(en) * np.sqrt(np.abs(en))
    return np.interp(q, k_sim, chi_sim)


def _check_grid(path: str, k: np.ndarray, ft: FTSettings) -> None:
    steps = np.diff(k)
    if len(k) < 2 or not np.allclose(steps, steps[0], rtol=1e-4, atol=1e-6):
        raise ValueError(f"{path}: column 'k': chi(k) must be on a uniform k grid")
    if k[-1] < ft.window_end - 1e-6:
        raise ValueError(
            f"{path}: ft.kmax: the FT window reaches k = {ft.window_end:g} 1/Å but the data"
            f" end at k = {k[-1]:.2f} 1/Å"
        )


@dataclass
class _Prepared:
    k: np.ndarray
    chi_exp: np.ndarray
    inside_k: np.ndarray
    kw: np.ndarray
    ft: FTSettings


def _mse_k(prep: _Prepared, model: np.ndarray) -> float:
    diff = (prep.chi_exp - model)[prep.inside_k] * prep.kw[prep.inside_k]
    return float(np.mean(diff**2))


def _profile(
    prep: _Prepared, k_sim: np.ndarray, chi_sim: np.ndarray, de: float, s02: float | None
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
    return _mse_k(prep, amp * base), amp


def _fit_shift(
    prep: _Prepared,
    sims: Sequence[tuple[np.ndarray, np.ndarray]],
    s02: float | None,
    bounds: tuple[float, float] = E0_BOUNDS_EV,
) -> float:
    """The E0 shift minimising the summed k-space MSE of ``sims``."""
    from scipy.optimize import minimize_scalar

    def cost(de: float) -> float:
        return sum(_profile(prep, ks, cs, de, s02)[0] for ks, cs in sims)

    grid = np.arange(bounds[0], bounds[1] + 0.5 * E0_GRID_STEP_EV, E0_GRID_STEP_EV)
    costs = np.array([cost(de) for de in grid])
    best = float(grid[int(np.argmin(costs))])
    lo = max(bounds[0], best - E0_GRID_STEP_EV)
    hi = min(bounds[1], best + E0_GRID_STEP_EV)
    res = minimize_scalar(cost, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    de = float(res.x) if res.fun <= costs.min() else best
    if abs(de - bounds[0]) < 2 * E0_GRID_STEP_EV or abs(de - bounds[1]) < 2 * E0_GRID_STEP_EV:
        log.warning("the fitted E0 shift %.2f eV is at the edge of the search range %s", de, bounds)
    return de


def _score(
    prep: _Prepared, k_sim: np.ndarray, chi_sim: np.ndarray, de: float, amp: float
) -> tuple[float, float, float]:
    """(mse_k, mse_r, rfactor) of the model with shift ``de`` and S0^2 ``amp``."""
    ft = prep.ft
    model = amp * shifted_chi(prep.k, k_sim, chi_sim, de)
    mse_k = _mse_k(prep, model)
    r, chir_exp = fourier_transform(prep.k, prep.chi_exp, ft)
    _, chir_mod = fourier_transform(prep.k, model, ft)
    inside_r = (r >= ft.rmin) & (r <= ft.rmax)
    mag_diff = np.abs(chir_exp[inside_r]) - np.abs(chir_mod[inside_r])
    mse_r = float(np.mean(mag_diff**2))
    num = float(np.sum(np.abs(chir_exp[inside_r] - chir_mod[inside_r]) ** 2))
    den = float(np.sum(np.abs(chir_exp[inside_r]) ** 2))
    return mse_k, mse_r, num / den if den > 0 else float("nan")


def compare_spectra(
    experiment: tuple[np.ndarray, np.ndarray],
    simulations: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ft: FTSettings | None = None,
    *,
    s02: float | None = None,
    e0_shift: str | float = "shared",
    e0_bounds_eV: tuple[float, float] = E0_BOUNDS_EV,
    experiment_name: str = "experiment",
) -> list[ComparisonResult]:
    """Score every simulation (label -> (k, chi)) against the experiment (k, chi).

    ``e0_shift``: ``shared`` (one fitted value for all), ``per_model``, or a number (eV).
    ``s02``: a fixed S0^2, or None to fit it per simulation.
    """
    ft = ft or FTSettings()
    if not simulations:
        raise ValueError("no simulation to compare")
    k, chi_exp = (np.asarray(a, dtype=float) for a in experiment)
    _check_grid(experiment_name, k, ft)
    for label, (ks, _) in simulations.items():
        _check_grid(label, np.asarray(ks, dtype=float), ft)
    prep = _Prepared(
        k=k, chi_exp=chi_exp, inside_k=(k >= ft.kmin) & (k <= ft.kmax), kw=k**ft.kweight, ft=ft
    )
    sims = {
        label: (np.asarray(ks, dtype=float), np.asarray(cs, dtype=float))
        for label, (ks, cs) in simulations.items()
    }
    if isinstance(e0_shift, str):
        if e0_shift not in ("shared", "per_model"):
            raise ValueError(f"e0_shift {e0_shift!r} is not shared, per_model or a number (eV)")
        mode = e0_shift
    else:
        mode = "fixed"
    if mode == "shared":
        shared = _fit_shift(prep, list(sims.values()), s02, e0_bounds_eV)
        shifts = dict.fromkeys(sims, shared)
    elif mode == "per_model":
        shifts = {lab: _fit_shift(prep, [sim], s02, e0_bounds_eV) for lab, sim in sims.items()}
    else:
        shifts = dict.fromkeys(sims, float(e0_shift))
    results = []
    for label, (ks, cs) in sims.items():
        de = shifts[label]
        _, amp = _profile(prep, ks, cs, de, s02)
        mse_k, mse_r, rfac = _score(prep, ks, cs, de, amp)
        results.append(
            ComparisonResult(
                label=label,
                exafs_mse_k=mse_k,
                exafs_mse_r=mse_r,
                exafs_rfactor=rfac,
                e0_shift_eV=de,
                s02=amp,
                s02_fitted=s02 is None,
                e0_mode=mode,
            )
        )
        log.info(
            "%s: mse_k %.4f, mse_r %.4f, R-factor %.4f, E0 shift %.2f eV (%s), S0^2 %.3f (%s)",
            label, mse_k, mse_r, rfac, de, mode, amp, "fitted" if s02 is None else "fixed",
        )
    return results


def _record(result: ComparisonResult) -> dict[str, Any]:
    record = asdict(result)
    record["simulation"] = record.pop("label")
    return record


def compare_dirs(
    experiment_dir: str | Path,
    simulation_dirs: Sequence[str | Path],
    out: str | Path,
    ft: FTSettings | None = None,
    *,
    s02: float | None = None,
    e0_shift: str | float = "shared",
) -> list[ComparisonResult]:
    """The ``compare`` command: chi_k.csv of each folder; writes ``out`` (JSON).

    The JSON holds the settings, one record per simulation (``results``) and, with a
    single simulation, its metrics at the top level too.
    """
    ft = ft or FTSettings()
    exp_file = Path(experiment_dir) / "chi_k.csv"
    sims = {}
    for folder in simulation_dirs:
        label = str(folder)
        if label in sims:
            raise ValueError(f"{folder}: simulation given twice")
        sims[label] = read_chi_k(Path(folder) / "chi_k.csv")
    results = compare_spectra(
        read_chi_k(exp_file), sims, ft, s02=s02, e0_shift=e0_shift, experiment_name=str(exp_file)
    )
    record: dict[str, Any] = {
        "experiment": str(experiment_dir),
        "settings": {"ft": asdict(ft), "s02": "fit" if s02 is None else s02,
                     "e0_shift": e0_shift},
        "results": [_record(r) for r in results],
        "provenance": provenance(),
    }
    if len(results) == 1:
        record.update(results[0].metrics())
    write_json(out, record)
    return results


def compare_stage(
    experiment_chi_k: str | Path,
    runs: Sequence[Mapping[str, Any]],
    simulation_chi_k: Sequence[str | Path],
    *,
    exafs: Mapping[str, Any],
    ft: Mapping[str, Any],
    out_csv: str | Path,
    out_json: str | Path | None = None,
) -> list[ComparisonResult]:
    """The `compare_exafs` job: every run of a material (dicts with material, model, n,
    seed) against its experiment; writes comparison.csv (material, model, n_frames, seed,
    exafs_mse_k, exafs_mse_r, exafs_rfactor, e0_shift_eV, s02) and a JSON of the settings."""
    import pandas as pd

    if len(runs) != len(simulation_chi_k):
        raise ValueError(f"{len(runs)} runs but {len(simulation_chi_k)} chi(k) files")
    ft_settings = FTSettings.from_config(ft)
    sims = {str(path): read_chi_k(path) for path in simulation_chi_k}
    results = compare_spectra(
        read_chi_k(experiment_chi_k),
        sims,
        ft_settings,
        s02=exafs.get("s02"),
        e0_shift=exafs.get("e0_shift", "shared"),
        experiment_name=str(experiment_chi_k),
    )
    rows = []
    for run, result in zip(runs, results, strict=True):
        rows.append(
            {
                "material": run["material"],
                "model": run["model"],
                "n_frames": int(run["n"]),
                "seed": int(run["seed"]),
                **result.metrics(),
            }
        )
    write_csv(out_csv, pd.DataFrame(rows, columns=["material", "model", "n_frames", "seed",
                                                    *METRIC_COLUMNS]))
    if out_json is not None:
        write_json(
            out_json,
            {
                "experiment": str(experiment_chi_k),
                "settings": {"ft": asdict(ft_settings),
                             "s02": "fit" if exafs.get("s02") is None else exafs["s02"],
                             "e0_shift": exafs.get("e0_shift", "shared")},
                "results": [
                    {"material": run["material"], "model": run["model"],
                     "n_frames": int(run["n"]), "seed": int(run["seed"]), **_record(r)}
                    for run, r in zip(runs, results, strict=True)
                ],
                "provenance": provenance(),
            },
        )
    return results
