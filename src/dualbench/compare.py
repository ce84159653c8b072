"""Simulated against measured EXAFS: E0 shift, S0^2 and the scores.

FEFF's energy origin differs from the experiment's E0 by several eV, so the simulated
chi(k) is compared after an E0 shift dE (larch's convention for a path's ``e0``: the
model at k is FEFF's chi at q = sqrt(k^2 - ETOK dE), dE in eV, ETOK = 2 m_e / hbar^2 =
0.2625 1/(Å^2 eV); dE > 0 puts FEFF's energy origin dE above the experiment's E0) and
scaled by S0^2:

    chi_model(k) = S0^2 * chi_sim(q)

By default dE and S0^2 are the experiment's own (``experiment``: the shell fit of
:mod:`dualbench.experiment_fit`), so that a model's score depends on nothing but that
model and the measurement.  Otherwise dE is fitted as one value shared by every
simulation of the sweep (``shared``), one per simulation (``per_model``), or fixed (a
number); S0^2 is fixed (a number) or fitted per simulation (``fitted``, least squares,
closed form), minimising the k-space MSE.  Whatever the yardstick, every simulation is
also scored with its own least-squares S0^2 at the same dE (``exafs_mse_k_fitted_s02``,
``s02_fitted``).

Uncertainty (:mod:`dualbench.stats`).  With the run's per-snapshot means
(``chi_snapshots.npz``, in time order) the score's sampling noise counts the snapshots'
autocorrelation: one statistical inefficiency g of the series (weighted as the score
weighs k), ``exafs_n_eff = n / g`` effective snapshots, the noise floor
``exafs_noise_floor_k`` = mean over the window of (S0^2 k^w se(k))^2 with se the
autocorrelation-aware standard error of the average (the amount by which sampling noise
alone raises a squared error), and a circular block bootstrap over snapshots (blocks of
``ceil(3 g)``, each snapshot carrying all its absorbers) whose *basic* 95 % intervals
(``_lo``, ``_hi``) are centred on the noise-free score: ``exafs_mse_k_debiased`` = score
minus floor.

The yardstick's own uncertainty: with the experiment's E0 shift and S0^2 (``experiment``
modes), their fitted errors and correlation (fit.json) are propagated to the score to
first order, ``exafs_mse_k_yardstick_sd`` (one standard deviation), from the analytic
derivatives ``exafs_mse_k_d_s02`` and ``exafs_mse_k_d_e0`` (per eV).  It is common to every
model of the material (the same fit scores them all), so it is reported apart from the
per-model sampling intervals.

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
from dualbench.fit_record import check_fit_values, read_fit
from dualbench.io import provenance, write_csv, write_json
from dualbench.stats import SeriesStats, basic_interval, circular_block_bootstrap_means
from dualbench.yardstick import propagated_sd, score_gradient

log = logging.getLogger(__name__)

#: Range (eV) and step of the E0-shift grid search before the local refinement.
E0_BOUNDS_EV = (-25.0, 25.0)
E0_GRID_STEP_EV = 0.1
#: Bootstrap replicates of the score intervals.
N_BOOTSTRAP = 400
#: Fewest snapshots a sampling interval is given for (two cannot show a correlation).
MIN_SNAPSHOTS = 3
METRIC_COLUMNS = (
    "exafs_mse_k", "exafs_mse_k_lo", "exafs_mse_k_hi",
    "exafs_mse_r", "exafs_mse_r_lo", "exafs_mse_r_hi",
    "exafs_rfactor", "exafs_noise_floor_k", "exafs_mse_k_debiased",
    "exafs_n_snapshots", "exafs_g", "exafs_n_eff", "exafs_block",
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
    exafs_mse_k_yardstick_sd: float = float("nan")
    exafs_mse_k_d_s02: float = float("nan")
    exafs_mse_k_d_e0: float = float("nan")

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
    _chir_exp: tuple[np.ndarray, np.ndarray] | None = None

    def chir_exp(self) -> tuple[np.ndarray, np.ndarray]:
        """(R, chi(R)) of the experiment, transformed once (every score and bootstrap
        replicate compares against it)."""
        if self._chir_exp is None:
            self._chir_exp = fourier_transform(self.k, self.chi_exp, self.ft)
        return self._chir_exp


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
    r, chir_exp = prep.chir_exp()
    _, chir_mod = fourier_transform(prep.k, model, ft)
    inside_r = (r >= ft.rmin) & (r <= ft.rmax)
    mag_diff = np.abs(chir_exp[inside_r]) - np.abs(chir_mod[inside_r])
    mse_r = float(np.mean(mag_diff**2))
    num = float(np.sum(np.abs(chir_exp[inside_r] - chir_mod[inside_r]) ** 2))
    den = float(np.sum(np.abs(chir_exp[inside_r]) ** 2))
    return mse_k, mse_r, num / den if den > 0 else float("nan")


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
        _, amp = _profile(prep, ks, cs, de, amp_fixed)
        mse_k, mse_r, rfac = _score(prep, ks, cs, de, amp)
        mse_fitted, amp_fitted = _profile(prep, ks, cs, de, None)
        result = ComparisonResult(
            label=label, exafs_mse_k=mse_k, exafs_mse_r=mse_r, exafs_rfactor=rfac,
            e0_shift_eV=de, s02=amp, s02_mode=s02_mode, e0_mode=e0_mode,
            exafs_mse_k_fitted_s02=mse_fitted, s02_fitted=amp_fitted,
        )
        if snapshots is not None and label in snapshots:
            _add_uncertainty(result, prep, ks, np.asarray(snapshots[label]), rng)
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


def _score_weights(prep: _Prepared, ks: np.ndarray, amp: float) -> np.ndarray:
    """Per-k weights of the k-space score on the simulation's grid (S0^2 k^w inside the
    window), which weigh the snapshot series for its autocorrelation."""
    ft = prep.ft
    return np.where((ks >= ft.kmin) & (ks <= ft.kmax), amp * ks**ft.kweight, 0.0)


def _add_uncertainty(
    result: ComparisonResult,
    prep: _Prepared,
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
    series = SeriesStats.of(means, _score_weights(prep, ks, amp))
    if not series.resolved:
        log.warning("%s: %d snapshots are too few to resolve their autocorrelation (g about"
                    " %.1f): the intervals are rough", result.label, len(means), series.g)
    result.exafs_g, result.exafs_n_eff, result.exafs_block = (
        series.g, series.n_eff, series.block)
    stderr = np.sqrt(series.g * means.var(axis=0, ddof=1) / len(means))
    noise = amp * shifted_chi(prep.k, ks, stderr, de) * prep.kw
    result.exafs_noise_floor_k = float(np.mean(noise[prep.inside_k] ** 2))
    result.exafs_mse_k_debiased = result.exafs_mse_k - result.exafs_noise_floor_k
    replicates = circular_block_bootstrap_means(means, N_BOOTSTRAP, rng, series.block)
    scores = np.array([_score(prep, ks, chi_b, de, amp)[:2] for chi_b in replicates])
    lo, hi = basic_interval([result.exafs_mse_k, result.exafs_mse_r], scores)
    lo, hi = np.clip(lo, 0.0, None), np.clip(hi, 0.0, None)
    result.exafs_mse_k_lo, result.exafs_mse_r_lo = (float(v) for v in lo)
    result.exafs_mse_k_hi, result.exafs_mse_r_hi = (float(v) for v in hi)


def _add_yardstick(
    result: ComparisonResult,
    prep: _Prepared,
    ks: np.ndarray,
    cs: np.ndarray,
    fit: Mapping[str, Any] | None,
) -> None:
    """The fit's E0 and S0^2 errors propagated to mse_k (:mod:`dualbench.yardstick`)."""
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


