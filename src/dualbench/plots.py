"""Figures of the study: Fig. 2 (FT of experiment vs vanilla vs fine-tuned MD) and the
diagnostics (force parity, EXAFS convergence, sigma^2 per shell against N); Fig. 3, the
answer against N, is :mod:`dualbench.plot_answer`.

Every figure is written as PNG and PDF with the plotted numbers beside it as CSV
(``<stem>.png``, ``<stem>.pdf``, ``<stem>.csv``).  Curves differ by line style and marker as
well as colour, so the figures read in greyscale.

A run whose MD failed (``md_status`` unstable: a temperature runaway, atoms too close, an
atom off its lattice site) has header-only chi(k), chi(R), convergence and, for an MD-stage
failure, sigma^2 tables, and NaN EXAFS numbers in the summary.  Every figure skips its
curve or points (its sigma^2 too when the file has rows: the model left the crystal) and
names it in the legend, "<run>: MD unstable" with the failure's reason when known.  The
force parity, which needs no MD, still draws it.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dualbench.io import atomic_path, write_csv
from dualbench.plot_layout import stagger_crowded_xtick_labels
from dualbench.scoring.md_status import (
    STABLE,
    UNSTABLE,
    UNSTABLE_TEXT,
    failure_label,
    grouped_failures,
    is_unstable,
    run_failure,
    said,
)

log = logging.getLogger(__name__)

STYLES = [
    {"color": "0.0", "linestyle": "-", "marker": None},
    {"color": "#d62728", "linestyle": "--", "marker": None},
    {"color": "#1f77b4", "linestyle": "-.", "marker": None},
    {"color": "#2ca02c", "linestyle": ":", "marker": None},
    {"color": "#9467bd", "linestyle": (0, (5, 1, 1, 1, 1, 1)), "marker": None},
]
MARKERS = ["o", "s", "^", "D", "v", "P"]


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.linewidth": 0.8, "figure.dpi": 150})
    return plt


def save_figure(fig, stem: str | Path, table: pd.DataFrame) -> list[Path]:
    """Write ``stem``.png, .pdf and .csv atomically, crowded x tick labels staggered
    (:func:`stagger_crowded_xtick_labels`); returns the paths."""
    stem = Path(stem)
    stagger_crowded_xtick_labels(fig)
    paths = []
    for suffix in (".png", ".pdf"):
        target = stem.with_suffix(suffix)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=suffix[1:], bbox_inches="tight")
        paths.append(target)
    write_csv(stem.with_suffix(".csv"), table)
    paths.append(stem.with_suffix(".csv"))
    pyplot().close(fig)
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


def failure_handles(ax, failures: Mapping[str, str | None], reason: bool = False) -> list:
    """Legend entries without data (a grey cross) naming each failed run (with its reason
    when ``reason``)."""
    return [ax.plot([], [], ls="none", marker="x", color="0.45",
                    label=failure_label(label, why, reason))[0]
            for label, why in failures.items()]


def failure_note(fig, failures: Mapping[str, str | None]) -> None:
    """The failed runs' reasons under the figure, outside every axis (saved with it:
    :func:`save_figure` crops to what is drawn)."""
    lines = [textwrap.shorten(f"{label}: {why.strip()}", 130, placeholder=" ...")
             for label, why in failures.items() if said(why)]
    if lines:
        fig.text(0.01, 0.0, "\n".join([f"Not drawn, {UNSTABLE_TEXT}:", *lines]), ha="left",
                 va="top", fontsize=7, style="italic", color="0.25")


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


def _panel_of(label: str, groups: Mapping[str, str] | None, panels: Mapping[str, list[str]]
              ) -> str:
    """The panel that names a run left out: its model's, else the last."""
    group = (groups or {}).get(label)
    return group if group in panels else list(panels)[-1]


def fig2(
    curves: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]],
    stem: str | Path,
    kweight: int = 2,
    title: str = "",
    rmax_plot: float = 6.0,
    note: str | None = None,
    k_window: tuple[float, float] | None = None,
    groups: Mapping[str, str] | None = None,
    failures: Mapping[str, str | None] | None = None,
) -> list[Path]:
    """|chi(R)| of k^w-weighted chi(k) for each labelled curve, with a k-space panel.

    ``failures`` maps a run left out (its MD failed) to the reason, or None: the legend
    names it (in its model's panel when ``groups`` gives one).

    ``groups`` maps a simulated curve's label to its model: with more than
    :data:`FIG2_MAX_CURVES` simulated curves of several models, each model gets its own
    pair of panels (the experiment, or any curve without a group, in every one).

    ``curves`` maps a label (``experiment``, ``vanilla (N=0)``, ``fine-tuned (N=50)``) to
    its (chi_k, chi_r) tables: columns ``k, chi`` and ``r, chir_mag``.  All curves must
    come from the same Fourier transform; ``note`` is printed on the figure (e.g. that no
    experiment was given).  ``k_window`` (kmin, kmax in 1/Å) is shaded and bounds the
    k panel.
    """
    plt = pyplot()
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
        failure_handles(ax_r, {label: why for label, why in (failures or {}).items()
                               if _panel_of(label, groups, panels) == name})
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
    failure_note(fig, failures or {})
    return save_figure(fig, stem, pd.DataFrame(rows, columns=["space", "curve", "x", "y"]))


