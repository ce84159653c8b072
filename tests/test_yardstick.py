"""The EXAFS yardstick: the experiment's own fit, model independence, uncertainty.

Oracles: larch (a synthetic spectrum summed from FEFF paths with known parameters by
larch's own path2chi), numpy (the spread of sample means), hand formulas.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from dualbench import exafs as ex
from dualbench.scoring.against_experiment import compare_spectra
from dualbench.scoring.experiment_fit import ShellFitSettings, fit_shells, shell_paths

FT = ex.FTSettings(kmin=3.0, kmax=14.0, dk=1.0, window="hanning", kweight=2, rmin=1.0, rmax=5.0)
K_EXP = np.round(np.arange(0, 17.0 + 1e-9, 0.05), 6)
K_SIM = np.round(np.arange(0, 20.0 + 1e-9, 0.01), 6)
SETTINGS = ex.FeffSettings(edge="L3", rmax_A=4.5, nleg=2, cluster_radius_A=4.6)


def two_shells(k: np.ndarray, sigma2: float = 0.004) -> np.ndarray:
    k = np.asarray(k, dtype=float)
    damp = np.exp(-2 * k**2 * sigma2)
    return damp * (0.3 * np.sin(5.48 * k - 1.2) + 0.2 * np.sin(6.33 * k - 1.3)) / (k + 1)


@pytest.fixture(scope="module")
def w_paths(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    ideal = bulk("W", "bcc", a=3.1652, cubic=True).repeat((3, 3, 3))
    pots = ex.compute_potentials(ideal, "W", SETTINGS, out / "pot", work_root=out)
    return shell_paths(ideal, pots, SETTINGS.cluster_radius_A, 2, out / "paths")


def test_fit_recovers_a_spectrum_made_from_feff_paths(w_paths):
    """Known E0 shift, S0^2, sigma^2 and deltaR, summed by larch's path2chi from the very
    FEFF path files: the fit returns them."""
    from larch.xafs import feffpath, path2chi

    assert [round(p.reff_A, 3) for p in w_paths] == [2.741, 3.165]
    assert [p.degeneracy for p in w_paths] == [8.0, 6.0]
    truth = {"s02": 0.88, "e0": 6.0, "sigma2": (0.0035, 0.0048), "deltar": (0.012, -0.015)}
    chi = np.zeros_like(K_EXP)
    for i, p in enumerate(w_paths):
        path = feffpath(str(p.file), s02=truth["s02"], e0=truth["e0"],
                        sigma2=truth["sigma2"][i], deltar=truth["deltar"][i])
        path2chi(path, k=K_EXP)
        chi += path.chi
    record = fit_shells(K_EXP, chi, w_paths, FT, ShellFitSettings(shells=2, rmin_A=1.5,
                                                                   rmax_A=3.3))
    assert record["e0_shift_eV"] == pytest.approx(truth["e0"], abs=0.2)
    assert record["s02"] == pytest.approx(truth["s02"], abs=0.02)
    assert record["sigma2_shell1_A2"] == pytest.approx(truth["sigma2"][0], abs=1.5e-4)
    assert record["sigma2_shell2_A2"] == pytest.approx(truth["sigma2"][1], abs=2.5e-4)
    assert record["r_shell1_A"] == pytest.approx(w_paths[0].reff_A + truth["deltar"][0],
                                                 abs=3e-3)
    assert record["r_shell2_A"] == pytest.approx(w_paths[1].reff_A + truth["deltar"][1],
                                                 abs=5e-3)
    assert record["rfactor"] < 1e-4
    for key in ("e0_shift_eV", "s02", "sigma2_shell1_A2", "r_shell1_A"):
        assert np.isfinite(record[f"{key}_err"])


def test_a_models_score_depends_only_on_it_and_the_experiment():
    """With the experiment's E0 shift and S0^2, dropping a model from the sweep leaves the
    others' scores as they were; with one shared fitted shift it does not."""
    exp = 0.9 * two_shells(K_EXP)
    sims = {f"n{n}": (K_SIM, two_shells(K_SIM, s2)) for n, s2 in ((0, 0.009), (2, 0.005),
                                                                    (10, 0.004))}
    fit = {"e0_shift_eV": 0.0, "s02": 0.9}

    def scores(subset, **kws):
        res = compare_spectra((K_EXP, exp), {k: sims[k] for k in subset}, FT, **kws)
        return {r.label: (r.exafs_mse_k, r.exafs_mse_r, r.e0_shift_eV) for r in res}

    yard = {"s02": "experiment", "e0_shift": "experiment", "experiment_fit": fit}
    full, fewer = scores(["n0", "n2", "n10"], **yard), scores(["n2", "n10"], **yard)
    assert full["n2"] == fewer["n2"] and full["n10"] == fewer["n10"]
    assert full["n10"][0] < full["n2"][0] < full["n0"][0]
    shared = {"s02": "fitted", "e0_shift": "shared"}
    full, fewer = scores(["n0", "n2", "n10"], **shared), scores(["n2", "n10"], **shared)
    assert full["n2"] != fewer["n2"]  # the shared shift moves with the sweep
    with pytest.raises(ValueError, match="needs the experiment's fit"):
        compare_spectra((K_EXP, exp), sims, FT, s02="experiment", e0_shift="experiment")


@pytest.mark.parametrize("n_small, n_large", [(10, 160)])
def test_intervals_shrink_and_the_noise_floor_is_the_sampling_error(n_small, n_large):
    """Snapshot means = truth + independent noise of 0.01: the 95 % interval of the MSE
    narrows as snapshots are added, and the noise floor is mean over k of
    (k^2 0.01 / sqrt(n))^2 (hand formula; independent snapshots have g = 1)."""
    truth = two_shells(K_SIM)
    exp = two_shells(K_EXP)
    fit = {"e0_shift_eV": 0.0, "s02": 1.0}
    rng = np.random.default_rng(3)
    widths, floors = [], []
    for n in (n_small, n_large):
        means = truth + rng.normal(0.0, 0.01, size=(n, len(K_SIM)))
        (res,) = compare_spectra(
            (K_EXP, exp), {"sim": (K_SIM, means.mean(axis=0))}, FT, s02="experiment",
            e0_shift="experiment", experiment_fit=fit, snapshots={"sim": means},
        )
        # a basic interval, centred on the noise-free score (score minus floor, which
        # is unbiased and so may fall below the interval's clip at zero)
        assert res.exafs_mse_k_lo <= max(res.exafs_mse_k_debiased, 0.0) <= res.exafs_mse_k_hi
        assert res.exafs_mse_r_lo <= res.exafs_mse_r_hi
        widths.append(res.exafs_mse_k_hi - res.exafs_mse_k_lo)
        inside = np.logical_and(K_EXP >= 3.0, K_EXP <= 14.0)  # FT's k window
        floors.append((res.exafs_noise_floor_k, np.mean((K_EXP[inside] ** 2 * 0.01) ** 2 / n)))
    assert widths[1] < widths[0] / 3
    for got, want in floors:
        assert got == pytest.approx(want, rel=0.15)
