"""Honest statistics (issue 23): MD-aware noise, circular bootstrap, basic intervals, the
three-word convergence decision and the yardstick's own band.

Oracles: the AR(1) process (its exact variance of the mean), numpy means, hand-made
seed tables whose decisions follow from Student t by hand, and finite differences of
the score in the experiment fit's S0^2 and E0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from dualbench import stats
from dualbench.exafs import FTSettings
from dualbench.scoring.against_experiment import compare_spectra
from dualbench.scoring.convergence import Settings, convergence_record, decide

FT = FTSettings(kmin=3.0, kmax=14.0, dk=1.0, window="hanning", kweight=2, rmin=1.0, rmax=5.0)
K_EXP = np.round(np.arange(0, 17.0 + 1e-9, 0.05), 6)
K_SIM = np.round(np.arange(0, 20.0 + 1e-9, 0.05), 6)


def ar1(n: int, phi: float, rng: np.random.Generator, shape: tuple[int, ...] = ()) -> np.ndarray:
    """Stationary AR(1) series x_t = phi x_{t-1} + e_t, unit innovations."""
    e = rng.normal(size=(n, *shape))
    x = np.empty_like(e)
    x[0] = e[0] / np.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


def ar1_var_of_mean(n: int, phi: float) -> float:
    """Exact variance of the mean of n stationary AR(1) samples (unit innovations)."""
    lags = np.arange(1, n)
    var_x = 1.0 / (1 - phi**2)
    return var_x / n * (1 + 2 * np.sum((1 - lags / n) * phi**lags))


def spectrum(k: np.ndarray, sigma2: float = 0.004) -> np.ndarray:
    return np.exp(-2 * k**2 * sigma2) * 0.3 * np.sin(5.48 * k - 1.2) / (k + 1)


@pytest.mark.parametrize("phi", [0.5, 0.8])
def test_standard_error_of_an_ar1_mean(phi):
    """The naive std/sqrt(n) is off by sqrt(g) = sqrt((1+phi)/(1-phi)); the
    autocorrelation-aware one is within 20 % of the exact value."""
    n = 20000
    x = ar1(n, phi, np.random.default_rng(11))
    exact = np.sqrt(ar1_var_of_mean(n, phi))
    naive = x.std(ddof=1) / np.sqrt(n)
    assert naive / exact == pytest.approx(np.sqrt((1 - phi) / (1 + phi)), rel=0.2)
    assert float(stats.standard_error(x)) == pytest.approx(exact, rel=0.2)
    assert stats.statistical_inefficiency(x) == pytest.approx((1 + phi) / (1 - phi), rel=0.2)
    # independent samples: g = 1
    assert stats.statistical_inefficiency(np.random.default_rng(1).normal(size=5000)) < 1.15


def test_circular_bootstrap_centres_on_the_mean_and_counts_the_correlation():
    """A linear statistic: the replicates' mean is the sample mean (every row weighs the
    same, also the first and last); their spread is the AR(1) standard error."""
    rng = np.random.default_rng(2)
    spike = np.zeros(50)
    spike[-1] = 100.0  # the last snapshot: a moving block (no wrap) would underweight it
    reps = stats.circular_block_bootstrap_means(spike, 20000, rng, block=7)
    assert reps.mean() == pytest.approx(spike.mean(), abs=3 * reps.std() / np.sqrt(20000))
    n, phi = 4000, 0.7
    x = ar1(n, phi, rng)
    g = stats.statistical_inefficiency(x)
    reps = stats.circular_block_bootstrap_means(x, 2000, rng, stats.block_length(g, n))
    assert reps.std() == pytest.approx(np.sqrt(ar1_var_of_mean(n, phi)), rel=0.25)
    whole = stats.circular_block_bootstrap_means(np.arange(12.0), 10, rng, block=12)
    assert np.allclose(whole, 5.5)  # one block of the whole (wrapped) series is the series


def _noisy_run(rng, n_snap, phi, noise):
    """Snapshot means = truth + AR(1) noise in time (independent across k)."""
    truth = spectrum(K_SIM)
    scale = noise * np.sqrt(1 - phi**2)  # unit marginal variance times noise
    return truth + scale * ar1(n_snap, phi, rng, (len(K_SIM),))


def test_noise_floor_counts_the_autocorrelation():
    """The floor is mean over the window of (k^2 se)^2 with se^2 = g var/n: for AR(1)
    snapshots it is g times the naive floor (hand formula with the exact variance)."""
    rng = np.random.default_rng(4)
    phi, noise, n = 0.7, 0.01, 400
    means = _noisy_run(rng, n, phi, noise)
    (res,) = compare_spectra(
        (K_EXP, spectrum(K_EXP)), {"sim": (K_SIM, means.mean(axis=0))}, FT,
        s02="experiment", e0_shift="experiment", experiment_fit={"e0_shift_eV": 0.0, "s02": 1.0},
        snapshots={"sim": means},
    )
    inside = (K_EXP >= 3.0) & (K_EXP <= 14.0)
    var_mean = noise**2 * (1 - phi**2) * ar1_var_of_mean(n, phi)
    exact_floor = np.mean(K_EXP[inside] ** 4 * var_mean)
    naive_floor = np.mean(K_EXP[inside] ** 4 * noise**2 / n)
    assert res.exafs_noise_floor_k == pytest.approx(exact_floor, rel=0.2)
    assert res.exafs_noise_floor_k > 3 * naive_floor
    assert res.exafs_g == pytest.approx((1 + phi) / (1 - phi), rel=0.2)
    assert res.exafs_n_eff == pytest.approx(n / res.exafs_g)


def test_basic_interval_centres_on_the_noise_free_score():
    """Experiment = truth + a planted bias; the noise-free score is the bias's MSE.  The
    raw score sits above it by the floor; the debiased score and the basic interval's
    centre do not, and the interval covers it in most of 30 repeated runs."""
    bias = 0.0015 * np.sin(3.0 * K_EXP)
    inside = (K_EXP >= 3.0) & (K_EXP <= 14.0)
    true_score = np.mean((K_EXP[inside] ** 2 * bias[inside]) ** 2)
    rng = np.random.default_rng(7)
    covered, raw_excess, centre_excess = 0, [], []
    for _ in range(30):
        means = _noisy_run(rng, 60, 0.6, 0.02)
        (res,) = compare_spectra(
            (K_EXP, spectrum(K_EXP) + bias), {"sim": (K_SIM, means.mean(axis=0))}, FT,
            s02="experiment", e0_shift="experiment",
            experiment_fit={"e0_shift_eV": 0.0, "s02": 1.0}, snapshots={"sim": means},
        )
        covered += res.exafs_mse_k_lo <= true_score <= res.exafs_mse_k_hi
        raw_excess.append(res.exafs_mse_k - true_score)
        centre_excess.append(res.exafs_mse_k_debiased - true_score)
    assert covered >= 24
    assert np.mean(raw_excess) > 0.5 * res.exafs_noise_floor_k
    assert abs(np.mean(centre_excess)) < 0.3 * np.mean(raw_excess)


@pytest.mark.parametrize(("n", "phi"), [(20, 0.85), (12, 0.5)])
def test_short_correlated_runs_get_a_linearised_interval_that_covers(n, phi):
    """20 snapshots with g about 12 (or 12 with g about 3) hold one or two bootstrap
    blocks: a block bootstrap's replicates are rotations of the same series and its
    interval collapses.  Snapshots here breathe together (sigma^2 + an AR(1) term, noise
    correlated across k, as in MD); the experiment is the truth plus a planted bias.  The
    interval must cover the noise-free score (the bias's MSE, by hand) in most of 40 runs
    and say its t degrees of freedom."""
    bias = 0.002 * np.sin(3.0 * K_EXP)
    inside = (K_EXP >= 3.0) & (K_EXP <= 14.0)
    true_score = np.mean((K_EXP[inside] ** 2 * bias[inside]) ** 2)
    rng = np.random.default_rng(11)
    covered, linearised, widths = 0, 0, []
    for _ in range(40):
        wobble = 0.0006 * np.sqrt(1 - phi**2) * ar1(n, phi, rng)
        means = np.array([spectrum(K_SIM, 0.004 + w) for w in wobble])
        (res,) = compare_spectra(
            (K_EXP, spectrum(K_EXP) + bias), {"sim": (K_SIM, means.mean(axis=0))}, FT,
            s02="experiment", e0_shift="experiment",
            experiment_fit={"e0_shift_eV": 0.0, "s02": 1.0}, snapshots={"sim": means},
        )
        if np.isfinite(res.exafs_interval_dof):
            linearised += 1
            assert 1.0 <= res.exafs_interval_dof <= n - 1
        covered += res.exafs_mse_k_lo <= true_score <= res.exafs_mse_k_hi
        widths.append(res.exafs_mse_k_hi - res.exafs_mse_k_lo)
    # measured: 37 and 38 of 40 covered; the block bootstrap alone covered 14 and 19
    assert covered >= 34, covered
    assert linearised >= 30 and min(widths) > 0


def test_linearised_interval_of_a_mean_by_hand():
    """score(x) = x^2 of the mean of iid normal rows: linear term 2 mean * d, floor
    var / n, both by hand; t at n - 1 dof."""
    rng = np.random.default_rng(3)
    x = 1.0 + 0.5 * rng.standard_normal((30, 1))
    interval = stats.linearised_interval(lambda v: v**2, x, g=1.0)
    m, var, n = x.mean(), x.var(ddof=1), len(x)
    floor = var / n
    se = np.sqrt(4 * m**2 * var / n + floor**2 * 2 / (n - 1))
    t = st.t.ppf(0.975, n - 1)
    assert interval.dof == pytest.approx(n - 1)
    assert interval.floor[0] == pytest.approx(floor, rel=1e-6)
    assert interval.lo[0] == pytest.approx(m**2 - floor - t * se, rel=1e-6)
    assert interval.hi[0] == pytest.approx(m**2 - floor + t * se, rel=1e-6)


def test_two_snapshots_get_no_interval():
    means = _noisy_run(np.random.default_rng(0), 2, 0.0, 0.01)
    (res,) = compare_spectra(
        (K_EXP, spectrum(K_EXP)), {"sim": (K_SIM, means.mean(axis=0))}, FT,
        s02="experiment", e0_shift="experiment", experiment_fit={"e0_shift_eV": 0.0, "s02": 1.0},
        snapshots={"sim": means},
    )
    assert np.isnan(res.exafs_mse_k_lo) and np.isnan(res.exafs_noise_floor_k)


# --- the three-word decision ---------------------------------------------------------------


def _table(values: dict[int, list[float]], column: str = "force_mae") -> pd.DataFrame:
    return pd.DataFrame([{"model": "m", "n_frames": n, "seed": s, column: v}
                         for n, vals in values.items() for s, v in enumerate(vals)])


def test_decide_by_hand():
    """Paired differences (hand-computed Student t, alpha 0.05)."""
    # mean 1, sd 1, n 4: 90 % half-width t(0.95, 3) 0.5 = 1.177; 95 %: t(0.975, 3) 0.5 = 1.591
    diffs = np.array([0.0, 1.0, 2.0, 1.0])
    diffs = diffs - diffs.mean() + 1.0
    sd = diffs.std(ddof=1)
    assert decide(diffs, margin=2.3, alpha=0.05)["decision"] == "equivalent"
    tost = st.t.ppf(0.95, 3) * sd / 2
    assert decide(diffs, margin=1 + tost + 1e-6, alpha=0.05)["decision"] == "equivalent"
    assert decide(diffs, margin=1 + tost - 1e-6, alpha=0.05)["decision"] == "unresolved"
    far = diffs + 3.0  # mean 4, 95 % interval excludes 0, outside the margin
    assert decide(far, margin=1.0, alpha=0.05)["decision"] == "different"
    one = decide(np.array([0.1]), margin=1.0, alpha=0.05)
    assert one["decision"] == "unresolved" and one["seeds_needed"] is None


def test_converged_n_equivalent_different_unresolved():
    settings = Settings(margin={"force_mae": {"relative": None, "absolute": 10.0}})
    # Equivalent from N = 10 on (differences 1-3 meV/Å, tight), N = 2 far above.
    tight = _table({0: [500, 500, 500], 2: [300, 310, 305], 10: [262, 261, 263],
                    20: [260, 259, 261], 50: [259, 260, 261]})
    rec = convergence_record(tight, settings=settings)["models"]["m"]
    assert rec["n_converged_force_mae"] == 10
    words = {row["n_frames"]: row["decision"] for row in rec["force_mae"]["table"]}
    assert words == {0: "different", 2: "different", 10: "equivalent", 20: "equivalent",
                     50: "largest N"}
    # Still improving at the largest N: N = 20 differs from N = 50.
    slope = _table({0: [500, 500, 500], 20: [300, 302, 301], 50: [250, 251, 252]})
    rec = convergence_record(slope, settings=settings)["models"]["m"]["force_mae"]
    assert rec["answer"] == "not converged" and rec["n_converged"] is None


def test_noisy_table_does_not_converge():
    """Two seeds whose spread dwarfs every difference: the old rule (within the combined
    half-widths of the largest N) called N = 0 converged; the decision is unresolved and
    says how many seeds the observed spread would need."""
    noisy = _table({0: [500, 500], 2: [272, 473], 10: [292, 441]})
    rec = convergence_record(noisy)["models"]["m"]["force_mae"]
    assert rec["answer"] == "unresolved" and rec["n_converged"] is None
    row = {r["n_frames"]: r for r in rec["table"]}[2]
    assert row["decision"] == "unresolved"
    assert row["seeds_needed"] is not None and row["seeds_needed"] > 2
    # The margin is a tenth of the vanilla-to-largest change: |500 - 366.5| / 10.
    assert rec["margin"] == pytest.approx(13.35)


def test_student_t_half_widths_in_by_n():
    from dualbench.scoring.convergence import by_n

    table = by_n(_table({10: [1.0, 2.0], 50: [1.0, 2.0, 3.0]}), "force_mae")
    half = dict(zip(table.n_frames, table.half_width, strict=True))
    assert half[10] == pytest.approx(12.706 * np.std([1, 2], ddof=1) / np.sqrt(2), rel=1e-3)
    assert half[50] == pytest.approx(4.303 * 1.0 / np.sqrt(3), rel=1e-3)


# --- the yardstick band ----------------------------------------------------------------------


def test_yardstick_band_matches_finite_differences():
    """sqrt(g^T C g) with g the analytic derivatives against central finite differences
    of the score in S0^2 and E0 (compare_spectra at moved fits)."""
    exp = 0.9 * spectrum(K_EXP, 0.0035)
    sim = (K_SIM, spectrum(K_SIM, 0.006))
    fit = {"e0_shift_eV": 1.5, "s02": 0.9, "s02_err": 0.038, "e0_shift_eV_err": 0.54,
           "correl_s02_e0": 0.4}

    def score(s02, e0):
        moved = {**fit, "s02": s02, "e0_shift_eV": e0}
        (res,) = compare_spectra((K_EXP, exp), {"sim": sim}, FT, s02="experiment",
                                 e0_shift="experiment", experiment_fit=moved)
        return res

    base = score(fit["s02"], fit["e0_shift_eV"])
    h_a, h_e = 1e-4, 1e-3
    g_a = (score(0.9 + h_a, 1.5).exafs_mse_k - score(0.9 - h_a, 1.5).exafs_mse_k) / (2 * h_a)
    g_e = (score(0.9, 1.5 + h_e).exafs_mse_k - score(0.9, 1.5 - h_e).exafs_mse_k) / (2 * h_e)
    assert base.exafs_mse_k_d_s02 == pytest.approx(g_a, rel=0.02)
    assert base.exafs_mse_k_d_e0 == pytest.approx(g_e, rel=0.05)
    sa, se, rho = 0.038, 0.54, 0.4
    want = np.sqrt((g_a * sa) ** 2 + (g_e * se) ** 2 + 2 * rho * g_a * g_e * sa * se)
    assert base.exafs_mse_k_yardstick_sd == pytest.approx(want, rel=0.03)


def test_shell_sigma2_error_counts_the_autocorrelation():
    """Atoms of bcc W vibrating as independent AR(1) series (phi 0.8) in time: the
    reported standard error of a shell's sigma^2 matches the spread of sigma^2 over 30
    independent runs (the oracle), which the naive one misses by about sqrt(g)."""
    from ase.build import bulk

    from dualbench.diagnostics import shell_sigma2

    ref = bulk("W", "bcc", a=3.1652, cubic=True).repeat((3, 3, 3))
    rng = np.random.default_rng(8)
    phi, n_frames = 0.8, 150
    values, errors, naive = [], [], []
    for _ in range(30):
        disp = 0.04 * np.sqrt(1 - phi**2) * ar1(n_frames, phi, rng, (len(ref), 3))
        frames = []
        for d in disp:
            frame = ref.copy()
            frame.positions += d
            frames.append(frame)
        row = shell_sigma2(frames, ref, "W", cutoff_A=3.0).iloc[0]
        values.append(row["sigma2_A2"])
        errors.append(row["sigma2_stderr_A2"])
        naive.append(row["sigma2_stderr_A2"] / np.sqrt(n_frames / row["n_eff"]))
    spread = np.std(values, ddof=1)  # itself uncertain by about 13 % with 30 runs
    assert 0.75 < np.mean(errors) / spread < 1.4
    assert np.mean(naive) < 0.7 * spread


def test_md_sizing_from_the_score_noise_and_the_margin():
    """Noise^2 falls as 1 / production time: a run whose score's standard error is twice
    a tenth of the margin needs four times its production."""
    from dualbench.scoring.convergence import md_sizing

    half = 2 * 1.959964 * 0.001  # basic 95 % half-width of a score se of 0.002
    rows = pd.DataFrame({"n_frames": [0], "seed": [0], "exafs_mse_k": [0.2],
                         "exafs_mse_k_lo": [0.2 - half], "exafs_mse_k_hi": [0.2 + half],
                         "exafs_noise_floor_k": [1e-5]})
    (row,) = md_sizing(rows, "exafs_mse_k", margin=0.01, production_ps=0.8)
    assert row["score_se"] == pytest.approx(0.002)
    assert row["production_ps_needed"] == pytest.approx(0.8 * 4)


def test_a_sweep_of_one_n_has_no_margin_and_no_md_sizing_but_a_record():
    """A vanilla-only study (config/suite.yaml, N = 0) has nothing to converge: its
    record says so and sizes no MD, instead of dividing by its zero margin."""
    from dualbench.scoring.convergence import convergence_record

    summary = pd.DataFrame({
        "model": ["a", "b"], "n_frames": [0, 0], "seed": [0, 0],
        "force_mae": [0.3, 0.1], "exafs_mse_k": [0.2, 0.05],
        "exafs_mse_k_lo": [0.19, 0.045], "exafs_mse_k_hi": [0.21, 0.055],
        "exafs_noise_floor_k": [1e-4, 1e-4],
    })
    record = convergence_record(summary)
    for model in ("a", "b"):
        entry = record["models"][model]["exafs_mse_k"]
        assert entry["margin"] == 0.0 and entry["n_converged"] is None
        assert [r["production_ps_needed"] for r in entry["md_sizing"]] == [None]