def _sigma2_by_n(sub: pd.DataFrame) -> pd.DataFrame:
    """Per N: mean sigma^2 over seeds and its 95 % half-width, decided as every other
    seed mean (:func:`dualbench.scoring.convergence.by_n`); one seed's interval is 1.96
    times its autocorrelation-aware standard error."""
    from dualbench.scoring.convergence import by_n

    if "sigma2_stderr_A2" in sub:
        half = 1.959964 * sub["sigma2_stderr_A2"]
        sub = sub.assign(sigma2_A2_lo=sub["sigma2_A2"] - half,
                         sigma2_A2_hi=sub["sigma2_A2"] + half)
    return by_n(sub, "sigma2_A2")


def parity(tables: Mapping[str, pd.DataFrame], stem: str | Path, title: str = "",
           groups: Mapping[str, str] | None = None,
           failures: Mapping[str, str | None] | None = None) -> list[Path]:
    """Predicted against DFT force components for each labelled model, with fitted slopes.

    Each table has columns ``force_dft_eV_per_A`` and ``force_pred_eV_per_A``.  ``groups``
    (label -> model) gives each model a panel of its own when there are more than
    :data:`FIG2_MAX_CURVES` tables of several models.  The forces need no MD: a run in
    ``failures`` (label -> reason; its MD failed) is drawn, its legend saying "MD unstable";
    a table without finite forces is left out and named in the legend.
    """
    from dualbench.metrics import parity_slope

    plt = pyplot()
    panels = _panels(list(tables), groups)
    fig, axes = plt.subplots(1, len(panels), squeeze=False,
                             figsize=(4.2 * len(panels), 4.2), sharex=True, sharey=True)
    rows, lim = [], 0.0
    for ax, (name, labels) in zip(axes[0], panels.items(), strict=True):
        for i, label in enumerate(labels):
            t = tables[label]
            ref = pd.to_numeric(t.get("force_dft_eV_per_A", pd.Series(dtype=float)),
                                errors="coerce").to_numpy(float)
            pred = pd.to_numeric(t.get("force_pred_eV_per_A", pd.Series(dtype=float)),
                                 errors="coerce").to_numpy(float)
            keep = np.isfinite(ref) & np.isfinite(pred)
            if not keep.any():
                ax.plot([], [], ls="none", marker="x", color="0.45",
                        label=f"{label}: no DFT forces")
                continue
            slope = parity_slope(pred[keep], ref[keep])
            tag = f" — {UNSTABLE_TEXT}" if failures and label in failures else ""
            ax.scatter(ref[keep], pred[keep], s=6, marker=MARKERS[i % len(MARKERS)], alpha=0.5,
                       color=_style(i)["color"], label=f"{label} (slope {slope:.2f}){tag}")
            lim = max(lim, float(np.abs(ref[keep]).max()), float(np.abs(pred[keep]).max()))
            rows.append(t.assign(model=label, slope=slope))
        if name:
            ax.set_title(name, fontsize=10)
    lim = lim or 1.0
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
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["force_dft_eV_per_A", "force_pred_eV_per_A", "model", "slope"])
    return save_figure(fig, stem, table)


