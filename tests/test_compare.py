"""EXAFS comparison: E0 shift (shared, per model, fixed), S0^2 (fitted, fixed), scores."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy import constants

from dualbench.exafs import K_GRID, FTSettings, write_chi_k
from dualbench.scoring.against_experiment import compare_spectra, compare_stage
from dualbench.scoring.spectrum_scores import shifted_chi

#: 2 m_e / hbar^2 in 1/(Å^2 eV), from CODATA (scipy), not from larch: k^2 = ETOK (E - E0).
ETOK_PER_A2_EV = 2 * constants.m_e * constants.e / constants.hbar**2 * 1e-20
FT = FTSettings(kmin=3.0, kmax=14.0, dk=1.0, window="hanning", kweight=2, rmin=1.0, rmax=5.0)
K_EXP = np.round(np.arange(0, 17.0 + 1e-9, 0.05), 6)  # larch's grid of a spectrum to 17 1/Å
# Simulations on a 0.01 1/Å grid: shifted_chi interpolates chi linearly, which on FEFF's
# 0.05 grid damps a 2.7 Å shell by ~0.7 % (and biases a fitted S0^2 up by as much).
K_SIM = np.round(np.arange(0, 20.0 + 1e-9, 0.01), 6)


def model_chi(k: np.ndarray, sigma2: float = 0.004) -> np.ndarray:
    """A two-shell EXAFS-like chi(k) with a k-dependent phase (as FEFF's)."""
    k = np.asarray(k, dtype=float)
    amp = 8 * np.exp(-2 * k**2 * sigma2) / (k * 2.74**2 + 1) * np.exp(-2 * 2.74 / 8)
    amp2 = 6 * np.exp(-2 * k**2 * sigma2) / (k * 3.17**2 + 1) * np.exp(-2 * 3.17 / 8)
    phase = -1.2 - 0.08 * k
    return amp * np.sin(2 * k * 2.74 + phase) + amp2 * np.sin(2 * k * 3.17 + phase)


def experiment_from(e0_shift_eV: float, s02: float, sigma2: float = 0.004) -> np.ndarray:
    """The 'measured' spectrum of :func:`model_chi` with FEFF's origin ``e0_shift_eV`` above
    the experiment's E0, written out by hand (not with :func:`shifted_chi`): a photoelectron
    of wavenumber k above the experiment's E0 has k^2 - ETOK dE above FEFF's origin."""
    q = np.sqrt(np.clip(K_EXP**2 - ETOK_PER_A2_EV * e0_shift_eV, 0.0, None))
    return s02 * model_chi(q, sigma2)


def test_recovers_e0_shift_and_s02():
    sim = model_chi(K_SIM)
    exp = experiment_from(8.0, 0.8)
    (res,) = compare_spectra((K_EXP, exp), {"sim": (K_SIM, sim)}, FT)
    assert res.e0_shift_eV == pytest.approx(8.0, abs=0.02)
    assert res.s02 == pytest.approx(0.8, abs=2e-3) and res.s02_mode == "fitted"
    assert res.s02_fitted == res.s02  # the per-model column equals the fitted yardstick here
    assert res.exafs_mse_k < 1e-5 and res.exafs_mse_r < 1e-5 and res.exafs_rfactor < 1e-4
    # Without the shift the same spectra score far worse.
    (fixed,) = compare_spectra((K_EXP, exp), {"sim": (K_SIM, sim)}, FT, e0_shift=0.0)
    assert fixed.e0_mode == "fixed" and fixed.e0_shift_eV == 0.0
    assert fixed.exafs_mse_k > 100 * res.exafs_mse_k


def test_shared_shift_is_one_value_per_material_and_per_model_is_not():
    sim_a = model_chi(K_SIM, sigma2=0.003)
    sim_b = model_chi(K_SIM, sigma2=0.006)
    exp = experiment_from(6.0, 0.9, sigma2=0.003)
    sims = {"a": (K_SIM, sim_a), "b": (K_SIM, sim_b)}
    shared = compare_spectra((K_EXP, exp), sims, FT)
    assert shared[0].e0_shift_eV == shared[1].e0_shift_eV
    assert {r.e0_mode for r in shared} == {"shared"}
    per_model = compare_spectra((K_EXP, exp), sims, FT, e0_shift="per_model")
    assert per_model[0].e0_shift_eV == pytest.approx(6.0, abs=0.02)
    assert per_model[0].exafs_mse_k <= shared[0].exafs_mse_k + 1e-12
    # The right model wins under the shared shift.
    assert shared[0].exafs_mse_k < shared[1].exafs_mse_k


def test_fixed_s02_is_used_and_reported():
    sim = model_chi(K_SIM)
    exp = experiment_from(5.0, 0.8)
    (res,) = compare_spectra((K_EXP, exp), {"sim": (K_SIM, sim)}, FT, s02=0.8)
    assert res.s02 == 0.8 and res.s02_mode == "fixed"
    assert res.s02_fitted == pytest.approx(0.8, abs=2e-3)  # its own S0^2, reported beside
    assert res.e0_shift_eV == pytest.approx(5.0, abs=0.02)
    (res,) = compare_spectra((K_EXP, exp), {"sim": (K_SIM, sim)}, FT, s02=1.0)
    assert res.s02 == 1.0 and res.exafs_mse_k > 1e-4


def test_scores_are_the_documented_formulas():
    from dualbench.exafs import fourier_transform

    sim = model_chi(K_GRID)
    exp = model_chi(K_EXP, sigma2=0.005)
    (res,) = compare_spectra((K_EXP, exp), {"sim": (K_GRID, sim)}, FT, s02=0.9, e0_shift=2.0)
    model = 0.9 * shifted_chi(K_EXP, K_GRID, sim, 2.0)
    inside = (K_EXP >= 3) & (K_EXP <= 14)
    assert res.exafs_mse_k == pytest.approx(np.mean(((exp - model) * K_EXP**2)[inside] ** 2))
    r, x_exp = fourier_transform(K_EXP, exp, FT)
    _, x_mod = fourier_transform(K_EXP, model, FT)
    rin = (r >= 1) & (r <= 5)
    assert res.exafs_mse_r == pytest.approx(np.mean((abs(x_exp) - abs(x_mod))[rin] ** 2))
    rf = np.sum(abs(x_exp - x_mod)[rin] ** 2) / np.sum(abs(x_exp)[rin] ** 2)
    assert res.exafs_rfactor == pytest.approx(rf)


def test_refuses_k_range_beyond_the_experiment():
    sim = model_chi(K_GRID)
    short = K_EXP[K_EXP <= 12.0]
    with pytest.raises(ValueError, match=r"exp.csv: ft.kmax: .* data end at k = 12.00"):
        compare_spectra((short, model_chi(short)), {"sim": (K_GRID, sim)}, FT,
                        experiment_name="exp.csv")


def test_compare_stage_writes_the_comparison_table(tmp_path):
    exp_file = tmp_path / "experiment" / "chi_k.csv"
    write_chi_k(exp_file, K_EXP, experiment_from(7.0, 0.85))
    runs, files = [], []
    for n, sigma2 in ((0, 0.008), (2, 0.004)):
        path = tmp_path / f"n{n}" / "chi_k.csv"
        write_chi_k(path, K_GRID, model_chi(K_GRID, sigma2), np.zeros_like(K_GRID))
        runs.append({"material": "W", "model": "chgnet", "n": n, "seed": 0})
        files.append(path)
    out = tmp_path / "comparison.csv"
    compare_stage(exp_file, runs, files, exafs={"s02": None, "e0_shift": "shared"},
                  ft=vars(FT), out_csv=out, out_json=tmp_path / "comparison.json")
    table = pd.read_csv(out)
    assert list(table.columns[:4]) == ["material", "model", "n_frames", "seed"]
    assert {"exafs_mse_k", "exafs_mse_k_lo", "exafs_mse_k_hi", "exafs_mse_r", "exafs_rfactor",
            "exafs_noise_floor_k", "e0_shift_eV", "s02", "exafs_mse_k_fitted_s02",
            "s02_fitted"} <= set(table.columns)
    assert table["exafs_mse_k_lo"].isna().all()  # no per-snapshot means given: no interval
    assert list(table["n_frames"]) == [0, 2]
    assert table["e0_shift_eV"].nunique() == 1
    assert table.loc[0, "e0_shift_eV"] == pytest.approx(7.0, abs=0.1)
    assert table.loc[1, "exafs_mse_k"] < table.loc[0, "exafs_mse_k"]  # sigma2 0.004 is right
    record = json.loads((tmp_path / "comparison.json").read_text())
    assert record["settings"]["s02"] == "fitted" and len(record["results"]) == 2


def test_compare_cli_with_several_simulations(tmp_path, capsys):
    from dualbench.cli import main

    write_chi_k(tmp_path / "exp" / "chi_k.csv", K_EXP, experiment_from(7.0, 0.85))
    write_chi_k(tmp_path / "a" / "chi_k.csv", K_SIM, model_chi(K_SIM))
    write_chi_k(tmp_path / "b" / "chi_k.csv", K_SIM, model_chi(K_SIM, 0.008))
    out = tmp_path / "metrics.json"
    assert main(["compare", "--experiment", str(tmp_path / "exp"), "--simulation",
                 str(tmp_path / "a"), "--simulation", str(tmp_path / "b"),
                 "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    shifts = {r["e0_shift_eV"] for r in record["results"]}
    assert len(shifts) == 1 and abs(shifts.pop() - 7.0) < 0.5
    assert record["settings"]["e0_shift"] == "shared"
    out1 = tmp_path / "one.json"
    assert main(["compare", "--experiment", str(tmp_path / "exp"), "--simulation",
                 str(tmp_path / "a"), "--out", str(out1), "--s02", "0.85",
                 "--e0-shift", "7"]) == 0
    one = json.loads(out1.read_text())
    assert one["s02"] == 0.85 and one["e0_shift_eV"] == 7.0 and one["exafs_mse_k"] < 1e-5
    capsys.readouterr()
    assert main(["compare", "--experiment", str(tmp_path / "nowhere"), "--simulation",
                 str(tmp_path / "a"), "--out", str(tmp_path / "x.json")]) == 2
    assert "nowhere/chi_k.csv" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# Independent oracles: larch's FEFF path for the E0 convention, brute force for S0^2


@pytest.fixture(scope="module")
def feff_path_file(tmp_path_factory) -> str:
    """feff0001.dat of FEFF8L (larch's) for bcc W's first shell: one path, 8 W at 2.74 Å."""
    from ase.build import bulk

    from dualbench.exafs import FeffSettings, cut_cluster, feff_input, run_feff_modules

    folder = tmp_path_factory.mktemp("feff_w")
    atoms = bulk("W", "bcc", a=3.1652, cubic=True).repeat(3)
    settings = FeffSettings(edge="L3", rmax_A=2.8, nleg=2, cluster_radius_A=4.0)
    text = feff_input(cut_cluster(atoms, 0, 4.0), {"W": 1}, settings)
    # ff2x's print level 3 writes the path file feffNNNN.dat that larch's feffpath reads.
    text = re.sub(r"(?m)^PRINT .*$", "PRINT 0 0 0 0 0 3", text)
    (folder / "feff.inp").write_text(text)
    run_feff_modules(folder, ("rdinp", "pot", "xsph", "pathfinder", "genfmt", "ff2x"))
    return str(folder / "feff0001.dat")


def larch_path_chi(feff_file: str, k: np.ndarray, **params: float) -> np.ndarray:
    """chi(k) of a FEFF path with larch's own path parameters (``e0`` in eV, ``s02``...)."""
    from larch.xafs import feffpath, path2chi

    path = feffpath(feff_file, **params)
    path2chi(path, k=k)
    return np.asarray(path.chi)


def test_e0_shift_is_larchs_path_e0(feff_path_file):
    """shifted_chi(dE) of FEFF's chi is larch's path chi with ``e0 = dE`` (same FEFF data)."""
    k_fine = np.round(np.arange(0, 20.0 + 1e-9, 0.01), 6)
    chi0 = larch_path_chi(feff_path_file, k_fine, sigma2=0.003)
    inside = (K_EXP >= 3) & (K_EXP <= 14)
    for de in (-4.0, 7.5):
        expected = larch_path_chi(feff_path_file, K_EXP, e0=de, sigma2=0.003)
        assert np.abs(expected[inside]).max() > 0.02
        got = shifted_chi(K_EXP, k_fine, chi0, de)
        np.testing.assert_allclose(got[inside], expected[inside], atol=1e-4)


def test_fit_recovers_larchs_e0_and_s02(feff_path_file):
    """An 'experiment' made by larch (path e0 = 6.5 eV, S0^2 = 0.85) from FEFF's path gives
    back E0 shift 6.5 eV and S0^2 0.85 against the unshifted FEFF chi."""
    exp = larch_path_chi(feff_path_file, K_EXP, e0=6.5, s02=0.85, sigma2=0.003)
    sim = larch_path_chi(feff_path_file, K_SIM, sigma2=0.003)
    (res,) = compare_spectra((K_EXP, exp), {"feff": (K_SIM, sim)}, FT)
    assert res.e0_shift_eV == pytest.approx(6.5, abs=0.05)
    assert res.s02 == pytest.approx(0.85, abs=0.005)
    assert res.exafs_rfactor < 1e-3


def test_fitted_s02_is_the_brute_force_minimum_for_an_imperfect_model():
    """S0^2 fitted against a model with the wrong sigma^2 (no exact fit exists) is where
    a brute-force scan of the documented k-space MSE is lowest."""
    exp = experiment_from(0.0, 0.8, sigma2=0.006)
    sim = model_chi(K_SIM, sigma2=0.003)
    (res,) = compare_spectra((K_EXP, exp), {"sim": (K_SIM, sim)}, FT, e0_shift=0.0)
    inside = (K_EXP >= 3) & (K_EXP <= 14)
    model = np.interp(K_EXP, K_SIM, sim)[inside] * K_EXP[inside] ** 2
    data = exp[inside] * K_EXP[inside] ** 2
    scan = np.arange(0.0, 2.0, 1e-4)
    mse = np.mean((data[None, :] - scan[:, None] * model[None, :]) ** 2, axis=1)
    best = scan[np.argmin(mse)]
    assert 0.5 < best < 0.75  # the broader 'experiment' needs a smaller amplitude
    assert res.s02 == pytest.approx(best, abs=2e-4)
    assert res.exafs_mse_k == pytest.approx(mse.min(), rel=1e-3)
