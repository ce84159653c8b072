"""Figures render from small tables, with PNG, PDF and the plotted numbers as CSV."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dualbench import plot_answer, plot_layout, plots
from test_leaderboard import EXAFS_TEXT, MD_TEXT, write_failed_material


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


def test_close_n_tick_labels_never_run_together(tmp_path, monkeypatch):
    """The paper's N (0, 1, 2, 5, 10, 20, 35, 50) on Fig. 3's and the sigma^2 figure's log
    axis: 35 and 50 lie 0.15 decades apart and their labels overlapped.  Checked with
    matplotlib's own text extents on the figures as saved: every label drawn, none within
    a point of another on the same line."""
    from matplotlib.figure import Figure

    saved = {}  # figure -> its x tick labels' text and extents, as written
    real = Figure.savefig

    def keep(fig, *args, **kwargs):
        real(fig, *args, **kwargs)
        renderer = fig.canvas.get_renderer()
        labels = [t for t in fig.axes[0].get_xticklabels() if t.get_text()]
        saved[fig] = (fig.dpi, [(t.get_text(), t.get_window_extent(renderer)) for t in labels])

    monkeypatch.setattr(Figure, "savefig", keep)
    ns = [0, 1, 2, 5, 10, 20, 35, 50]
    rows = [{"material": "WS2", "model": "chgnet", "n_frames": n, "seed": seed,
             "force_mae": 300.0 / (1 + n) + seed, "force_slope": 0.9,
             "exafs_mse_ref_k": 0.1 / (1 + n) + 0.001 * seed} for n in ns for seed in (0, 1, 2)]
    plot_answer.fig3(pd.DataFrame(rows), tmp_path / "fig3")
    s2 = pd.DataFrame([{"n_frames": n, "seed": seed, "shell": 1, "r_ideal_A": 2.42,
                        "sigma2_A2": 0.002 + 0.001 / (1 + n)} for n in ns for seed in (0, 1)])
    plots.sigma2_vs_n(s2, tmp_path / "sigma2")
    assert len(saved) == 2
    for dpi, labels in saved.values():
        assert len(labels) == len(ns)
        one_point = dpi / 72.0
        for i, (text, a) in enumerate(labels):
            for _, b in labels[i + 1:]:
                same_line = a.y0 < b.y1 and b.y0 < a.y1
                apart = a.x1 + one_point <= b.x0 or b.x1 + one_point <= a.x0
                assert apart or not same_line, (text, a, b)
    # rotated labels overlap by design (the leaderboard's material names): left as drawn
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(2.0, 2.0))
    ax.set_xticks(range(4), ["SrTiO3 (Ti K)", "CdS (Cd K)", "ZnS (Zn K)", "Fe (Fe K)"],
                  rotation=30, ha="right")
    ax.set_xlim(-0.5, 3.5)
    pads = [t.get_pad() for t in ax.xaxis.get_major_ticks()]
    plot_layout.stagger_crowded_xtick_labels(fig)
    assert [t.get_pad() for t in ax.xaxis.get_major_ticks()] == pads
    plt.close(fig)


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


# Runs whose MD failed (the contract's files, built by test_leaderboard's helpers): every
# figure completes, leaves the failed run's curve or points out and names it.

#: W: "a" ran fine; "b" ran away at N = 0 seed 0 (MD stage); "c" left the crystal at N = 0
#: in both seeds (EXAFS stage: its sigma2.csv holds rows, sigma^2 0.0010, not to be used).
PLOT_RUNS = {
    ("a", 0, 0): (0.0060, 0.0003, 0.25, 0.22, 0.28, 500.0, None),
    ("a", 0, 1): (0.0062, 0.0003, 0.27, 0.24, 0.30, 520.0, None),
    ("a", 4, 0): (0.0032, 0.0002, 0.06, 0.05, 0.07, 100.0, None),
    ("a", 4, 1): (0.0034, 0.0002, 0.07, 0.06, 0.08, 110.0, None),
    ("b", 0, 0): (0.0100, 0.0003, 0.90, 0.80, 1.00, 300.0, "md"),
    ("b", 0, 1): (0.0050, 0.0003, 0.20, 0.18, 0.22, 320.0, None),
    ("b", 4, 0): (0.0035, 0.0002, 0.08, 0.07, 0.09, 90.0, None),
    ("b", 4, 1): (0.0036, 0.0002, 0.09, 0.08, 0.10, 95.0, None),
    ("c", 0, 0): (0.0010, 0.0001, 0.01, 0.00, 0.02, 400.0, "exafs"),
    ("c", 0, 1): (0.0010, 0.0001, 0.01, 0.00, 0.02, 410.0, "exafs"),
    ("c", 4, 0): (0.0040, 0.0002, 0.10, 0.09, 0.11, 150.0, None),
    ("c", 4, 1): (0.0042, 0.0002, 0.11, 0.10, 0.12, 160.0, None),
}
PLOTTED = [(model, n) for model in "abc" for n in (0, 4)]  # Fig. 2 and parity: seed 0


@pytest.fixture
def failed_study(tmp_path):
    folder = write_failed_material(tmp_path, "W", (0.003, 0.0002), PLOT_RUNS)
    chi_k, chi_r = _chi(1.0, 0.003)
    chi_k.to_csv(folder / "experiment" / "chi_k.csv", index=False)
    chi_r.to_csv(folder / "experiment" / "chi_r.csv", index=False)
    return folder


@pytest.fixture
def drawn(monkeypatch):
    """Every text of each figure saved (legends, notes, labels), whitespace collapsed."""
    from matplotlib.text import Text

    texts: list[str] = []
    real = plots.save_figure

    def keep(fig, stem, table):
        texts.extend(" ".join(t.get_text().split()) for t in fig.findobj(Text))
        return real(fig, stem, table)

    for module in (plots, plot_answer):
        monkeypatch.setattr(module, "save_figure", keep)
    return texts


def _run(folder, model, n, seed=0):
    return folder / model / f"n{n}" / f"seed{seed}"


def _names(texts, label, why):
    """A legend entry "<label>: MD unstable", and the reason beside it or in the note."""
    return (any(t.startswith(f"{label}: MD unstable") for t in texts)
            and any(f"{label}: {why}" in t or (t.startswith(f"{label}: MD unstable")
                                               and why in t) for t in texts))


def test_fig2_leaves_failed_runs_out_and_names_them(failed_study, drawn, tmp_path):
    from dualbench.exafs import FTSettings

    labels = [plots.run_label(model, n) for model, n in PLOTTED]
    runs = [{"model": model, "n": n, "seed": 0} for model, n in PLOTTED]
    sims = [(label, _run(failed_study, model, n) / "exafs")
            for label, (model, n) in zip(labels, PLOTTED, strict=True)]
    for scored in (None, plots.scored_shifts(failed_study / "exafs" / "comparison.csv", runs)):
        drawn.clear()
        stem = tmp_path / ("scored" if scored else "raw")
        table = _check(plots.fig2_from_files(
            sims, stem, experiment=failed_study / "experiment", k_window=(3, 14),
            scored=scored, ft=FTSettings(), models=[run["model"] for run in runs]), stem)
        assert set(table["curve"]) == {"experiment", "a vanilla (N=0)", "a fine-tuned (N=4)",
                                       "b fine-tuned (N=4)", "c fine-tuned (N=4)"}
        assert table["y"].notna().all()
        assert _names(drawn, "b vanilla (N=0)", MD_TEXT)
        assert _names(drawn, "c vanilla (N=0)", EXAFS_TEXT)
    assert any(t.startswith("simulations as scored: E0 shift +1.5 eV") for t in drawn)


def test_fig3_leaves_failed_exafs_points_out_and_names_them(failed_study, drawn, tmp_path):
    summary = pd.read_csv(failed_study / "summary.csv")
    # a failed run's EXAFS numbers are not used even when a summary holds some
    summary.loc[summary["model"] == "c", "exafs_mse_k"] = summary.loc[
        summary["model"] == "c", "exafs_mse_k"].fillna(0.001)
    record = {"models": {m: {"exafs_mse_k": {"answer": "unresolved"},
                             "force_mae": {"answer": "unresolved"}} for m in "abc"}}
    for given in (record, None):  # the workflow's convergence.json, or decided here
        drawn.clear()
        stem = tmp_path / ("given" if given else "decided")
        table = _check(plot_answer.fig3(summary, stem, record=given), stem)
        exafs = table[table["quantity"] == "exafs_mse_k"].set_index(["model", "n_frames"])
        assert set(exafs.index) == {("a", 0), ("a", 4), ("b", 0), ("b", 4), ("c", 4)}
        assert exafs.loc[("b", 0), "n_seeds"] == 1
        assert exafs.loc[("b", 0), "mean"] == pytest.approx(0.20)  # seed 1 alone
        force = table[table["quantity"] == "force_mae"].set_index(["model", "n_frames"])
        assert force.loc[("c", 0), "mean"] == pytest.approx(405.0)  # the DFT arm stays
        assert force.loc[("b", 0), "n_seeds"] == 2
        assert _names(drawn, "b N=0, seed 0", MD_TEXT)
        assert _names(drawn, "c N=0, seeds 0, 1", EXAFS_TEXT)


def _sigma2_figure(folder, stem):
    runs = [{"model": m, "n": n, "seed": s} for m, n, s in PLOT_RUNS]
    files = [_run(folder, m, n, s) / "md" / "sigma2.csv" for m, n, s in PLOT_RUNS]
    fit = json.loads((folder / "experiment" / "fit.json").read_text())
    return _check(plots.sigma2_vs_n(plots.runs_table(files, runs), stem, experiment_fit=fit),
                  stem)


def check_sigma2_means(table):
    """By hand from PLOT_RUNS: b at N = 0 is seed 1 alone (0.0050); c at N = 0 is gone,
    though both its sigma2.csv hold 0.0010."""
    shell1 = table[table["shell"] == 1].set_index(["model", "n_frames"])
    assert set(shell1.index) == {("a", 0), ("a", 4), ("b", 0), ("b", 4), ("c", 4)}
    assert shell1.loc[("b", 0), "mean"] == pytest.approx(0.0050)
    assert shell1.loc[("b", 0), "n_seeds"] == 1
    assert shell1.loc[("c", 4), "mean"] == pytest.approx(0.0041)
    assert shell1.loc[("a", 0), "mean"] == pytest.approx(0.0061)


def test_sigma2_leaves_failed_runs_out_even_with_rows(failed_study, drawn, tmp_path):
    table = plots.runs_table([_run(failed_study, "c", 0) / "md" / "sigma2.csv"],
                             [{"model": "c", "n": 0, "seed": 0}])
    assert len(table) == 1 and table["md_status"].iloc[0] == "unstable"
    assert table["md_failure"].iloc[0] == EXAFS_TEXT
    check_sigma2_means(_sigma2_figure(failed_study, tmp_path / "sigma2"))
    assert _names(drawn, "b N=0, seed 0", MD_TEXT)
    assert _names(drawn, "c N=0, seeds 0, 1", EXAFS_TEXT)


def test_the_sigma2_check_catches_a_planted_bug(failed_study, tmp_path, monkeypatch):
    """Oracle: trusting a sigma2.csv that has rows (the EXAFS-stage failure unseen) fails
    the check."""
    monkeypatch.setattr(plots, "run_failure", lambda run: None)
    with pytest.raises(AssertionError):
        check_sigma2_means(_sigma2_figure(failed_study, tmp_path / "sigma2"))


def test_parity_draws_failed_runs_and_says_so(failed_study, drawn, tmp_path):
    labels = [plots.run_label(model, n) for model, n in PLOTTED]
    tables = {label: pd.read_csv(_run(failed_study, model, n) / "force_parity.csv")
              for label, (model, n) in zip(labels, PLOTTED, strict=True)}
    tables["d vanilla (N=0)"] = tables["a vanilla (N=0)"].iloc[:0]  # no forces at all
    failures = {"b vanilla (N=0)": "MD unstable", "c vanilla (N=0)": "left the crystal"}
    table = _check(plots.parity(tables, tmp_path / "parity", failures=failures),
                   tmp_path / "parity")
    assert set(table["model"]) == set(labels)  # the forces need no MD: all drawn
    assert table.groupby("model")["slope"].first().to_dict() == pytest.approx(
        dict.fromkeys(labels, 0.8))
    assert any(t.startswith("b vanilla (N=0) (slope 0.80)") and "MD unstable" in t
               for t in drawn)
    assert "d vanilla (N=0): no DFT forces" in drawn


def test_convergence_leaves_header_only_records_out(failed_study, drawn, tmp_path):
    tables = {f"{m} N={n}, seed {s}": pd.read_csv(_run(failed_study, m, n, s) / "exafs"
                                                   / "convergence.csv")
              for m, n, s in PLOT_RUNS}
    table = _check(plots.convergence(tables, tmp_path / "conv", "chir_max", "max |chi(R)|"),
                   tmp_path / "conv")
    failed = {"b N=0, seed 0", "c N=0, seed 0", "c N=0, seed 1"}
    assert set(table["run"]) == set(tables) - failed
    assert all(f"{label}: MD unstable" in drawn for label in failed)
