"""Simulated against measured EXAFS: E0 shift, S0^2 and the scores.

FEFF's energy origin differs from the experiment's E0 by several eV, so the simulated
chi(k) is compared after an E0 shift dE (larch's convention for a path's ``e0``: the
model at k is FEFF's chi at q = sqrt(k^2 - ETOK dE), dE in eV, ETOK = 2 m_e / hbar^2 =
0.2625 1/(Å^2 eV); dE > 0 puts FEFF's energy origin dE above the experiment's E0) and
scaled by S0^2:

    chi_model(k) = S0^2 * chi_sim(q)

By default dE and S0^2 are the experiment's own (``experiment``: the shell fit of
:mod:`dualbench.scoring.experiment_fit`), so that a model's score depends on nothing but
that model and the measurement.  Otherwise dE is fitted as one value shared by every
simulation of the sweep (``shared``), one per simulation (``per_model``), or fixed (a
number); S0^2 is fixed (a number) or fitted per simulation (``fitted``, least squares,
closed form), minimising the k-space MSE.  Whatever the yardstick, every simulation is
also scored with its own least-squares S0^2 at the same dE (``exafs_mse_k_fitted_s02``,
``s02_fitted``).

Uncertainty (:mod:`dualbench.scoring.sampling_uncertainty`).  With the run's per-snapshot
means (``chi_snapshots.npz``) the score's sampling noise counts the snapshots'
autocorrelation (``exafs_g``, ``exafs_n_eff``), with a noise floor
``exafs_noise_floor_k`` (``exafs_mse_k_debiased`` = score minus floor) and basic 95 %
circular-block bootstrap intervals (``_lo``, ``_hi``).

The yardstick's own uncertainty (:mod:`dualbench.scoring.yardstick`): with the
experiment's E0 shift and S0^2 (``experiment`` modes), their fitted errors and
correlation (fit.json) are propagated to the score to first order,
``exafs_mse_k_yardstick_sd`` (one standard deviation), from the analytic derivatives
``exafs_mse_k_d_s02`` and ``exafs_mse_k_d_e0`` (per eV).  It is common to every model of
the material (the same fit scores them all), so it is reported apart from the per-model
sampling intervals.

Scores on the experiment's k grid (1/Å), with the one FT of :mod:`dualbench.exafs`
(:mod:`dualbench.scoring.spectrum_scores`):

* ``exafs_mse_k``: mean of (k^w chi_exp - k^w chi_model)^2 over kmin <= k <= kmax;
* ``exafs_mse_r``: mean of (|chi_exp(R)| - |chi_model(R)|)^2 over rmin <= R <= rmax;
* ``exafs_rfactor``: sum |chi_exp(R) - chi_model(R)|^2 / sum |chi_exp(R)|^2 over the
  same R range, real and imaginary parts (the R-factor of larch's feffit).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from dualbench.exafs import FTSettings, read_chi_k
from dualbench.io import provenance, write_csv, write_json
from dualbench.scoring.fit_record import check_fit_values, read_fit
from dualbench.scoring.sampling_uncertainty import add_sampling_uncertainty, read_snapshot_means
from dualbench.scoring.spectrum_scores import (
    METRIC_COLUMNS,
    ComparisonResult,
    PreparedExperiment,
    check_grid,
    profile,
    score_model,
    shifted_chi,
)
from dualbench.scoring.unstable import STATUS_COLUMNS, run_failures, status_of
from dualbench.scoring.yardstick import propagated_sd, score_gradient

log = logging.getLogger(__name__)

#: Range (eV) and step of the E0-shift grid search before the local refinement.
E0_BOUNDS_EV = (-25.0, 25.0)
E0_GRID_STEP_EV = 0.1



def _fit_shift(
    prep: PreparedExperiment,
    sims: Sequence[tuple[np.ndarray, np.ndarray]],
    s02: float | None,
    bounds: tuple[float, float] = E0_BOUNDS_EV,
) -> float:
    """The E0 shift minimising the summed k-space MSE of ``sims``."""
    from scipy.optimize import minimize_scalar

    def cost(de: float) -> float:
        return sum(profile(prep, ks, cs, de, s02)[0] for ks, cs in sims)

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


def _modes(
    s02: float | str | None, e0_shift: str | float, fit: Mapping[str, Any] | None
) -> tuple[str, float | None, str, float | None]:
    """(S0^2 mode, its fixed value or None, E0 mode, its fixed value or None)."""
    if s02 is None or s02 == "fitted":
        s02_mode, amp = "fitted", None
    elif s02 == "experiment":
        s02_mode, amp = "experiment", None
    elif isinstance(s02, str):
        raise ValueError(f"exafs.s02 {s02!r} is not experiment, fitted or a number")
    else:
        s02_mode, amp = "fixed", float(s02)
    if isinstance(e0_shift, str):
        if e0_shift not in ("experiment", "shared", "per_model"):
            raise ValueError(
                f"exafs.e0_shift {e0_shift!r} is not experiment, shared, per_model or a number"
            )
        e0_mode, de = e0_shift, None
    else:
        e0_mode, de = "fixed", float(e0_shift)
    if "experiment" in (s02_mode, e0_mode):
        if fit is None:
            raise ValueError(
                "exafs.s02 / exafs.e0_shift: experiment needs the experiment's fit (fit.json)"
            )
        check_fit_values(fit, "the experiment's fit")
        if s02_mode == "experiment":
            amp = float(fit["s02"])
        if e0_mode == "experiment":
            de = float(fit["e0_shift_eV"])
    return s02_mode, amp, e0_mode, de


def compare_spectra(
    experiment: tuple[np.ndarray, np.ndarray],
    simulations: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ft: FTSettings | None = None,
    *,
    s02: float | str | None = "fitted",
    e0_shift: str | float = "shared",
    e0_bounds_eV: tuple[float, float] = E0_BOUNDS_EV,
    experiment_name: str = "experiment",
    experiment_fit: Mapping[str, Any] | None = None,
    snapshots: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
) -> list[ComparisonResult]:
    """Score every simulation (label -> (k, chi)) against the experiment (k, chi).

    ``e0_shift``: ``experiment`` (the fit's), ``shared`` (one fitted value for all),
    ``per_model``, or a number (eV).  ``s02``: ``experiment``, ``fitted`` (None) per
    simulation, or a number.  ``experiment_fit``: the record of fit.json.
    ``snapshots``: label -> per-snapshot mean chi(k) (n_snapshots, n_k) on the
    simulation's k, for the bootstrap intervals and the noise floor.
    """
    ft = ft or FTSettings()
    if not simulations:
        raise ValueError("no simulation to compare")
    k, chi_exp = (np.asarray(a, dtype=float) for a in experiment)
    check_grid(experiment_name, k, ft)
    for label, (ks, _) in simulations.items():
        check_grid(label, np.asarray(ks, dtype=float), ft)
    prep = PreparedExperiment(
        k=k, chi_exp=chi_exp, inside_k=(k >= ft.kmin) & (k <= ft.kmax), kw=k**ft.kweight, ft=ft
    )
    sims = {
        label: (np.asarray(ks, dtype=float), np.asarray(cs, dtype=float))
        for label, (ks, cs) in simulations.items()
    }
    s02_mode, amp_fixed, e0_mode, de_fixed = _modes(s02, e0_shift, experiment_fit)
    if e0_mode == "shared":
        shared = _fit_shift(prep, list(sims.values()), amp_fixed, e0_bounds_eV)
        shifts = dict.fromkeys(sims, shared)
    elif e0_mode == "per_model":
        shifts = {
            lab: _fit_shift(prep, [sim], amp_fixed, e0_bounds_eV) for lab, sim in sims.items()
        }
    else:
        shifts = dict.fromkeys(sims, de_fixed)
    rng = np.random.default_rng(seed)
    results = []
    for label, (ks, cs) in sims.items():
        de = float(shifts[label])
        _, amp = profile(prep, ks, cs, de, amp_fixed)
        mse_k, mse_r, rfac = score_model(prep, ks, cs, de, amp)
        mse_fitted, amp_fitted = profile(prep, ks, cs, de, None)
        result = ComparisonResult(
            label=label, exafs_mse_k=mse_k, exafs_mse_r=mse_r, exafs_rfactor=rfac,
            e0_shift_eV=de, s02=amp, s02_mode=s02_mode, e0_mode=e0_mode,
            exafs_mse_k_fitted_s02=mse_fitted, s02_fitted=amp_fitted,
        )
        if snapshots is not None and label in snapshots:
            add_sampling_uncertainty(result, prep, ks, np.asarray(snapshots[label]), rng)
        _add_yardstick(result, prep, ks, cs, experiment_fit)
        results.append(result)
        log.info(
            "%s: mse_k %.4f [%.4f, %.4f] (noise floor %.5f from %s snapshots, g %.2f,"
            " n_eff %.1f; yardstick sd %.4f), mse_r %.4f, R-factor %.4f,"
            " E0 shift %.2f eV (%s), S0^2 %.3f (%s); own S0^2 %.3f: mse_k %.4f",
            label, mse_k, result.exafs_mse_k_lo, result.exafs_mse_k_hi,
            result.exafs_noise_floor_k, result.exafs_n_snapshots, result.exafs_g,
            result.exafs_n_eff, result.exafs_mse_k_yardstick_sd, mse_r, rfac, de, e0_mode,
            amp, s02_mode, amp_fitted, mse_fitted,
        )
    return results


def _add_yardstick(
    result: ComparisonResult,
    prep: PreparedExperiment,
    ks: np.ndarray,
    cs: np.ndarray,
    fit: Mapping[str, Any] | None,
) -> None:
    """The fit's E0 and S0^2 errors propagated to mse_k (:mod:`dualbench.scoring.yardstick`)."""
    model = shifted_chi(prep.k, ks, cs, result.e0_shift_eV)
    slope = shifted_chi(prep.k, ks, np.gradient(cs, ks), result.e0_shift_eV)
    d_s02, d_e0 = score_gradient(
        prep.k, prep.chi_exp, (prep.kw**2) * prep.inside_k, model, slope,
        result.e0_shift_eV, result.s02,
    )
    result.exafs_mse_k_d_s02, result.exafs_mse_k_d_e0 = d_s02, d_e0
    result.exafs_mse_k_yardstick_sd = propagated_sd(
        d_s02, d_e0, fit, s02=result.s02_mode == "experiment", e0=result.e0_mode == "experiment"
    )


def _record(result: ComparisonResult) -> dict[str, Any]:
    record = asdict(result)
    record["simulation"] = record.pop("label")
    return record


def _snapshots_on_grid(
    sims: Mapping[str, tuple[np.ndarray, np.ndarray]], files: Mapping[str, str | Path]
) -> dict[str, np.ndarray]:
    out = {}
    for label, path in files.items():
        k_snap, means = read_snapshot_means(path)
        if not np.allclose(k_snap, sims[label][0]):
            raise ValueError(f"{path}: k grid differs from its run's chi_k.csv")
        out[label] = means
    return out


def _settings_record(ft: FTSettings, s02: Any, e0_shift: Any) -> dict[str, Any]:
    return {"ft": asdict(ft), "s02": "fitted" if s02 is None else s02, "e0_shift": e0_shift}


def compare_dirs(
    experiment_dir: str | Path,
    simulation_dirs: Sequence[str | Path],
    out: str | Path,
    ft: FTSettings | None = None,
    *,
    s02: float | str | None = "fitted",
    e0_shift: str | float = "shared",
    experiment_fit: str | Path | None = None,
) -> list[ComparisonResult]:
    """The ``compare`` command: chi_k.csv (and chi_snapshots.npz, when there) of each
    folder; ``experiment_fit`` a fit.json for the ``experiment`` yardstick; writes
    ``out`` (JSON).

    The JSON holds the settings, one record per simulation (``results``) and, with a
    single simulation, its metrics at the top level too.
    """
    ft = ft or FTSettings()
    exp_file = Path(experiment_dir) / "chi_k.csv"
    sims, snaps = {}, {}
    for folder in simulation_dirs:
        label = str(folder)
        if label in sims:
            raise ValueError(f"{folder}: simulation given twice")
        sims[label] = read_chi_k(Path(folder) / "chi_k.csv")
        if (Path(folder) / "chi_snapshots.npz").is_file():
            snaps[label] = Path(folder) / "chi_snapshots.npz"
    fit = read_fit(experiment_fit, exp_file) if experiment_fit is not None else None
    results = compare_spectra(
        read_chi_k(exp_file), sims, ft, s02=s02, e0_shift=e0_shift,
        experiment_name=str(exp_file), experiment_fit=fit,
        snapshots=_snapshots_on_grid(sims, snaps),
    )
    record: dict[str, Any] = {
        "experiment": str(experiment_dir),
        "settings": _settings_record(ft, s02, e0_shift),
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
    experiment_fit: str | Path | None = None,
    snapshot_files: Sequence[str | Path] | None = None,
) -> list[ComparisonResult]:
    """The `compare_exafs` job: every run of a material (dicts with material, model, n,
    seed) against its experiment; writes comparison.csv (material, model, n_frames, seed,
    :data:`METRIC_COLUMNS`, ``status`` and ``failure``) and a JSON of the settings and
    records.  A run whose ``snapshot_files`` entry records a failure (MD unstable,
    :mod:`dualbench.runstatus`) is not scored and takes no part in a shared E0 fit: its
    scores are NaN and its status and failure say why."""
    import pandas as pd

    if len(runs) != len(simulation_chi_k):
        raise ValueError(f"{len(runs)} runs but {len(simulation_chi_k)} chi(k) files")
    ft_settings = FTSettings.from_config(ft)
    failures = run_failures(snapshot_files, len(runs))
    stable = [i for i, failure in enumerate(failures) if failure is None]
    sims = {str(simulation_chi_k[i]): read_chi_k(simulation_chi_k[i]) for i in stable}
    snaps = {str(simulation_chi_k[i]): snapshot_files[i] for i in stable if snapshot_files}
    s02, e0_shift = exafs.get("s02", "experiment"), exafs.get("e0_shift", "experiment")
    results = compare_spectra(
        read_chi_k(experiment_chi_k), sims, ft_settings, s02=s02, e0_shift=e0_shift,
        experiment_name=str(experiment_chi_k),
        experiment_fit=(None if experiment_fit is None
                        else read_fit(experiment_fit, experiment_chi_k)),
        snapshots=_snapshots_on_grid(sims, snaps),
    ) if sims else []
    keys = [{"material": run["material"], "model": run["model"], "n_frames": int(run["n"]),
             "seed": int(run["seed"])} for run in runs]
    scored = dict(zip(stable, results, strict=True))
    rows = [{**key, **(scored[i].metrics() if i in scored
                       else dict.fromkeys(METRIC_COLUMNS, np.nan)), **status_of(failures[i])}
            for i, key in enumerate(keys)]
    write_csv(out_csv, pd.DataFrame(rows, columns=[*keys[0], *METRIC_COLUMNS,
                                                   *STATUS_COLUMNS]))
    if out_json is not None:
        write_json(
            out_json,
            {
                "experiment": str(experiment_chi_k),
                "experiment_fit": None if experiment_fit is None else str(experiment_fit),
                "settings": _settings_record(ft_settings, s02, e0_shift),
                "results": [{**keys[i], **_record(r)} for i, r in scored.items()],
                "unstable": [{**keys[i], "failure": failures[i].to_dict()}
                             for i in range(len(keys)) if failures[i] is not None],
                "provenance": provenance(),
            },
        )
    return results
