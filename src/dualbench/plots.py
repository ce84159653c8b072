"""Figures of the study: Fig. 2 (FT of experiment vs vanilla vs fine-tuned MD), Fig. 3 (EXAFS
MSE and force MAE against N) and diagnostics (force parity, EXAFS convergence, sigma^2 per
shell against N).

Every figure is written as PNG and PDF with the plotted numbers beside it as CSV
(``<stem>.png``, ``<stem>.pdf``, ``<stem>.csv``).  Curves differ by line style and marker as
well as colour, so the figures read in greyscale.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dualbench.io import atomic_path, write_csv

log = logging.getLogger(__name__)

STYLES = [
    {"color": "0.0", "linestyle": "-", "marker": None},
    {"color": "#d62728", "linestyle": "--", "marker": None},
    {"color": "#1f77b4", "linestyle": "-.", "marker": None},
    {"color": "#2ca02c", "linestyle": ":", "marker": None},
    {"color": "#9467bd", "linestyle": (0, (5, 1, 1, 1, 1, 1)), "marker": None},
]
MARKERS = ["o", "s", "^", "D", "v", "P"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.linewidth": 0.8, "figure.dpi": 150})
    return plt


def save_figure(fig, stem: str | Path, table: pd.DataFrame) -> list[Path]:
    """Write ``stem``.png, .pdf and .csv atomically; returns the paths."""
    stem = Path(stem)
    paths = []
    for suffix in (".png", ".pdf"):
        target = stem.with_suffix(suffix)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=suffix[1:], bbox_inches="tight")
        paths.append(target)
    write_csv(stem.with_suffix(".csv"), table)
    paths.append(stem.with_suffix(".csv"))
    _pyplot().close(fig)
    log.info("wrote %s.{png,pdf,csv}", stem)
    return paths


def _kweighted(frame: pd.DataFrame, kweight: int) -> np.ndarray:
    return frame["chi"].to_numpy() * frame["k"].to_numpy() ** kweight


def _style(position: int) -> dict:
    """The style of a panel's curve at ``position``: the first (the experiment) black, the
    others cycling through the coloured styles, never black again."""
    if position < len(STYLES):
        return STYLES[position]
    return STYLES[1 + (position - 1) % (len(STYLES) - 1)]


#: Simulated curves beyond which Fig. 2 draws one pair of panels per model.
FIG2_MAX_CURVES = 4


def _panels(labels: Sequence[str], groups: Mapping[str, str] | None) -> dict[str, list[str]]:
    """{panel title: the labels it draws}: one panel, or one per group when crowded."""
    grouped = [label for label in labels if groups and label in groups]
    if not groups or len(grouped) <= FIG2_MAX_CURVES or len(set(groups.values())) < 2:
        return {"": list(labels)}
    common = [label for label in labels if label not in groups]
    panels: dict[str, list[str]] = {}
    for label in grouped:
        panels.setdefault(groups[label], list(common)).append(label)
    return panels


def fig2(
    curves: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]],
    stem: str | Path,
    kweight: int = 2,
    title: str = "",
    rmax_plot: float = 6.0,
    note: str | None = None,
    k_window: tuple[float, float] | None = None,
    groups: Mapping[str, str] | None = None,
) -> list[Path]:
    """|chi(R)| of k^w-weighted chi(k) for each labelled curve, with a k-space panel.

    ``groups`` maps a simulated curve's label to its model: with more than
    :data:`FIG2_MAX_CURVES` simulated curves of several models, each model gets its own
    pair of panels (the experiment, or any curve without a group, in every one).

    ``curves`` maps a label (``experiment``, ``vanilla (N=0)``, ``fine-tuned (N=50)``) to
    its (chi_k, chi_r) tables: columns ``k, chi`` and ``r, chir_mag``.  All curves must
    come from the same Fourier transform; ``note`` is printed on the figure (e.g. that no
    experiment was given).  ``k_window`` (kmin, kmax in 1/Å) is shaded and bounds the
    k panel.
    """
    plt = _pyplot()
    panels = _panels(list(curves), groups)
    n = len(panels)
    fig, axes = plt.subplots(2 if n > 1 else 1, n if n > 1 else 2, squeeze=False,
                             figsize=(9.0, 3.6) if n == 1 else (3.8 * n, 6.4))
    pairs = [(axes[0, 0], axes[0, 1])] if n == 1 else [(axes[1, j], axes[0, j]) for j in range(n)]
    rows, seen = [], set()
    for (ax_k, ax_r), (name, labels) in zip(pairs, panels.items(), strict=True):
        for position, label in enumerate(labels):
            chi_k, chi_r = curves[label]
            kchi = _kweighted(chi_k, kweight)
            style = _style(position)
            ax_k.plot(chi_k["k"], kchi, label=label, lw=1.2, **style)
            keep = chi_r["r"] <= rmax_plot
            ax_r.plot(chi_r["r"][keep], chi_r["chir_mag"][keep], label=label, lw=1.4, **style)
            if label not in seen:  # each curve once in the table
                seen.add(label)
                rows += [("k", label, k, v) for k, v in zip(chi_k["k"], kchi, strict=True)]
                rows += [("R", label, r, v)
                         for r, v in zip(chi_r["r"], chi_r["chir_mag"], strict=True)]
        if k_window is not None:
            ax_k.axvspan(*k_window, color="0.92", zorder=0, label="_FT window")
            ax_k.set_xlim(0, k_window[1] + 2)
        ax_k.set_xlabel(r"$k$ (Å$^{-1}$)")
        ax_k.set_ylabel(rf"$k^{kweight}\chi(k)$ (Å$^{{-{kweight}}}$)")
        ax_r.set_xlabel(r"$R$ (Å)")
        ax_r.set_ylabel(rf"$|\mathrm{{FT}}(k^{kweight}\chi)|$ (Å$^{{-{kweight + 1}}}$)")
        ax_r.set_xlim(0, rmax_plot)
        ax_r.legend(frameon=False, fontsize=8)
        if n > 1:
            ax_r.set_title(name, fontsize=10)
    if note:
        ax_r = pairs[-1][1]
        ax_r.text(0.98, 0.02, note, transform=ax_r.transAxes, ha="right", va="bottom",
                  fontsize=8, style="italic")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, stem, pd.DataFrame(rows, columns=["space", "curve", "x", "y"]))


EXAFS_COLOR = "#1f4e9c"
FORCE_COLOR = "#c0392b"


def fig3(
    summary: pd.DataFrame,
    stem: str | Path,
    exafs_column: str | None = None,
    force_column: str = "force_mae",
    title: str = "",
    record: Mapping | None = None,
) -> list[Path]:
    """EXAFS MSE (left axis, blue circles) and force MAE (right axis, meV/Å, red squares)
    against N: mean over seeds with 95 % Student-t error bars of the seed spread (which
    contains each run's sampling noise; one seed: its sampling interval), one line style
    per model.  Against the experiment, the yardstick's 95 % band (the experiment fit's E0
    and S0^2, common to every model) is shaded apart.  ``record`` is convergence.json
    (:mod:`dualbench.scoring.convergence`, default: computed with the default margins):
    its converged N is marked by a dotted vertical line and its answer (converged,
    unresolved, not converged) is in the legend.  N = 0 (the vanilla model) sits on a
    symmetric-log axis.  ``exafs_column`` defaults to the score against the experiment
    (``exafs_mse_k``) or, without one, against the reference model (``exafs_mse_ref_k``),
    which the axis then calls what it is: convergence of the simulation."""
    from dualbench.scoring.convergence import by_n, convergence_record

    def present(column: str) -> bool:
        return column in summary and summary[column].notna().any()

    if exafs_column is None:
        exafs_column = "exafs_mse_ref_k" if (
            not present("exafs_mse_k") and present("exafs_mse_ref_k")) else "exafs_mse_k"
    to_reference = exafs_column == "exafs_mse_ref_k"
    record = record or convergence_record(summary)
    plt = _pyplot()
    fig, ax_left = plt.subplots(figsize=(5.6, 4.2))
    ax_right = ax_left.twinx()
    table, handles = [], []
    has_exafs = present(exafs_column)
    for m, (model, rows) in enumerate(summary.groupby("model")):
        line = ["-", "--", "-.", ":"][m % 4]
        for ax, column, color, marker, name in (
            (ax_left, exafs_column, EXAFS_COLOR, "o",
             "EXAFS MSE to reference" if to_reference else "EXAFS MSE"),
            (ax_right, force_column, FORCE_COLOR, "s", "force MAE"),
        ):
            if column == exafs_column and not has_exafs:
                continue
            data = by_n(rows, column)
            decision = record["models"].get(str(model), {}).get(column, {})
            n_conv, word = decision.get("n_converged"), decision.get("answer", "unresolved")
            label = f"{name} ({model})" if summary["model"].nunique() > 1 else name
            said = f"converged at N={n_conv}" if n_conv is not None else word
            handles.append(ax.errorbar(
                data["n_frames"], data["mean"], yerr=data["half_width"], color=color,
                marker=marker, ls=line, capsize=3, label=f"{label}: {said}"))
            # each seed's own value: with two or three seeds the t interval is wide, the
            # points show what it is made of
            seeds = rows.dropna(subset=[column])
            ax.plot(seeds["n_frames"], seeds[column], ls="none", marker=marker, ms=3,
                    mfc="none", color=color, alpha=0.6)
            _clip_to_data(ax, seeds[column])
            if column == "exafs_mse_k" and "exafs_mse_k_yardstick_sd" in rows:
                band = _yardstick_band(rows, data)
                if band is not None:
                    handles.append(ax.fill_between(
                        data["n_frames"], data["mean"] - band, data["mean"] + band,
                        color=color, alpha=0.12, lw=0,
                        label="experiment fit's E0, S0$^2$ (95 %, common to all)"))
                    data = data.assign(yardstick_half_width=band)
            if n_conv is not None:
                ax.axvline(n_conv, color=color, ls=":", lw=1.0)
            table.append(data.assign(model=model, quantity=column, converged_n=n_conv,
                                     answer=word))
    _exafs_axis(ax_left, summary, has_exafs, to_reference)
    ax_right.set_ylabel("force MAE (meV/Å)", color=FORCE_COLOR)
    ax_right.tick_params(axis="y", colors=FORCE_COLOR)
    ax_left.set_xscale("symlog", linthresh=1.0)
    ns = sorted(summary["n_frames"].unique())
    ax_left.set_xticks(ns)
    ax_left.set_xticklabels(["0\n(vanilla)" if n == 0 else str(n) for n in ns])
    ax_left.set_xlabel("DFT frames used for fine-tuning, N")
    # Below the axes: inside, it would hide the points it explains.
    ax_left.legend(handles=handles, frameon=False, fontsize=7, loc="upper center",
                   bbox_to_anchor=(0.5, -0.25), ncol=1,
                   title="seed mean, 95 % Student t over seeds; open: each seed",
                   title_fontsize=7)
    if title:
        ax_left.set_title(title)
    fig.tight_layout()
    columns = ["model", "quantity", "n_frames", "mean", "half_width", "n_seeds", "interval",
               "converged_n", "answer"]
    frame = pd.concat(table, ignore_index=True)
    extra = [c for c in ("yardstick_half_width",) if c in frame]
    return save_figure(fig, stem, frame[columns + extra])


def _sigma2_by_n(sub: pd.DataFrame) -> pd.DataFrame:
    """Per N: mean sigma^2 over seeds, its std and 95 % half-width (module text)."""
    from dualbench.stats import t_half_width

    rows = []
    for n, group in sub.groupby("n_frames"):
        values = group["sigma2_A2"].to_numpy(float)
        if len(values) >= 2:
            half = t_half_width(values)
        elif "sigma2_stderr_A2" in group:
            half = 1.959964 * float(group["sigma2_stderr_A2"].iloc[0])
        else:
            half = float("nan")
        rows.append({"n_frames": n, "mean": values.mean(),
                     "std": values.std(ddof=1) if len(values) >= 2 else float("nan"),
                     "half_width": half})
    return pd.DataFrame(rows)


def _clip_to_data(ax, values: pd.Series) -> None:
    """Scores are >= 0: the axis spans 0 to a margin above the largest seed value, so a
    Student-t bar of two seeds (12.7 standard errors) runs off the axis, not into
    negative scores."""
    top = float(values.max()) * 1.35 if len(values) else 1.0
    ax.set_ylim(0.0, max(top, ax.get_ylim()[1] if top <= 0 else top))


def _yardstick_band(rows: pd.DataFrame, data: pd.DataFrame) -> np.ndarray | None:
    """95 % half-width of the yardstick (the experiment fit's E0 and S0^2) at each N of
    ``data``: the seed mean of each run's propagated standard deviation."""
    sd = rows.groupby("n_frames")["exafs_mse_k_yardstick_sd"].mean()
    band = 1.959964 * sd.reindex(data["n_frames"]).to_numpy(float)
    return band if np.isfinite(band).any() else None


def _exafs_axis(ax, summary: pd.DataFrame, has_exafs: bool, to_reference: bool) -> None:
    """Fig. 3's left axis: the EXAFS MSE against the experiment, against the reference
    model's simulation (said to be convergence, not agreement), or nothing scored."""
    if not has_exafs:
        ax.text(0.03, 0.04, "no experiment given: EXAFS MSE not scored",
                transform=ax.transAxes, ha="left", va="bottom", style="italic", fontsize=8)
        ax.set_yticks([])
        return
    if to_reference:
        reference = summary["reference"].dropna().iloc[0] if "reference" in summary else "?"
        ax.set_ylabel(f"MSE of $k^w\\chi(k)$ to {reference}'s simulation", color=EXAFS_COLOR)
        ax.text(0.03, 0.04, "no experiment: convergence of the simulated EXAFS,\n"
                "not agreement with a measurement", transform=ax.transAxes,
                ha="left", va="bottom", style="italic", fontsize=7)
    else:
        ax.set_ylabel("EXAFS MSE of $k^w\\chi(k)$", color=EXAFS_COLOR)
    ax.tick_params(axis="y", colors=EXAFS_COLOR)


def parity(tables: Mapping[str, pd.DataFrame], stem: str | Path, title: str = "",
           groups: Mapping[str, str] | None = None) -> list[Path]:
    """Predicted against DFT force components for each labelled model, with fitted slopes.

    Each table has columns ``force_dft_eV_per_A`` and ``force_pred_eV_per_A``.  ``groups``
    (label -> model) gives each model a panel of its own when there are more than
    :data:`FIG2_MAX_CURVES` tables of several models.
    """
    from dualbench.metrics import parity_slope

    plt = _pyplot()
    panels = _panels(list(tables), groups)
    fig, axes = plt.subplots(1, len(panels), squeeze=False,
                             figsize=(4.2 * len(panels), 4.2), sharex=True, sharey=True)
    rows, lim = [], 0.0
    for ax, (name, labels) in zip(axes[0], panels.items(), strict=True):
        for i, label in enumerate(labels):
            t = tables[label]
            ref = t["force_dft_eV_per_A"].to_numpy()
            pred = t["force_pred_eV_per_A"].to_numpy()
            slope = parity_slope(pred, ref)
            ax.scatter(ref, pred, s=6, marker=MARKERS[i % len(MARKERS)], alpha=0.5,
                       color=_style(i)["color"], label=f"{label} (slope {slope:.2f})")
            lim = max(lim, float(np.abs(ref).max()), float(np.abs(pred).max()))
            rows.append(t.assign(model=label, slope=slope))
        if name:
            ax.set_title(name, fontsize=10)
    for ax in axes[0]:
        ax.plot([-lim, lim], [-lim, lim], color="0.5", lw=0.8, ls=":", label="ideal")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xlabel("DFT force component (eV/Å)")
        ax.legend(frameon=False, fontsize=8, loc="upper left")
    axes[0][0].set_ylabel("predicted force component (eV/Å)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, stem, pd.concat(rows, ignore_index=True))


def convergence(tables: Mapping[str, pd.DataFrame], stem: str | Path, value: str,
                ylabel: str, title: str = "") -> list[Path]:
    """A convergence record (``n_snapshots`` against ``value``) for each labelled run."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    rows = []
    for i, (label, t) in enumerate(tables.items()):
        style = STYLES[i % len(STYLES)]
        ax.plot(t["n_snapshots"], t[value], label=label, lw=1.2,
                marker=MARKERS[i % len(MARKERS)], ms=3,
                **{k: v for k, v in style.items() if k != "marker"})
        rows.append(t[["n_snapshots", value]].assign(run=label))
    ax.set_xlabel("snapshots averaged")
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, stem, pd.concat(rows, ignore_index=True))


def sigma2_vs_n(table: pd.DataFrame, stem: str | Path, shells: Sequence[int] = (1, 2),
                title: str = "", experiment_fit: Mapping[str, float] | None = None,
                ) -> list[Path]:
    """MD sigma^2 (Å^2) of the first absorber shells against N, a line per shell and model
    (colour: shell, line style: model): mean over seeds with its 95 % Student-t
    half-width (one seed: 1.96 times the run's autocorrelation-aware standard error).

    ``table`` has columns ``n_frames, seed, shell, r_ideal_A, sigma2_A2`` and ``model``.  With the
    experiment's fit (fit.json), each fitted shell's sigma^2 ± its error is drawn as a
    band in the shell's colour, and the table gains ``sigma2_exp_A2`` and its error.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    rows = []
    if "model" not in table:
        table = table.assign(model="")
    models = list(dict.fromkeys(table["model"]))
    lines = ["-", "--", "-.", ":"]
    for i, shell in enumerate(shells):
        style = STYLES[i % len(STYLES)]
        for m, model in enumerate(models):
            sub = table[(table["shell"] == shell) & (table["model"] == model)]
            if sub.empty:
                continue
            agg = _sigma2_by_n(sub)
            r = float(sub["r_ideal_A"].iloc[0])
            # the neighbour element tells metal-S from metal-metal shells of a compound
            element = {"neighbour": sub["neighbour"].iloc[0]} if "neighbour" in sub else {}
            who = f"{element['neighbour']} at " if element else ""
            name = f"shell {shell} ({who}{r:.2f} Å)" + (f", {model}" if len(models) > 1 else "")
            ax.errorbar(agg["n_frames"], agg["mean"], yerr=agg["half_width"], capsize=3,
                        marker=MARKERS[(i + m) % len(MARKERS)], color=style["color"],
                        ls=lines[m % len(lines)] if len(models) > 1 else style["linestyle"],
                        label=name)
            rows.append(agg.assign(model=model, shell=shell, r_ideal_A=r, **element))
        key = f"sigma2_shell{shell}_A2"
        if experiment_fit is not None and key in experiment_fit and rows:
            value, err = float(experiment_fit[key]), float(experiment_fit[f"{key}_err"])
            ax.axhspan(value - err, value + err, color=style["color"], alpha=0.15, lw=0)
            ax.axhline(value, color=style["color"], lw=0.8, ls=":",
                       label=f"experiment, shell {shell}")
            for j, row in enumerate(rows):
                if (row["shell"] == shell).all():
                    rows[j] = row.assign(sigma2_exp_A2=value, sigma2_exp_A2_err=err)
    ax.set_xscale("symlog", linthresh=1.0)
    ns = sorted(table["n_frames"].unique())
    ax.set_xticks(ns)
    ax.set_xticklabels([str(n) for n in ns])
    ax.set_xlabel("DFT frames used for fine-tuning, N (0 = vanilla)")
    ax.set_ylabel(r"MD $\sigma^2$ (Å$^2$)")
    ax.legend(frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, stem, pd.concat(rows, ignore_index=True) if rows else table)


# --- figures from the workflow's files (used by the rules and the CLI) ---------------------


def fig2_from_files(
    simulations: Sequence[tuple[str, str | Path]],
    stem: str | Path,
    experiment: str | Path | None = None,
    kweight: int = 2,
    title: str = "",
    k_window: tuple[float, float] | None = None,
    scored: Sequence[tuple[float, float]] | None = None,
    ft=None,
    models: Sequence[str] | None = None,
) -> list[Path]:
    """Fig. 2 from folders holding ``chi_k.csv`` and ``chi_r.csv``; ``models`` (one per
    simulation) splits a crowded figure into one pair of panels per model.

    ``simulations`` are (label, folder) pairs; ``experiment`` is the experiment's folder
    or None, in which case the figure says that no experiment was given.  ``scored``
    gives each simulation's (E0 shift in eV, S0^2) of the comparison: the simulation is
    then drawn as scored, S0^2 chi(q) with larch's e0 convention, its |chi(R)| from the
    same transform (``ft``, :class:`~dualbench.exafs.FTSettings`), and the note says so.
    """
    curves = {}
    if experiment is not None:
        curves["experiment"] = _chi_tables(experiment)
    notes = []
    for i, (label, folder) in enumerate(simulations):
        chi_k, chi_r = _chi_tables(folder)
        if scored is not None:
            de, s02 = scored[i]
            chi_k, chi_r = _as_scored(chi_k, de, s02, ft)
            notes.append(f"{de:+.1f} eV, S0²={s02:.2f}")
        curves[label] = (chi_k, chi_r)
    note = None if experiment is not None else "no experimental spectrum given"
    if scored is not None:
        shared = sorted(set(notes))
        note = "simulations as scored: E0 shift " + ("; ".join(shared) if len(shared) > 1
                                                     else shared[0])
    groups = None
    if models is not None:
        groups = {label: model for (label, _), model in zip(simulations, models, strict=True)}
    return fig2(curves, stem, kweight=kweight, title=title, note=note, k_window=k_window,
                groups=groups)


def _as_scored(chi_k: pd.DataFrame, de: float, s02: float, ft) -> tuple[pd.DataFrame,
                                                                         pd.DataFrame]:
    """A simulation's chi(k) with the comparison's E0 shift and S0^2, and its |chi(R)|."""
    from dualbench.exafs import fourier_transform
    from dualbench.scoring.spectrum_scores import shifted_chi

    k = chi_k["k"].to_numpy(float)
    chi = s02 * shifted_chi(k, k, chi_k["chi"].to_numpy(float), de)
    r, chir = fourier_transform(k, chi, ft)
    return pd.DataFrame({"k": k, "chi": chi}), pd.DataFrame({"r": r, "chir_mag": np.abs(chir)})


def scored_shifts(comparison_csv: str | Path, runs: Sequence[Mapping[str, object]]):
    """(E0 shift, S0^2) of each run (material, model, n, seed) in comparison.csv."""
    table = pd.read_csv(comparison_csv)
    out = []
    for run in runs:
        row = table[(table["model"] == run["model"]) & (table["n_frames"] == int(run["n"]))
                    & (table["seed"] == int(run["seed"]))]
        if len(row) != 1:
            raise ValueError(f"{comparison_csv}: no single row for run {dict(run)}")
        out.append((float(row["e0_shift_eV"].iloc[0]), float(row["s02"].iloc[0])))
    return out


def _chi_tables(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = Path(folder)
    return pd.read_csv(folder / "chi_k.csv"), pd.read_csv(folder / "chi_r.csv")


def runs_table(files: Sequence[str | Path], runs: Sequence[Mapping[str, object]]) -> pd.DataFrame:
    """Concatenate per-run CSV files, adding each run's model, n_frames and seed columns."""
    parts = [
        pd.read_csv(f).assign(model=r["model"], n_frames=int(r["n"]), seed=int(r["seed"]))
        for f, r in zip(files, runs, strict=True)
    ]
    return pd.concat(parts, ignore_index=True)


def run_label(model: str, n_frames: int) -> str:
    """The legend label of a run: the vanilla model or the model fine-tuned on N frames."""
    return f"{model} vanilla (N=0)" if int(n_frames) == 0 else f"{model} fine-tuned (N={n_frames})"