def read_snapshot_means(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(k, per-snapshot mean chi (n_snapshots, n_k)) of a run's chi_snapshots.npz."""
    with np.load(path, allow_pickle=False) as data:
        return np.array(data["k"]), np.array(data["snapshot_means"])


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
    seed) against its experiment; writes comparison.csv (material, model, n_frames, seed
    and :data:`METRIC_COLUMNS`) and a JSON of the settings and records."""
    import pandas as pd

    if len(runs) != len(simulation_chi_k):
        raise ValueError(f"{len(runs)} runs but {len(simulation_chi_k)} chi(k) files")
    ft_settings = FTSettings.from_config(ft)
    sims = {str(path): read_chi_k(path) for path in simulation_chi_k}
    snaps = dict(zip(map(str, simulation_chi_k), snapshot_files or [], strict=False))
    s02, e0_shift = exafs.get("s02", "experiment"), exafs.get("e0_shift", "experiment")
    results = compare_spectra(
        read_chi_k(experiment_chi_k), sims, ft_settings, s02=s02, e0_shift=e0_shift,
        experiment_name=str(experiment_chi_k),
        experiment_fit=(None if experiment_fit is None
                        else read_fit(experiment_fit, experiment_chi_k)),
        snapshots=_snapshots_on_grid(sims, snaps),
    )
    keys = [{"material": run["material"], "model": run["model"], "n_frames": int(run["n"]),
             "seed": int(run["seed"])} for run in runs]
    rows = [{**key, **result.metrics()} for key, result in zip(keys, results, strict=True)]
    write_csv(out_csv, pd.DataFrame(rows, columns=[*keys[0], *METRIC_COLUMNS]))
    if out_json is not None:
        write_json(
            out_json,
            {
                "experiment": str(experiment_chi_k),
                "experiment_fit": None if experiment_fit is None else str(experiment_fit),
                "settings": _settings_record(ft_settings, s02, e0_shift),
                "results": [{**key, **_record(r)} for key, r in zip(keys, results, strict=True)],
                "provenance": provenance(),
            },
        )
    return results