def convergence(tables: Mapping[str, pd.DataFrame], stem: str | Path, value: str,
                ylabel: str, title: str = "",
                failures: Mapping[str, str | None] | None = None) -> list[Path]:
    """A convergence record (``n_snapshots`` against ``value``) for each labelled run.  A
    header-only record (the run's MD failed), or a run in ``failures`` (label -> reason),
    is left out and named in the legend."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    rows, skipped = [], dict(failures or {})
    for i, (label, t) in enumerate(tables.items()):
        if label in skipped or t.empty or value not in t:
            skipped.setdefault(label, None)
            continue
        style = STYLES[i % len(STYLES)]
        ax.plot(t["n_snapshots"], t[value], label=label, lw=1.2,
                marker=MARKERS[i % len(MARKERS)], ms=3,
                **{k: v for k, v in style.items() if k != "marker"})
        rows.append(t[["n_snapshots", value]].assign(run=label))
    skipped = {label: why for label, why in skipped.items() if label in tables}
    failure_handles(ax, skipped)
    ax.set_xlabel("snapshots averaged")
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    failure_note(fig, skipped)
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["n_snapshots", value, "run"])
    return save_figure(fig, stem, table)


def sigma2_vs_n(table: pd.DataFrame, stem: str | Path, shells: Sequence[int] = (1, 2),
                title: str = "", experiment_fit: Mapping[str, float] | None = None,
                ) -> list[Path]:
    """MD sigma^2 (Å^2) of the first absorber shells against N, a line per shell and model
    (colour: shell, line style: model): mean over seeds with its 95 % Student-t
    half-width (one seed: 1.96 times the run's autocorrelation-aware standard error).

    ``table`` has columns ``n_frames, seed, shell, r_ideal_A, sigma2_A2`` and ``model``.  With the
    experiment's fit (fit.json), each fitted shell's sigma^2 ± its error is drawn as a
    band in the shell's colour, and the table gains ``sigma2_exp_A2`` and its error.  Rows
    of a run with ``md_status`` unstable (:func:`runs_table`) are left out, whatever their
    numbers, and the run is named in the legend.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    rows = []
    if "model" not in table:
        table = table.assign(model="")
    all_ns = sorted(table["n_frames"].unique())
    table, failures = _stable_runs(table)
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
    failure_handles(ax, failures)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xticks(all_ns)
    ax.set_xticklabels([str(n) for n in all_ns])
    ax.set_xlabel("DFT frames used for fine-tuning, N (0 = vanilla)")
    ax.set_ylabel(r"MD $\sigma^2$ (Å$^2$)")
    ax.legend(frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    failure_note(fig, failures)
    return save_figure(fig, stem, pd.concat(rows, ignore_index=True) if rows else table)


def _stable_runs(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The rows of runs whose MD ran fine, and the others' :func:`grouped_failures`
    (``md_status`` unstable)."""
    if "md_status" not in table:
        return table, {}
    bad = table["md_status"].map(is_unstable).astype(bool)
    failures = {}
    for row in table[bad].to_dict("records"):
        why = row.get("md_failure")
        failures[(row["model"], int(row["n_frames"]), int(row.get("seed", 0)))] = (
            why if isinstance(why, str) and why else UNSTABLE_TEXT)
    return table[~bad], grouped_failures(failures)


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
    A simulation whose MD failed (a header-only ``chi_k.csv``, or NaN scores) is left out
    and named in the legend, with the reason its run folder gives (:func:`run_failure`).
    """
    curves = {}
    if experiment is not None:
        curves["experiment"] = _chi_tables(experiment)
    notes, failures = [], {}
    for i, (label, folder) in enumerate(simulations):
        chi_k, chi_r = _chi_tables(folder)
        shift = scored[i] if scored is not None else None
        if _no_curve(chi_k) or (shift is not None and not np.isfinite(shift).all()):
            failures[label] = run_failure(Path(folder).parent)
            continue
        if shift is not None:
            de, s02 = shift
            chi_k, chi_r = _as_scored(chi_k, de, s02, ft)
            notes.append(f"{de:+.1f} eV, S0²={s02:.2f}")
        curves[label] = (chi_k, chi_r)
    note = None if experiment is not None else "no experimental spectrum given"
    if notes:
        shared = sorted(set(notes))
        note = "simulations as scored: E0 shift " + ("; ".join(shared) if len(shared) > 1
                                                     else shared[0])
    groups = None
    if models is not None:
        groups = {label: model for (label, _), model in zip(simulations, models, strict=True)}
    return fig2(curves, stem, kweight=kweight, title=title, note=note, k_window=k_window,
                groups=groups, failures=failures)


def _no_curve(chi_k: pd.DataFrame) -> bool:
    """A header-only (or all-NaN) chi(k): the run's MD failed."""
    return not np.isfinite(pd.to_numeric(chi_k.get("chi", pd.Series(dtype=float)),
                                         errors="coerce")).any()


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
    """Concatenate per-run CSV files (``<run>/<stage>/<name>.csv``), adding each run's
    model, n_frames, seed, ``md_status`` and ``md_failure`` columns.  A run whose MD failed
    (:func:`run_failure` of its folder, or a header-only file) is one row of NaN numbers
    with status unstable and its reason, whatever its file holds: an EXAFS-stage failure
    (an atom left its site) leaves a sigma^2 table that must not be used."""
    parts = []
    for f, r in zip(files, runs, strict=True):
        table = pd.read_csv(f)
        keys = {"model": r["model"], "n_frames": int(r["n"]), "seed": int(r["seed"])}
        why = run_failure(Path(f).parent.parent)
        if why is None and not table.empty:
            parts.append(table.assign(**keys, md_status=STABLE, md_failure=""))
        else:
            parts.append(pd.DataFrame([{**keys, "md_status": UNSTABLE,
                                        "md_failure": why or UNSTABLE_TEXT}]))
    return pd.concat(parts, ignore_index=True)


def run_label(model: str, n_frames: int) -> str:
    """The legend label of a run: the vanilla model or the model fine-tuned on N frames."""
    return f"{model} vanilla (N=0)" if int(n_frames) == 0 else f"{model} fine-tuned (N={n_frames})"
