"""Figures render from small tables, with PNG, PDF and the plotted numbers as CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dualbench import plot_answer, plots


def _chi(amplitude, sigma2):
    k = np.arange(0, 16.01, 0.05)
    chi = amplitude * np.exp(-2 * sigma2 * k**2) * np.sin(2 * 2.74 * k) / np.maximum(k, 0.5) ** 2
    r = np.arange(0, 8, 0.03)
    mag = amplitude * 0.01 / (0.01 + sigma2) * np.exp(-((r - 2.5) ** 2) / (0.02 + sigma2))
    return pd.DataFrame({"k": k, "chi": chi}), pd.DataFrame({"r": r, "chir_mag": mag})


def _check(paths, stem):
    assert [p.name for p in paths] == [f"{stem.name}.png", f"{stem.name}.pdf", f"{stem.name}.csv"]
    png, pdf, csv = paths
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert pdf.read_bytes()[:5] == b"%PDF-"
    return pd.read_csv(csv)


def test_fig2(tmp_path):
    curves = {"experiment": _chi(1.0, 0.003), "vanilla (N=0)": _chi(1.0, 0.008),
              "fine-tuned (N=50)": _chi(1.0, 0.0035)}
    table = _check(plots.fig2(curves, tmp_path / "fig2", kweight=2, title="W L3", k_window=(3, 14)),
                   tmp_path / "fig2")
    assert set(table["curve"]) == set(curves)
    assert set(table["space"]) == {"k", "R"}
    r_vanilla = table[(table.curve == "vanilla (N=0)") & (table.space == "R")]["y"].max()
    r_exp = table[(table.curve == "experiment") & (table.space == "R")]["y"].max()
    assert r_vanilla < r_exp  # more disorder, lower FT peak: what the plot shows


def _summary(with_exafs=True):
    rows = []
    for n, mse, fmae in [(0, 0.16, 500), (2, 0.12, 300), (10, 0.07, 120), (50, 0.06, 80)]:
        for seed, jitter in [(0, 1.0), (1, 1.1)]:
            row = {"material": "W", "model": "chgnet", "n_frames": n, "seed": seed,
                   "force_mae": fmae * jitter, "force_slope": 0.6}
            if with_exafs:
                row["exafs_mse_k"] = mse * jitter
            rows.append(row)
    return pd.DataFrame(rows)


def test_fig3_mean_and_spread_over_seeds(tmp_path):
    table = _check(plot_answer.fig3(_summary(), tmp_path / "fig3"), tmp_path / "fig3")
    force = table[table.quantity == "force_mae"].set_index("n_frames")
    assert force.loc[0, "mean"] == pytest.approx(525.0)
    # 95 % half-width of the mean of two seeds: Student t(0.975, 1) = 12.71 std / sqrt(2)
    assert force.loc[0, "half_width"] == pytest.approx(
        12.706 * np.std([500, 550], ddof=1) / np.sqrt(2), rel=1e-3)
    assert list(force["n_seeds"]) == [2, 2, 2, 2]
    assert set(table.quantity) == {"exafs_mse_k", "force_mae"}
    # N = 10 (120, 132) against N = 50 (80, 88): paired differences 40, 44, margin
    # 0.1 x |525 - 84| = 44.1; the 95 % interval 42 +- 25 excludes 0: different, so the
    # sweep has not converged below its largest N.
    assert set(force["answer"]) == {"not converged"}
    assert force["converged_n"].isna().all()


def test_fig3_without_experiment(tmp_path):
    stem = tmp_path / "fig3"
    table = _check(plot_answer.fig3(_summary(with_exafs=False), stem), stem)
    assert set(table.quantity) == {"force_mae"}


def test_parity(tmp_path):
    rng = np.random.default_rng(0)
    ref = rng.normal(size=300)
    tables = {
        "vanilla": pd.DataFrame({"force_dft_eV_per_A": ref, "force_pred_eV_per_A": 0.6 * ref}),
        "N=50": pd.DataFrame({"force_dft_eV_per_A": ref, "force_pred_eV_per_A": 0.98 * ref}),
    }
    table = _check(plots.parity(tables, tmp_path / "parity"), tmp_path / "parity")
    slopes = table.groupby("model")["slope"].first()
    assert slopes["vanilla"] == pytest.approx(0.6)
    assert slopes["N=50"] == pytest.approx(0.98)


def test_convergence_and_sigma2(tmp_path):
    conv = pd.DataFrame({"n_snapshots": [1, 2, 3, 4], "rfactor_to_final": [0.1, 0.04, 0.01, 0]})
    table = _check(plots.convergence({"N=0": conv}, tmp_path / "conv", "rfactor_to_final",
                                     "R-factor to the final average"), tmp_path / "conv")
    assert len(table) == 4
    s2 = pd.DataFrame({"n_frames": [0, 0, 10, 10], "seed": [0, 1, 0, 1], "shell": [1, 1, 1, 1],
                       "r_ideal_A": [2.74] * 4, "sigma2_A2": [0.006, 0.0062, 0.003, 0.0031]})
    table = _check(plots.sigma2_vs_n(s2, tmp_path / "sigma2"), tmp_path / "sigma2")
    assert table.set_index("n_frames").loc[10, "mean"] == pytest.approx(0.00305)
    fit = {"sigma2_shell1_A2": 0.0029, "sigma2_shell1_A2_err": 0.0002}
    table = _check(plots.sigma2_vs_n(s2, tmp_path / "band", experiment_fit=fit),
                   tmp_path / "band")
    assert set(table["sigma2_exp_A2"]) == {0.0029} and set(table["sigma2_exp_A2_err"]) == {2e-4}
    # two models are two lines, never averaged into one
    both = pd.concat([s2.assign(model="soft"),
                      s2.assign(model="stiff", sigma2_A2=s2["sigma2_A2"] / 2)])
    table = _check(plots.sigma2_vs_n(both, tmp_path / "models"), tmp_path / "models")
    means = table.set_index(["model", "n_frames"])["mean"]
    assert means[("soft", 0)] == pytest.approx(0.0061)
    assert means[("stiff", 0)] == pytest.approx(0.00305)
    # a compound's shells say which element they are (metal-S vs metal-metal in WS2)
    ws2 = pd.concat([s2.assign(neighbour="S"),
                     s2.assign(shell=2, r_ideal_A=3.15, neighbour="W", sigma2_A2=0.005)])
    table = _check(plots.sigma2_vs_n(ws2, tmp_path / "ws2"), tmp_path / "ws2")
    assert table.groupby("shell")["neighbour"].unique().map(list).to_dict() == {
        1: ["S"], 2: ["W"]}


def test_cli_plot_fig2_and_fig3(tmp_path):
    import subprocess
    import sys

    for name, (amp, s2) in {"exp": (1.0, 0.003), "van": (1.0, 0.008)}.items():
        folder = tmp_path / name
        folder.mkdir()
        chi_k, chi_r = _chi(amp, s2)
        chi_k.to_csv(folder / "chi_k.csv", index=False)
        chi_r.to_csv(folder / "chi_r.csv", index=False)
    proc = subprocess.run(
        [sys.executable, "-m", "dualbench", "plot", "fig2", "--experiment", str(tmp_path / "exp"),
         "--simulation", f"vanilla={tmp_path / 'van'}", "--out", str(tmp_path / "f2")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert set(pd.read_csv(tmp_path / "f2.csv")["curve"]) == {"experiment", "vanilla"}
    _summary().to_csv(tmp_path / "summary.csv", index=False)
    proc = subprocess.run(
        [sys.executable, "-m", "dualbench", "plot", "fig3", "--summary",
         str(tmp_path / "summary.csv"), "--out", str(tmp_path / "f3")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "f3.png").is_file() and (tmp_path / "f3.pdf").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "dualbench", "plot", "fig2", "--simulation", "nolabel",
         "--out", str(tmp_path / "x")],
        capture_output=True, text=True,
    )
    assert bad.returncode == 2 and "expected LABEL=FOLDER" in bad.stderr


def test_fig2_without_experiment_says_so(tmp_path):
    folder = tmp_path / "sim"
    folder.mkdir()
    chi_k, chi_r = _chi(1.0, 0.005)
    chi_k.to_csv(folder / "chi_k.csv", index=False)
    chi_r.to_csv(folder / "chi_r.csv", index=False)
    paths = plots.fig2_from_files([("vanilla", folder)], tmp_path / "fig2", experiment=None)
    table = _check(paths, tmp_path / "fig2")
    assert set(table["curve"]) == {"vanilla"}


def test_fig2_draws_simulations_as_scored(tmp_path):
    """With the comparison's (E0 shift, S0^2) the simulation is drawn as scored: S0^2 times
    chi at q = sqrt(k^2 - ETOK dE) (hand formula, CODATA's ETOK), and |chi(R)| of that."""
    from scipy import constants

    from dualbench.exafs import K_GRID, FTSettings, write_chi_k, write_chi_r

    etok = 2 * constants.m_e * constants.e / constants.hbar**2 * 1e-20
    chi = np.sin(2 * 2.74 * K_GRID) * np.exp(-0.01 * K_GRID**2) / (K_GRID + 1)
    write_chi_k(tmp_path / "sim" / "chi_k.csv", K_GRID, chi)
    write_chi_r(tmp_path / "sim" / "chi_r.csv", K_GRID, chi)  # replaced when scored
    ft = FTSettings()
    table = _check(plots.fig2_from_files([("vanilla", tmp_path / "sim")], tmp_path / "fig2",
                                         scored=[(8.0, 0.5)], ft=ft), tmp_path / "fig2")
    k_curve = table[(table.curve == "vanilla") & (table.space == "k")]
    k = k_curve["x"].to_numpy()
    q = np.sqrt(np.clip(k**2 - etok * 8.0, 0, None))
    want = 0.5 * np.interp(q, K_GRID, chi) * k**2
    inside = k > 3
    assert np.allclose(k_curve["y"].to_numpy()[inside], want[inside], atol=2e-3)


def test_crowded_fig2_gets_one_pair_of_panels_per_model(tmp_path):
    """Three models, vanilla and tuned, beside the experiment: one |FT| panel per model,
    each with the experiment; the table holds every curve once."""
    import matplotlib

    matplotlib.use("Agg")
    from dualbench.plots import _panels, fig2

    k = np.linspace(0, 15, 301)
    r = np.linspace(0, 6, 121)
    def tables(a):
        return (pd.DataFrame({"k": k, "chi": a * np.sin(2 * k)}),
                pd.DataFrame({"r": r, "chir_mag": a * np.exp(-(r - 2.5) ** 2)}))
    curves = {"experiment": tables(1.0)}
    groups = {}
    for i, model in enumerate(["chgnet", "chgnet-r2scan", "sevennet"]):
        for n in (0, 10):
            label = f"{model} N={n}"
            curves[label] = tables(0.5 + 0.1 * i + 0.01 * n)
            groups[label] = model
    panels = _panels(list(curves), groups)
    assert list(panels) == ["chgnet", "chgnet-r2scan", "sevennet"]
    assert all(p[0] == "experiment" and len(p) == 3 for p in panels.values())
    assert list(_panels(list(curves)[:3], groups)) == [""]  # two curves: one panel
    fig2(curves, tmp_path / "fig2", groups=groups)
    table = pd.read_csv(tmp_path / "fig2.csv")
    assert sorted(table["curve"].unique()) == sorted(curves)
    assert len(table) == len(curves) * (len(k) + len(r))


def test_crowded_parity_gets_a_panel_per_model_and_keeps_every_slope(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 300)
    tables, groups = {}, {}
    for model, soft in [("a", 0.6), ("b", 0.4), ("c", 0.7)]:
        for n, factor in [(0, soft), (10, 0.95)]:
            label = f"{model} N={n}"
            tables[label] = pd.DataFrame({"force_dft_eV_per_A": ref,
                                          "force_pred_eV_per_A": factor * ref})
            groups[label] = model
    table = _check(plots.parity(tables, tmp_path / "parity", groups=groups),
                   tmp_path / "parity")
    slopes = table.groupby("model")["slope"].first()
    assert slopes["b N=0"] == pytest.approx(0.4) and slopes["c N=10"] == pytest.approx(0.95)
    assert len(slopes) == 6
